"""face_gcn.data.masks: the built-in skin-colour segmenter and user SavedModels."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.data import masks

SIZE = 224
LANDMARKS = np.array([[80.0, 90.0], [144.0, 90.0], [112.0, 128.0], [84.0, 152.0],
                      [140.0, 152.0]])


def _skin_oval(seed):
    """A skin-coloured oval (centre (112, 118), axes (66, 90)) with noise of std 4 on a blue background.
    Returns (rgb [S, S, 3] uint8, face [S, S] bool, skin [S, S, 3] float64: the noisy skin colour everywhere)."""
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    rgb[:] = (40, 70, 160)
    face = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(face, (112, 118), (66, 90), 0, 0, 360, 1, -1)
    face = face.astype(bool)
    skin = np.array([205, 150, 125]) + np.random.default_rng(seed).normal(0, 4, (SIZE, SIZE, 3))
    rgb[face] = np.clip(skin, 0, 255).astype(np.uint8)[face]
    return rgb, face, skin


def _cartoon_face():
    """Blue background; a skin-coloured oval face with dark eyes/brows and a red mouth; dark
    hair above. Returns (rgb, skin+features truth mask)."""
    rgb, face, _ = _skin_oval(0)
    truth = face.astype(np.uint8)
    cv2.ellipse(rgb, (112, 22), (80, 30), 0, 0, 360, (30, 20, 15), -1)  # hair
    truth[:52] = 0
    for eye in LANDMARKS[:2]:
        cv2.ellipse(rgb, (int(eye[0]), int(eye[1])), (12, 6), 0, 0, 360, (30, 25, 20), -1)
        cv2.ellipse(rgb, (int(eye[0]), int(eye[1]) - 14), (16, 3), 0, 0, 360, (50, 35, 25), -1)
    cv2.ellipse(rgb, (112, 152), (26, 8), 0, 0, 360, (170, 40, 50), -1)
    return rgb, truth


def test_builtin_mask_covers_the_face_with_eyes_and_mouth_and_nothing_else():
    rgb, truth = _cartoon_face()
    mask = masks.SkinColourSegmenter().segment(rgb, LANDMARKS)
    assert mask.dtype == np.uint8 and mask.shape == (SIZE, SIZE) and set(np.unique(mask)) <= {0, 1}
    inside = mask.astype(bool)
    truth = truth.astype(bool)
    iou = (inside & truth).sum() / (inside | truth).sum()
    assert iou > 0.8, iou
    background = (rgb == (40, 70, 160)).all(axis=-1)
    assert not inside[background].any()
    # the union a parsing net would give: no holes at eyes, brows or mouth
    for x, y in [(80, 90), (144, 90), (80, 76), (144, 76), (112, 152), (96, 152)]:
        assert inside[y, x], (x, y)


def test_builtin_skin_probability_is_high_on_skin_low_elsewhere():
    rgb, _ = _cartoon_face()
    probability = masks.SkinColourSegmenter().skin_probability(rgb, LANDMARKS)
    assert probability[110, 100] > 0.3
    assert probability[200, 10] < 1e-3
    assert probability[152, 112] < 0.05  # red lips are not skin colour


def test_builtin_rejects_bad_inputs():
    with pytest.raises(ValueError, match="uint8"):
        masks.SkinColourSegmenter().segment(np.zeros((8, 8, 3), np.float32), LANDMARKS)
    with pytest.raises(ValueError, match=r"\[5, 2\]"):
        masks.SkinColourSegmenter().segment(np.zeros((8, 8, 3), np.uint8), LANDMARKS[:4])


class _RedProbability(tf.Module):
    """Face probability = sigmoid((R - 128) / 10): the mask is exactly R >= 128."""

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32, name="image")])
    def __call__(self, image):
        return {"probability": tf.sigmoid((image[..., 0] - 128.0) / 10.0)}


class _ThreeClasses(tf.Module):
    """Class scores = the three colour channels (so argmax = brightest channel)."""

    def __init__(self):
        super().__init__()
        self.weights = tf.Variable(tf.eye(3))

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32, name="image")])
    def __call__(self, image):
        return {"logits": tf.einsum("bhwc,cd->bhwd", image, self.weights)}


def _export(module, path):
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return str(path)


@pytest.fixture(scope="module")
def random_crop():
    return np.random.default_rng(5).integers(0, 256, (32, 40, 3)).astype(np.uint8)


def test_saved_model_probability_output(tmp_path, random_crop):
    segmenter = masks.make_segmenter(_export(_RedProbability(), tmp_path / "prob"))
    mask = segmenter.segment(random_crop, LANDMARKS)
    np.testing.assert_array_equal(mask, (random_crop[..., 0] >= 128).astype(np.uint8))


def test_saved_model_class_output_and_resizing(tmp_path, random_crop):
    path = _export(_ThreeClasses(), tmp_path / "classes")
    mask = masks.SavedModelSegmenter(path, face_classes=[0, 2]).segment(random_crop, LANDMARKS)
    np.testing.assert_array_equal(mask, np.isin(random_crop.argmax(-1), [0, 2]).astype(np.uint8))
    resized = masks.SavedModelSegmenter(path, face_classes=[1], input_size=16)
    small = cv2.resize(random_crop, (16, 16), interpolation=cv2.INTER_LINEAR)
    expected = cv2.resize((small.argmax(-1) == 1).astype(np.uint8), (40, 32),
                          interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(resized.segment(random_crop, LANDMARKS), expected)
    with pytest.raises(ValueError, match="face class"):
        masks.SavedModelSegmenter(path).segment(random_crop, LANDMARKS)


def test_saved_model_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        masks.make_segmenter(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="could not load"):
        masks.make_segmenter(str(tmp_path / "empty"))


def _landmarks68():
    """iBUG-68 points of a frontal cartoon face centred at (112, 118), axes (66, 90) (_occluded_face)."""
    angles = np.linspace(-0.25, np.pi + 0.25, 17)
    jaw = np.stack([112 - 64 * np.cos(angles), 118 + 88 * np.sin(angles)], 1)
    brow_x = np.linspace(62, 100, 5)
    left_brow = np.stack([brow_x, 76 - 4 * np.sin(np.linspace(0, np.pi, 5))], 1)
    right_brow = np.stack([224 - brow_x[::-1], left_brow[::-1, 1]], 1)
    bridge = np.stack([np.full(4, 112.0), np.linspace(88, 122, 4)], 1)
    nose_base = np.stack([np.linspace(100, 124, 5), np.full(5, 128.0)], 1)
    ring = np.linspace(np.pi, -np.pi, 6, endpoint=False)  # outer corner first, upper lid, inner, lower

    def eye(cx, flip):
        return np.stack([cx - flip * 12 * np.cos(ring), 90 - 6 * np.abs(np.sin(ring)) * np.sign(np.sin(ring))], 1)
    outer = np.linspace(np.pi, -np.pi, 12, endpoint=False)
    inner = np.linspace(np.pi, -np.pi, 8, endpoint=False)
    mouth = np.stack([112 - 26 * np.cos(outer), 152 - 8 * np.sin(outer)], 1)
    lips = np.stack([112 - 18 * np.cos(inner), 152 - 3 * np.sin(inner)], 1)
    points = np.concatenate([jaw, left_brow, right_brow, bridge, nose_base, eye(80, 1), eye(144, -1), mouth, lips])
    assert points.shape == (68, 2)
    return points


def _occluded_face():
    """A skin oval on blue with eyes, brows and a red mouth, occluded by a fringe of hair with the
    skin's own chroma but 110 levels darker (brown hair on fair skin) and a grey glasses rim around the
    image-left eye. Returns (rgb, truth face mask, fringe [H, W] bool, rim [H, W] bool)."""
    rgb, face, skin = _skin_oval(1)
    for cx in (80, 144):
        cv2.ellipse(rgb, (cx, 90), (12, 6), 0, 0, 360, (30, 25, 20), -1)
        cv2.ellipse(rgb, (cx, 74), (19, 3), 0, 0, 360, (50, 35, 25), -1)
    cv2.ellipse(rgb, (112, 152), (26, 8), 0, 0, 360, (170, 40, 50), -1)
    fringe = np.zeros((SIZE, SIZE), bool)
    fringe[36:62] = True
    fringe &= face
    rgb[fringe] = np.clip(skin - 110, 0, 255).astype(np.uint8)[fringe]
    rim = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(rim, (82, 92), 18, 1, 3)
    rim = rim.astype(bool) & face
    rgb[rim] = (40, 40, 40)
    return rgb, face & ~fringe & ~rim, fringe, rim


def test_68_point_mask_leaves_out_a_same_hue_fringe_and_a_glasses_rim():
    rgb, truth, fringe, rim = _occluded_face()
    points = _landmarks68()
    mask = masks.SkinColourSegmenter().segment(rgb, points).astype(bool)
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9, iou
    assert mask[fringe].mean() < 0.05
    features = masks.feature_regions(points, (SIZE, SIZE))
    assert mask[rim & ~features].mean() < 0.1
    for x, y in [(80, 90), (144, 90), (70, 76), (150, 76), (112, 152), (112, 128), (90, 120)]:
        assert mask[y, x], (x, y)
    assert not mask[(rgb == (40, 70, 160)).all(axis=-1)].any()
    # the chroma-only test cannot tell the fringe from skin and fills the rim back in
    chroma = masks.SkinColourSegmenter(colour_test="chroma").segment(rgb, points).astype(bool)
    assert chroma[fringe].mean() > 0.8 and chroma[rim & ~features].mean() > 0.8


def test_68_point_face_region_follows_the_jaw_and_rises_over_the_brows():
    points = _landmarks68()
    region = masks.face_region(points, (SIZE, SIZE))
    jaw = cv2.fillPoly(np.zeros((SIZE, SIZE), np.uint8), [np.round(points[:17]).astype(np.int32)], 1).astype(bool)
    assert region[jaw].mean() > 0.99          # everything inside the jaw line
    assert not region[216:].any()             # nothing below the chin (y = 206)
    outline = masks.face_outline68(points)
    # the inner brow ends (y = 76) rise the most: 0.5 x (nose bridge y = 88 to chin y = 206) x the
    # taper at the 5th of 10 brow points, 0.5 + 0.5 sin(4 pi / 9)
    top = outline[17:, 1].min()
    assert abs(top - (76 - 0.5 * 118 * (0.5 + 0.5 * np.sin(4 * np.pi / 9)))) < 0.5, top
    ends = outline[[17, 26], 1]
    np.testing.assert_allclose(ends, 76 - 0.5 * 118 * 0.5, atol=0.5)
    assert region[20, 112] and not region[8, 112]
