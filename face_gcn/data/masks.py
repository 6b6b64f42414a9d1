"""Face-region masks M_face for aligned crops.

The paper used a face-parsing network (never released). Two segmenters share one interface:
  SkinColourSegmenter: built in, not learned. A skin-colour model fitted per photo on reference
    skin (cheeks and nose), kept inside a face region drawn from the landmarks it is given:
      - 5 points (MTCNN's): a face-shaped ellipse; reference skin between the eyes and the mouth;
      - 68 points (dlib's, when the command was asked for them): the jaw line closed over a
        forehead raised above the brows; reference skin on both cheeks and the nose.
    A parsing net's union of face skin, brows, eyes, nose and mouth has no holes at the eyes,
    brows or mouth, so those regions are added back (ellipses from 5 points, polygons from 68).
    Colour tests (``colour_test``):
      - "chroma_luma" (the default): a pixel is skin when its chroma (Cr, Cb) lies within
        ``max_distance`` standard deviations of the reference skin's AND its luma is at least
        ``min_luma_ratio`` of the reference's median (hair, cap brims, glasses frames and shadows
        under a brim are darker than shaded skin). Only holes smaller than HOLE_FRACTION of the
        face region are filled (moles, nostrils, highlights), so a glasses rim or a strand of hair
        enclosed by skin stays out.
      - "chroma": the first built-in test, chroma only, every hole filled (hair whose hue is
        close to skin's, e.g. brown fringes, passes; kept for comparison, --segmenter
        builtin_chroma).
  SavedModelSegmenter: a user's face-parsing SavedModel, loaded by path.
Masks are [S, S] uint8 with values {0, 1}.
Limits of the built-in one: on grayscale photos chroma carries no information, so only the
luma floor separates skin from hair; hands and skin-coloured objects in front of the face pass as
skin; on profile views 5 landmarks bunch up and the ellipse is only a rough guess. A learned parser
does better; plug one in by path.
"""

from __future__ import annotations

import abc

import numpy as np

from face_gcn import savedmodel_io
from face_gcn.data import landmarks68 as ibug

BUILTIN = "builtin"
BUILTIN_CHROMA = "builtin_chroma"
BUILTINS = (BUILTIN, BUILTIN_CHROMA)
# Raised whenever a built-in segmenter's masks change, so that prepare-data redoes shards written before.
BUILTIN_VERSION = 2
COLOUR_TESTS = ("chroma_luma", "chroma")
HOLE_FRACTION = 0.005

EYES = (ibug.IMAGE_LEFT_EYE, ibug.IMAGE_RIGHT_EYE)
BROWS = (ibug.IMAGE_LEFT_BROW, ibug.IMAGE_RIGHT_BROW)
# reference skin, iBUG-68 indices: image-left cheek, image-right cheek, nose (each shrunk towards its centre)
REFERENCE_SKIN_68 = ((41, 40, 31, 48, 4, 2), (46, 47, 35, 54, 12, 14), (27, 31, 33, 35))


def _check_inputs(rgb, landmarks):
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape not in ((5, 2), (68, 2)) or not np.all(np.isfinite(landmarks)):
        raise ValueError(f"landmarks must be finite [5, 2] or [68, 2], got {landmarks.shape}")
    return rgb, landmarks


class Segmenter(abc.ABC):
    """Maps an aligned crop to its face-region mask."""

    name: str = "segmenter"

    @abc.abstractmethod
    def segment(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Args: rgb [H, W, 3] uint8; landmarks [5, 2] or [68, 2] crop pixels. Returns [H, W] uint8 {0,1}."""


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


def face_outline68(points: np.ndarray, forehead: float = 0.5) -> np.ndarray:
    """[27, 2] polygon of the face from 68 landmarks: the jaw line (0..16), then the brows (26..17)
    raised along the face's up direction (mouth to eyes) by ``forehead`` times the nose-bridge to
    chin distance at the middle of the brow line, tapering to half that at the outer ends (the
    forehead is rounded)."""
    eyes = points[list(EYES[0] + EYES[1])].mean(axis=0)
    up = eyes - points[list(ibug.OUTER_LIPS)].mean(axis=0)
    up /= max(float(np.linalg.norm(up)), 1e-9)
    height = float(np.linalg.norm(points[ibug.NOSE_BRIDGE_TOP] - points[ibug.CHIN]))
    brows = points[list(BROWS[0] + BROWS[1])][::-1]
    profile = 0.5 + 0.5 * np.sin(np.linspace(0.0, np.pi, len(brows)))  # 0.5 at the ends, 1 mid-brow
    raised = brows + (forehead * height) * profile[:, None] * up
    return np.concatenate([points[list(ibug.JAW)], raised])


def _fill_polygons(polygons, shape) -> np.ndarray:
    """[H, W] bool: filled polygons, each [N, 2] pixel indices."""
    import cv2  # pylint: disable=import-outside-toplevel
    canvas = np.zeros(shape, np.uint8)
    for polygon in polygons:
        cv2.fillPoly(canvas, [np.round(np.asarray(polygon)).astype(np.int32)], 1)
    return canvas.astype(bool)


def _shrunk(polygon: np.ndarray, factor: float) -> np.ndarray:
    centre = polygon.mean(axis=0)
    return centre + factor * (polygon - centre)


def face_region(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: where the face can be (face_ellipse from 5 points, face_outline68 from 68)."""
    if len(landmarks) == 5:
        return face_ellipse(landmarks, shape)
    return _fill_polygons([face_outline68(landmarks)], shape)


def feature_regions(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: eyes with brows and the mouth. From 5 points, ellipses; from 68, on each side the
    convex hull of the eye contour and the brow line (eye, lid and brow, lashes and liner included)
    widened by 0.1 eye distances, and the outer lip contour widened by 0.05."""
    import cv2  # pylint: disable=import-outside-toplevel
    if len(landmarks) == 68:
        eye_centres = ibug.five_from_68(landmarks)[:2]
        eye_distance = float(np.linalg.norm(eye_centres[1] - eye_centres[0]))
        canvas = np.zeros(shape, np.uint8)
        for eye, brow in zip(EYES, BROWS):
            hull = cv2.convexHull(np.round(landmarks[list(eye + brow)]).astype(np.int32))
            cv2.fillPoly(canvas, [hull], 1)
            cv2.polylines(canvas, [hull], True, 1, max(1, round(0.2 * eye_distance)))
        lips = np.round(landmarks[list(ibug.OUTER_LIPS)]).astype(np.int32)
        cv2.fillPoly(canvas, [lips], 1)
        cv2.polylines(canvas, [lips], True, 1, max(1, round(0.1 * eye_distance)))
        return canvas.astype(bool)
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


def reference_skin(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: pixels whose colours define the photo's skin model: the eyes-mouth
    quadrilateral shrunk to 0.7 (5 points), or both cheeks and the nose shrunk to 0.6 (68)."""
    if len(landmarks) == 5:
        return _fill_polygons([_shrunk(landmarks[[0, 1, 4, 3]], 0.7)], shape)
    return _fill_polygons([_shrunk(landmarks[list(part)], 0.6) for part in REFERENCE_SKIN_68], shape)


def _fill_holes(mask: np.ndarray, max_area: float | None = None) -> np.ndarray:
    """Fills regions of 0 not connected to the border (only those of at most ``max_area`` pixels
    when given)."""
    import cv2  # pylint: disable=import-outside-toplevel
    padded = np.pad(mask.astype(np.uint8), 1)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(1 - padded, connectivity=4)
    border = labels[0, 0]
    holes = np.zeros(count, bool)
    holes[1:] = True
    holes[border] = False
    if max_area is not None:
        holes &= stats[:, cv2.CC_STAT_AREA] <= max_area
    return (padded.astype(bool) | holes[labels])[1:-1, 1:-1]


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
      colour_test: "chroma_luma" or "chroma" (module docstring).
      min_luma_ratio: chroma_luma's luma floor, a fraction of the reference skin's median luma.
    """

    def __init__(self, max_distance: float = 3.5, colour_test: str = "chroma_luma",
                 min_luma_ratio: float = 0.45):
        if colour_test not in COLOUR_TESTS:
            raise ValueError(f"colour_test must be one of {COLOUR_TESTS}, got {colour_test!r}")
        if not max_distance > 0 or not 0 <= min_luma_ratio < 1:
            raise ValueError("max_distance must be > 0 and min_luma_ratio in [0, 1)")
        self.max_distance = float(max_distance)
        self.colour_test = colour_test
        self.min_luma_ratio = float(min_luma_ratio)
        self.name = BUILTIN if colour_test == "chroma_luma" else BUILTIN_CHROMA

    def _skin_model(self, ycrcb: np.ndarray, landmarks: np.ndarray):
        """(chroma mean [2], chroma covariance [2, 2], median luma) of the reference skin, or None."""
        reference = reference_skin(landmarks, ycrcb.shape[:2])
        luma = ycrcb[..., 0]
        samples = ycrcb[reference & (luma > 25) & (luma < 245)]
        if len(samples) < 10:
            return None
        covariance = np.cov(samples[:, 1:].T) + np.eye(2) * 4.0  # floor: at least 2 levels of spread
        return samples[:, 1:].mean(axis=0), covariance, float(np.median(samples[:, 0]))

    def skin_probability(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """[H, W] float32 in [0, 1]: exp(-distance^2 / 2) under the photo's own chroma model (0 where
        chroma_luma's luma floor fails)."""
        import cv2  # pylint: disable=import-outside-toplevel
        rgb, landmarks = _check_inputs(rgb, landmarks)
        ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float64)
        model = self._skin_model(ycrcb, landmarks)
        if model is None:
            return np.zeros(rgb.shape[:2], np.float32)
        mean, covariance, median_luma = model
        offsets = ycrcb[..., 1:] - mean
        distance2 = np.einsum("hwi,ij,hwj->hw", offsets, np.linalg.inv(covariance), offsets)
        probability = np.exp(-0.5 * distance2)
        if self.colour_test == "chroma_luma":
            probability *= ycrcb[..., 0] >= self.min_luma_ratio * median_luma
        return probability.astype(np.float32)

    def segment(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        import cv2  # pylint: disable=import-outside-toplevel
        rgb, landmarks = _check_inputs(rgb, landmarks)
        shape = rgb.shape[:2]
        probability = self.skin_probability(rgb, landmarks)
        skin = probability >= np.exp(-0.5 * self.max_distance ** 2)
        region = face_region(landmarks, shape)
        mask = (skin | feature_regions(landmarks, shape)) & region
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
        max_hole = None if self.colour_test == "chroma" else HOLE_FRACTION * region.sum()
        mask = _fill_holes(_largest_component(mask), max_hole) & region
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
    """"builtin" -> SkinColourSegmenter(), "builtin_chroma" -> its chroma-only test; anything else
    is a SavedModel path."""
    if spec == BUILTIN:
        return SkinColourSegmenter()
    if spec == BUILTIN_CHROMA:
        return SkinColourSegmenter(colour_test="chroma")
    return SavedModelSegmenter(spec, face_classes=face_classes, input_size=input_size)
