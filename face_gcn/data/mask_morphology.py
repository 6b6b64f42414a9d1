"""The face mask shrunk before T_p is sampled, as the authors' code does.

Their base_model._erosion2d, at 224 px: a flat dilation by a 5 x 5 ellipse, then two flat
erosions by a 9 x 9 ellipse (cv2.MORPH_ELLIPSE footprints): the rim of the mask, where hair and
background bleed into the face region, moves in by about 2 * 4 - 2 = 6 px, and holes narrower
than the dilation close first. At another crop size S the footprints scale with S / 224 (ours; odd
sides, at least 1). Masks are float [B, S, S] in [0, 1]; soft values are handled as grey-level
morphology (max / min over the footprint).
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow as tf

MASK_EROSIONS = ("none", "authors")
AUTHORS_IMAGE_SIZE = 224
DILATION_SIDE = 5
EROSION_SIDE = 9
EROSIONS = 2


def ellipse_footprint(side: int) -> np.ndarray:
    """[side, side] bool: OpenCV's MORPH_ELLIPSE structuring element."""
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}")
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)).astype(bool)


def scaled_side(side: int, image_size: int) -> int:
    """The footprint side for a crop of image_size pixels: side * image_size / 224, odd, >= 1."""
    value = side * image_size / AUTHORS_IMAGE_SIZE
    return max(1, 2 * int(round((value - 1.0) / 2.0)) + 1)


def _dilate(masks, footprint: np.ndarray):
    """Flat grey-level dilation of [B, S, S, 1]: max over the footprint (outside the image ignored)."""
    flat = np.where(footprint, 0.0, -1e9).astype(np.float32)[..., None]
    return tf.nn.dilation2d(masks, tf.constant(flat), strides=[1, 1, 1, 1], padding="SAME",
                            data_format="NHWC", dilations=[1, 1, 1, 1])


def erode_face_mask(masks) -> tf.Tensor:
    """The authors' mask erosion (module docstring) of masks [B, S, S] in [0, 1]; no gradient."""
    masks = tf.convert_to_tensor(masks, tf.float32)
    if masks.shape.rank != 3 or masks.shape[1] is None or masks.shape[1] != masks.shape[2]:
        raise ValueError(f"masks must be [B, S, S], got {masks.shape}")
    size = int(masks.shape[1])
    x = tf.stop_gradient(masks)[..., tf.newaxis]
    x = _dilate(x, ellipse_footprint(scaled_side(DILATION_SIDE, size)))
    erosion = ellipse_footprint(scaled_side(EROSION_SIDE, size))
    for _ in range(EROSIONS):
        x = -_dilate(-x, erosion)  # the footprint is symmetric, so this is the flat erosion
    return x[..., 0]
