"""Deng et al.'s alignment of a photo to the morphable model's 5 standard landmarks.

Facts (Deng 2019, preprocess_img.py): fit the detected 5 image points p_i to the standard
3D points X_i by least squares with a general 2x3 projection and a translation,
p_i ~ P X_i + t; take the scale s as the mean norm of P's two rows; resize the photo by
102 / s and crop 224 x 224 so the image point t of the model's origin lands in the centre.
There is no rotation: head roll is left in the crop for the regressor's angles to explain.

This module writes the same thing as one affine map from original pixels to crop pixels,
  crop = k (p - t) + S / 2 - 1/2,   k = rescale * (S / 224) / s,
so a crop of any size S frames the face as Deng's 224 crop does (512 for CelebA-HQ keeps the
framing). Pixel coordinates are OpenCV's (pixel centre of column j, row i at (j, i)); Deng's
own code is inconsistent by one pixel in y between the image and the landmarks, which this
single map avoids. The fit uses image y down directly: flipping y (as Deng does) changes
neither s nor the resulting crop.
"""

from __future__ import annotations

import numpy as np

DENG_RESCALE = 102.0
DENG_CROP = 224


def _check_points(points, name, width):
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (5, width) or not np.all(np.isfinite(points)):
        raise ValueError(f"{name} must be a finite [5, {width}] array, got {points.shape}")
    return points


def fit_scale_translation(image_points, standard_points) -> tuple[float, np.ndarray]:
    """Least-squares p ~ P X + t; returns (s, t).

    Args:
      image_points: [5, 2] detected landmarks, pixels.
      standard_points: [5, 3] the model's standard landmarks, model units.
    Returns:
      s: pixels per model unit (mean norm of the two rows of P); t: [2] pixels, the image
      point of the model's origin.
    """
    image_points = _check_points(image_points, "image_points", 2)
    standard_points = _check_points(standard_points, "standard_points", 3)
    design = np.concatenate([standard_points, np.ones((5, 1))], axis=1)  # [5, 4]
    solution, *_ = np.linalg.lstsq(design, image_points, rcond=None)  # [4, 2]
    projection = solution[:3].T  # [2, 3]
    scale = 0.5 * (np.linalg.norm(projection[0]) + np.linalg.norm(projection[1]))
    if not scale > 0:
        raise ValueError("degenerate landmarks: the fitted scale is zero")
    return float(scale), solution[3].copy()


def alignment_transform(image_points, standard_points, crop_size: int = DENG_CROP,
                        rescale: float = DENG_RESCALE) -> np.ndarray:
    """The [2, 3] affine map (float64) from original pixels to crop pixels (module docstring)."""
    if crop_size <= 0:
        raise ValueError(f"crop_size must be positive, got {crop_size}")
    scale, translation = fit_scale_translation(image_points, standard_points)
    k = rescale * (crop_size / DENG_CROP) / scale
    # The model's origin goes to the renderer's principal point S/2, which in pixel-index
    # coordinates (pixel centres at integers, as here) is S/2 - 0.5.
    centre = crop_size / 2.0 - 0.5
    return np.array([[k, 0.0, centre - k * translation[0]],
                     [0.0, k, centre - k * translation[1]]])


def apply_transform(transform, points) -> np.ndarray:
    """Maps [N, 2] points by a [2, 3] affine map; returns [N, 2] float64."""
    transform = np.asarray(transform, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    if transform.shape != (2, 3) or points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"need a [2, 3] transform and [N, 2] points, got {transform.shape} "
                         f"and {points.shape}")
    return points @ transform[:, :2].T + transform[:, 2]


def invert_transform(transform) -> np.ndarray:
    """The [2, 3] inverse of a [2, 3] affine map (crop pixels -> original pixels)."""
    transform = np.asarray(transform, dtype=np.float64)
    full = np.vstack([transform, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def warp_to_crop(rgb: np.ndarray, transform, crop_size: int) -> np.ndarray:
    """Resamples [H, W, C] uint8 into the [S, S, C] crop (bilinear, black outside the photo).

    When the map shrinks by more than 2x the photo is first reduced with an area filter so
    the bilinear step does not alias.
    """
    import cv2  # pylint: disable=import-outside-toplevel
    transform = np.asarray(transform, dtype=np.float64)
    k = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    if k < 0.5:
        factor = 2.0 * k  # shrink so the remaining bilinear step is a 2x reduction
        height, width = rgb.shape[:2]
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        sx, sy = size[0] / width, size[1] / height
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        # small = (orig + 0.5) * s - 0.5  =>  orig = (small + 0.5) / s - 0.5
        to_original = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5],
                                [0, 0, 1]])
        transform = (np.vstack([transform, [0, 0, 1]]) @ to_original)[:2]
    return cv2.warpAffine(rgb, transform, (crop_size, crop_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
