"""MTCNN face detection with 5 landmarks (the `mtcnn` wheel carries its weights).

Landmark order everywhere in face_gcn.data: left eye, right eye, nose tip, left mouth corner,
right mouth corner, "left" meaning the image's left (smaller x), which is also the side of the
morphable model's first standard landmark (negative model x). Pixel coordinates: x right,
y down, OpenCV's convention (pixel (row i, col j) has its centre at (j, i)).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from face_gcn.data import images as images_lib


@dataclasses.dataclass(frozen=True)
class Face:
    """box: [4] float64 (x, y, width, height) pixels; score in [0, 1]; landmarks [5, 2] (x, y)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])


@dataclasses.dataclass(frozen=True)
class Detection:
    """All faces found (largest first) in an image of size (height, width)."""

    faces: tuple[Face, ...]
    image_size: tuple[int, int]

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    @property
    def largest(self) -> Face | None:
        return self.faces[0] if self.faces else None


class FaceDetector:
    """MTCNN on CPU. Images whose longer side exceeds ``max_side`` are shrunk for detection
    and the results mapped back to the original's pixels.

    Args:
      min_face_size: smallest face side searched for, in pixels of the (shrunk) image.
      min_score: detections with a lower ONet score are dropped.
      max_side: longer side detection runs at.
    """

    def __init__(self, min_face_size: int = 20, min_score: float = 0.9, max_side: int = 1024):
        from mtcnn import MTCNN  # pylint: disable=import-outside-toplevel
        self._mtcnn = MTCNN(device="CPU:0")
        self.min_face_size = int(min_face_size)
        if self.min_face_size < 1:
            raise ValueError(f"min_face_size must be at least 1 pixel, got {min_face_size}")
        self.min_score = float(min_score)
        self.max_side = int(max_side)

    def detect(self, rgb: np.ndarray) -> Detection:
        """Args: rgb: [H, W, 3] uint8 RGB. Returns the faces sorted by box area, largest first."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected [H, W, 3] uint8 RGB, got {rgb.shape} {rgb.dtype}")
        small, scale = images_lib.downscale_to_max_side(rgb, self.max_side)
        rows = self._mtcnn.detect_faces(small, output_type="numpy",
                                        min_face_size=self.min_face_size)
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
        faces = []
        for row in rows:
            score = float(row[5])
            if score < self.min_score:
                continue
            # row: [batch index, x, y, w, h, score, 5 x's, 5 y's]
            points = np.stack([row[6:11], row[11:16]], axis=1)
            box = row[1:5].copy()
            points = (points + 0.5) / scale - 0.5
            box[:2] = (box[:2] + 0.5) / scale - 0.5
            box[2:] = box[2:] / scale
            faces.append(Face(box=box, score=score, landmarks=points))
        faces.sort(key=lambda face: -face.area)
        return Detection(tuple(faces), (int(rgb.shape[0]), int(rgb.shape[1])))
