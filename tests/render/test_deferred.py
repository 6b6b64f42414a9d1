"""Vertex-colour renderer and attribute interpolation against a NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import deferred, op_library

BACKENDS = ["fallback", pytest.param("op", marks=pytest.mark.skipif(
    op_library.load() is None, reason="compiled op not available"))]


def _scene():
    # Two triangles in front of the camera covering the lower-left part of the image.
    clip = np.array([[[-0.9, -0.9, 0.1, 1.0], [0.7, -0.8, 0.2, 1.0], [-0.8, 0.6, 0.3, 1.0],
                      [0.6, 0.55, 0.0, 2.0]]], np.float32)
    triangles = np.array([[0, 1, 2], [1, 3, 2]], np.int32)
    colors = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]]], np.float32)
    return clip, triangles, colors


def _reference(clip, triangles, colors, width, height):
    """Float64 per-pixel colours with rows already flipped (row 0 = top)."""
    image = np.zeros((height, width, colors.shape[-1]))
    alpha = np.zeros((height, width))
    for iy in range(height):
        for ix in range(width):
            p = [(ix + 0.5) / (width / 2) - 1, (iy + 0.5) / (height / 2) - 1, 1.0]
            best = 1.0
            for tri in triangles:
                c = clip[tri].astype(np.float64)
                lam = np.linalg.solve(np.stack([c[:, 0], c[:, 1], c[:, 3]]), p)
                if np.all(lam >= 0):
                    b = lam / lam.sum()
                    z = (b @ c[:, 2]) / (b @ c[:, 3])
                    if z <= best:
                        best = z
                        image[height - 1 - iy, ix] = b @ colors[tri]
                        alpha[height - 1 - iy, ix] = 1.0
    return image, alpha


@pytest.mark.parametrize("backend", BACKENDS)
def test_render_vertex_colors_matches_reference(backend):
    clip, triangles, colors = _scene()
    image, alpha = deferred.render_vertex_colors(clip, triangles, colors, 12, 10, backend=backend)
    ref_image, ref_alpha = _reference(clip[0], triangles, colors[0], 12, 10)
    np.testing.assert_array_equal(alpha.numpy()[0], ref_alpha)
    np.testing.assert_allclose(image.numpy()[0], ref_image, atol=1e-5)
    assert ref_alpha[-2, 1] == 1 and ref_alpha[0, -1] == 0  # bottom-left covered (flip)


def test_interpolate_attributes_is_zero_for_empty_pixels_and_differentiable():
    attributes = tf.Variable(np.arange(12, dtype=np.float32).reshape(1, 4, 3))
    triangles = tf.constant([[0, 1, 2], [1, 3, 2]])
    bary = tf.constant([[[[0.2, 0.3, 0.5], [0.0, 0.0, 0.0]]]])
    ids = tf.constant([[[1, -1]]])
    with tf.GradientTape() as tape:
        out = deferred.interpolate_attributes(attributes, triangles, bary, ids)
        loss = tf.reduce_sum(out)
    np.testing.assert_allclose(out.numpy()[0, 0, 0], 0.2 * np.array([3, 4, 5]) + 0.3 * np.array(
        [9, 10, 11]) + 0.5 * np.array([6, 7, 8]), rtol=1e-6)
    np.testing.assert_array_equal(out.numpy()[0, 0, 1], 0)
    grad = tape.gradient(loss, attributes).numpy()[0]
    np.testing.assert_allclose(grad[:, 0], [0.0, 0.2, 0.5, 0.3], atol=1e-7)
