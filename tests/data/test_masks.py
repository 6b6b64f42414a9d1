"""face_gcn.data.masks: the built-in skin-colour segmenter and user SavedModels."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.data import masks

SIZE = 224
LANDMARKS = np.array([[80.0, 90.0], [144.0, 90.0], [112.0, 128.0], [84.0, 152.0],
                      [140.0, 152.0]])


def _cartoon_face():
    """Blue background; a skin-coloured oval face with dark eyes/brows and a red mouth; dark
    hair above. Returns (rgb, skin+features truth mask)."""
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    rgb[:] = (40, 70, 160)
    truth = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(truth, (112, 118), (66, 90), 0, 0, 360, 1, -1)
    rng = np.random.default_rng(0)
    skin = np.array([205, 150, 125]) + rng.normal(0, 4, (SIZE, SIZE, 3))
    rgb[truth > 0] = np.clip(skin, 0, 255).astype(np.uint8)[truth > 0]
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
