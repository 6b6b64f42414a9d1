"""The coefficients-to-image forward model on the built-in demo model."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.morphable import configured
from face_gcn.render import face_renderer


@pytest.fixture(scope="module")
def model():
    return configured.load_demo()


def _mean_face(batch=1, yaw=0.0):
    coefficients = np.zeros((batch, 257), np.float32)
    coefficients[:, 225] = yaw   # angles start at 224: x (pitch), y (yaw), z (roll)
    return coefficients


def test_frontal_mean_face_pixels_show_the_lit_vertex_colours(model):
    render = face_renderer.render_coefficients(model, _mean_face(), image_size=224)
    image, alpha = render.image[0].numpy(), render.alpha[0].numpy()
    assert image.shape == (224, 224, 3) and alpha.shape == (224, 224)
    landmarks = render.landmarks[0].numpy()
    colors = render.colors[0].numpy()
    # Independent check: at each landmark's projected pixel the render must show that
    # vertex's lit colour (up to the colour change across one pixel of surface).
    for index in (30, 36, 45, 48, 54, 8):  # nose tip, eye corners, mouth corners, chin
        column, row = np.floor(landmarks[index]).astype(int)
        assert alpha[row, column] == 1.0
        expected = colors[model.landmark_indices[index]]
        np.testing.assert_allclose(image[row, column], expected, atol=0.06)
    # Deng's camera: a face about 1.6 units wide spans about 1015 * 1.6 / 10 pixels.
    columns = np.nonzero(alpha.any(axis=0))[0]
    width = columns.max() - columns.min() + 1
    model_width = np.ptp(model.mean_shape[:, 0])
    assert abs(width - 1015.0 * model_width / (10.0 - model.mean_shape[:, 2].max())) < 25
    assert np.all(image[alpha == 0] == 0)


def test_yaw_moves_the_nose_and_the_image_size_scales_the_camera(model):
    left = face_renderer.render_coefficients(model, _mean_face(yaw=-0.4), image_size=112)
    right = face_renderer.render_coefficients(model, _mean_face(yaw=0.4), image_size=112)
    nose_left, nose_right = left.landmarks[0, 30, 0], right.landmarks[0, 30, 0]
    # Independent estimate: the nose tip (x ~ 0, depth z in front of the recentred origin)
    # moves by about z sin(yaw) each way, seen at focal 507.5 px from distance 10 - z cos(yaw).
    centred = model.mean_shape - model.mean_shape.mean(axis=0)
    tip_z = centred[model.landmark_indices[30], 2]
    expected = 2 * tip_z * np.sin(0.4) * 507.5 / (10.0 - tip_z * np.cos(0.4))
    assert abs((nose_right - nose_left) - expected) < 0.15 * expected
    full = face_renderer.render_coefficients(model, _mean_face(), image_size=224)
    half = face_renderer.render_coefficients(model, _mean_face(), image_size=112)
    np.testing.assert_allclose(half.landmarks.numpy() * 2.0, full.landmarks.numpy(), atol=1e-3)


def test_gradients_reach_every_coefficient_block(model):
    coefficients = tf.Variable(_mean_face(batch=2) + 0.05)
    weights = tf.random.stateless_uniform([2, 64, 64, 3], seed=[1, 2])
    with tf.GradientTape() as tape:
        render = face_renderer.render_coefficients(model, coefficients, image_size=64)
        loss = tf.reduce_sum(render.image * weights)
    gradient = tape.gradient(loss, coefficients).numpy()
    assert np.all(np.isfinite(gradient))
    for block in (slice(0, 80), slice(80, 144), slice(144, 224), slice(224, 227),
                  slice(227, 254), slice(254, 256)):
        assert np.abs(gradient[:, block]).max() > 0, block


def test_rejects_bad_coefficients(model):
    with pytest.raises(ValueError):
        face_renderer.render_coefficients(model, np.zeros((1, 256), np.float32))
    with pytest.raises(ValueError):
        face_renderer.render_coefficients(model, _mean_face(), image_size=0)
