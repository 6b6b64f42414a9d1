"""Face-region masks M_face for aligned crops.

The paper used a face-parsing network (never released). Two segmenters share one interface:
  SkinColourSegmenter: built in, not learned. A skin-colour model fitted per photo inside the
    face (a Gaussian over the chroma (Cr, Cb) of pixels between the eyes and the mouth), kept
    only inside a face-shaped ellipse built from the 5 landmarks. Choice documented here:
    a parsing net's union of face skin, brows, eyes, nose and mouth has no holes at the eyes,
    brows or mouth, so those regions are added back (ellipses at the eyes and mouth, then
    enclosed holes filled); hair, beard edges and background outside the ellipse stay out.
  SavedModelSegmenter: a user's face-parsing SavedModel, loaded by path.
Masks are [S, S] uint8 with values {0, 1}.
Limits of the built-in one: on grayscale photos chroma carries no information, so the mask
is the landmark ellipse with the features; on profile views the 5 landmarks bunch up and
the ellipse is only a rough guess. A learned parser does better; plug one in by path.
"""

from __future__ import annotations

import abc

import numpy as np

from face_gcn import savedmodel_io

BUILTIN = "builtin"


def _check_inputs(rgb, landmarks):
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2):
        raise ValueError(f"landmarks must be [5, 2], got {landmarks.shape}")
    return rgb, landmarks


class Segmenter(abc.ABC):
    """Maps an aligned crop to its face-region mask."""

    name: str = "segmenter"

    @abc.abstractmethod
    def segment(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Args: rgb [H, W, 3] uint8; landmarks [5, 2] crop pixels. Returns [H, W] uint8 {0,1}."""


def face_ellipse(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] bool, an ellipse from forehead to chin built from the 5 landmarks.

    With d the eye-centre to mouth-centre distance and w the distance between the eyes: the
    vertical axis runs from 1.0 d above the eyes to 0.8 d below the mouth, the half width is
    1.15 w, the ellipse turns with the eye line (proportions of an average adult face).
    """
    eyes = 0.5 * (landmarks[0] + landmarks[1])
    mouth = 0.5 * (landmarks[3] + landmarks[4])
    down = mouth - eyes
    d = float(np.linalg.norm(down))
    w = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    if d <= 0 or w <= 0:
        return np.zeros(shape, bool)
    down /= d
    right = np.array([-down[1], down[0]])
    top, bottom = eyes - 1.0 * d * down, mouth + 0.8 * d * down
    centre = 0.5 * (top + bottom)
    half_height = 0.5 * float(np.linalg.norm(bottom - top))
    half_width = 1.15 * w
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    offset_x, offset_y = cols - centre[0], rows - centre[1]
    along = offset_x * down[0] + offset_y * down[1]
    across = offset_x * right[0] + offset_y * right[1]
    return (along / half_height) ** 2 + (across / half_width) ** 2 <= 1.0


def _feature_regions(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: ellipses over both eyes (with brows) and the mouth."""
    import cv2  # pylint: disable=import-outside-toplevel
    canvas = np.zeros(shape, np.uint8)
    w = float(np.linalg.norm(landmarks[1] - landmarks[0]))
    eye_axes = (max(1, round(0.32 * w)), max(1, round(0.30 * w)))
    for eye in landmarks[:2]:
        # shifted up a little so the brow is covered too
        centre = (round(eye[0]), round(eye[1] - 0.12 * w))
        cv2.ellipse(canvas, centre, eye_axes, 0, 0, 360, 1, -1)
    mouth = 0.5 * (landmarks[3] + landmarks[4])
    mouth_width = float(np.linalg.norm(landmarks[4] - landmarks[3]))
    angle = float(np.degrees(np.arctan2(*(landmarks[4] - landmarks[3])[::-1])))
    cv2.ellipse(canvas, (round(mouth[0]), round(mouth[1])),
                (max(1, round(0.65 * mouth_width)), max(1, round(0.35 * mouth_width))),
                angle, 0, 360, 1, -1)
    return canvas.astype(bool)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fills regions of 0 not connected to the border."""
    import cv2  # pylint: disable=import-outside-toplevel
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood == 0
    return (padded.astype(bool) | holes)[1:-1, 1:-1]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    import cv2  # pylint: disable=import-outside-toplevel
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 1:
        return mask.astype(bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


class SkinColourSegmenter(Segmenter):
    """The built-in segmenter (module docstring).

    Args:
      max_distance: Mahalanobis distance in (Cr, Cb) under which a pixel counts as skin.
    """

    name = BUILTIN

    def __init__(self, max_distance: float = 3.5):
        self.max_distance = float(max_distance)

    def skin_probability(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """[H, W] float32 in [0, 1]: exp(-distance^2 / 2) under the photo's own skin model."""
        import cv2  # pylint: disable=import-outside-toplevel
        rgb, landmarks = _check_inputs(rgb, landmarks)
        ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float64)
        # reference skin: the quadrilateral eyes-mouth shrunk towards its centre (cheeks/nose)
        corners = landmarks[[0, 1, 4, 3]]
        centre = corners.mean(axis=0)
        corners = centre + 0.7 * (corners - centre)
        reference = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillConvexPoly(reference, np.round(corners).astype(np.int32), 1)
        luma = ycrcb[..., 0]
        samples = ycrcb[(reference > 0) & (luma > 25) & (luma < 245)][:, 1:]
        if len(samples) < 10:
            return np.zeros(rgb.shape[:2], np.float32)
        mean = samples.mean(axis=0)
        covariance = np.cov(samples.T) + np.eye(2) * 4.0  # floor: at least 2 levels of spread
        offsets = ycrcb[..., 1:] - mean
        distance2 = np.einsum("hwi,ij,hwj->hw", offsets, np.linalg.inv(covariance), offsets)
        return np.exp(-0.5 * distance2).astype(np.float32)

    def segment(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import cv2  # pylint: disable=import-outside-toplevel
        rgb, landmarks = _check_inputs(rgb, landmarks)
        shape = rgb.shape[:2]
        probability = self.skin_probability(rgb, landmarks)
        skin = probability >= np.exp(-0.5 * self.max_distance ** 2)
        region = face_ellipse(landmarks, shape)
        mask = (skin & region) | (_feature_regions(landmarks, shape) & region)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
        mask = _fill_holes(_largest_component(mask)) & region
        return mask.astype(np.uint8)


class SavedModelSegmenter(Segmenter):
    """A user's face-parsing network exported as a TensorFlow SavedModel.

    Contract: the signature (default "serving_default") takes one float32 tensor
    [1, H, W, 3], RGB in [0, 255] (resized to ``input_size`` first when given) and returns,
    as its only or first output, either [1, H, W] / [1, H, W, 1] face probabilities
    (thresholded at ``threshold``) or [1, H, W, C] class scores, in which case the mask is
    argmax in ``face_classes`` (e.g. the face/brows/eyes/nose/mouth labels of the net).

    Args:
      path: the SavedModel directory.
    """

    def __init__(self, path: str, face_classes=None, threshold: float = 0.5,
                 input_size: int | None = None, signature: str = "serving_default"):
        loaded = savedmodel_io.load_signature(path, signature, role="segmenter")
        self._loaded = loaded  # keeps the variables alive
        self._function = loaded.function
        self._input_name = loaded.input_name
        self.face_classes = None if face_classes is None else [int(c) for c in face_classes]
        self.threshold = float(threshold)
        self.input_size = input_size
        self.name = f"savedmodel:{path}"

    def segment(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import cv2  # pylint: disable=import-outside-toplevel
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        rgb, landmarks = _check_inputs(rgb, landmarks)
        height, width = rgb.shape[:2]
        net_input = rgb
        if self.input_size:
            net_input = cv2.resize(rgb, (self.input_size, self.input_size),
                                   interpolation=cv2.INTER_LINEAR)
        outputs = self._function(**{self._input_name:
                                    tf.constant(net_input[None].astype(np.float32))})
        output = np.asarray(outputs[sorted(outputs)[0]])
        if output.ndim == 3:
            output = output[..., None]
        if output.ndim != 4 or output.shape[0] != 1:
            raise ValueError(f"segmenter output must be [1, H, W] or [1, H, W, C], "
                             f"got {output.shape}")
        output = output[0]
        if output.shape[-1] == 1:
            mask = output[..., 0] >= self.threshold
        else:
            if not self.face_classes:
                raise ValueError(f"segmenter returns {output.shape[-1]} classes: give the face "
                                 "class indices (face_classes)")
            mask = np.isin(np.argmax(output, axis=-1), self.face_classes)
        mask = mask.astype(np.uint8)
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
        return mask


def make_segmenter(spec: str, face_classes=None, input_size: int | None = None) -> Segmenter:
    """"builtin" -> SkinColourSegmenter(); anything else is a SavedModel path."""
    if spec == BUILTIN:
        return SkinColourSegmenter()
    return SavedModelSegmenter(spec, face_classes=face_classes, input_size=input_size)
