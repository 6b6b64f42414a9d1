import numpy as np
import pytest
import tensorflow as tf

from face_gcn.losses import photometric
from face_gcn.losses.photometric import pixel_loss


def test_pixel_loss_hand_computed():
    images = np.zeros((1, 1, 3, 3), np.float32)
    renders = np.zeros((1, 1, 3, 3), np.float32)
    renders[0, 0, 0] = [3.0, 4.0, 0.0]   # distance 5
    renders[0, 0, 1] = [1.0, 2.0, 2.0]   # distance 3
    renders[0, 0, 2] = [10.0, 0.0, 0.0]  # masked out
    mask = np.array([[[1.0, 0.5, 0.0]]], np.float32)
    assert float(pixel_loss(images, renders, mask)) == pytest.approx((5.0 + 0.5 * 3.0) / 1.5)


def test_pixel_loss_matches_numpy_over_batch():
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 4, 5, 3)), rng.random((2, 4, 5, 3))
    m = (rng.random((2, 4, 5)) > 0.4) * rng.random((2, 4, 5))
    expected = np.sum(m * np.sqrt(np.sum((x - y) ** 2, -1))) / np.sum(m)
    got = pixel_loss(x.astype(np.float32), y.astype(np.float32), m.astype(np.float32))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_empty_mask_gives_zero_and_finite_gradient():
    x = tf.Variable(np.ones((1, 2, 2, 3), np.float32))
    with tf.GradientTape() as tape:
        loss = pixel_loss(x, np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 2, 2), np.float32))
    assert float(loss) == 0.0
    assert np.all(np.isfinite(tape.gradient(loss, x).numpy()))


def test_gradient_at_zero_difference_is_finite_and_elsewhere_unit_direction():
    renders = tf.Variable(np.array([[[[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]]]], np.float32))
    images = np.zeros((1, 1, 2, 3), np.float32)
    with tf.GradientTape() as tape:
        loss = pixel_loss(images, renders, np.ones((1, 1, 2), np.float32))
    grad = tape.gradient(loss, renders).numpy()
    np.testing.assert_allclose(grad[0, 0, 0], 0.0)
    np.testing.assert_allclose(grad[0, 0, 1], np.array([0.6, 0.8, 0.0]) / 2.0, rtol=1e-6)


def test_shape_errors():
    with pytest.raises(ValueError):
        pixel_loss(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 3)))


def test_pixel_errors_normalise_each_face_by_its_own_mask():
    rng = np.random.default_rng(3)
    images, renders = rng.uniform(size=(2, 4, 4, 3)), rng.uniform(size=(2, 4, 4, 3))
    mask = (rng.uniform(size=(2, 4, 4)) > 0.4).astype(np.float64)
    mask[1] = 0.0  # an empty face scores 0
    distance = np.sqrt(((images - renders) ** 2).sum(-1))
    errors = photometric.pixel_errors(images, renders, mask).numpy()
    np.testing.assert_allclose(errors, [(mask[0] * distance[0]).sum() / mask[0].sum(), 0.0], rtol=1e-6)
