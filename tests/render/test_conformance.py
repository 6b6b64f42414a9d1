"""Conformance with google/tf_mesh_renderer: its golden renders and its gradient checks.

Goldens live at <repo>/../shared/conformance/tf_mesh_renderer (skipped when absent). Every scene
runs with both rasterizer backends ("op" skipped when the compiled library is not built).
"""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance_scenes as scenes  # noqa: E402

from face_gcn.render import mesh_renderer, op_library, rasterizer  # noqa: E402

GOLDEN_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                           "conformance", "tf_mesh_renderer"))

BACKENDS = [
    "fallback",
    pytest.param("op", marks=pytest.mark.skipif(
        op_library.load() is None, reason=f"compiled op not available: {op_library.status()}")),
]


def _golden(name):
    path = os.path.join(GOLDEN_DIR, name + ".png")
    if not os.path.isfile(path):
        pytest.skip(f"golden image {path} not present")
    with open(path, "rb") as handle:
        return tf.io.decode_png(handle.read()).numpy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", scenes.GOLDENS)
def test_render_matches_golden(name, backend):
    golden = _golden(name)
    render = scenes.render_golden(name, backend)
    assert render.shape[:2] == golden.shape[:2]
    max_diff, outliers = scenes.compare(golden, render)
    # Genova's Python tolerance: at most 0.1 % of pixels with a channel off by more than 0.01.
    assert outliers <= 0.001, f"{name}: {outliers:.4%} outlier pixels (max diff {max_diff:.4f})"
    if name in scenes.BYTE_EXACT:
        # Genova's C++ tests: uint8(trunc(b * 255)) equal byte for byte.
        np.testing.assert_array_equal((render[..., :3] * 255).astype(np.uint8), golden[..., :3])


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalar_shininess_broadcasts_like_per_vertex(backend):
    golden = _golden("Colored_Cube_1")
    render = scenes.colored_cubes(backend, shininess=6.0)[1]
    _, outliers = scenes.compare(golden, render)
    assert outliers <= 0.001


def _jacobians(batched_function, x, delta, chunk=1024):
    """Theoretical (autodiff) and numerical (central differences) Jacobians [M, x.size].

    batched_function maps [N, *x.shape] to [N, *out]; rows of many backward passes are taken at
    once by giving each batch copy its own output row to differentiate.
    """
    x = np.asarray(x, np.float32)
    size = x.size
    steps = np.eye(size, dtype=np.float32).reshape((size,) + x.shape) * delta
    plus = batched_function(tf.constant(x[np.newaxis] + steps)).numpy().reshape(size, -1)
    minus = batched_function(tf.constant(x[np.newaxis] - steps)).numpy().reshape(size, -1)
    numerical = ((plus - minus) / (2.0 * delta)).T                 # [M, size]
    rows = numerical.shape[0]
    theoretical = np.zeros_like(numerical)
    for begin in range(0, rows, chunk):
        count = min(chunk, rows - begin)
        copies = tf.Variable(np.repeat(x[np.newaxis], count, axis=0))
        selector = np.zeros((count, rows), np.float32)
        selector[np.arange(count), begin + np.arange(count)] = 1.0
        with tf.GradientTape() as tape:
            outputs = tf.reshape(batched_function(copies), [count, rows])
            picked = tf.reduce_sum(outputs * selector)
        gradient = tape.gradient(picked, copies)
        if gradient is not None:
            theoretical[begin:begin + count] = tf.convert_to_tensor(gradient).numpy().reshape(
                count, size)
    return theoretical, numerical


def _jacobians_match(batched_function, x, delta, threshold, max_outlier_fraction):
    """Genova's check: relative error |numerical - theoretical| / numerical > threshold."""
    theoretical, numerical = _jacobians(batched_function, x, delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        outliers = np.abs(numerical - theoretical) / numerical > threshold
    fraction = np.count_nonzero(outliers) / numerical.size
    assert np.abs(theoretical).max() > 0, "gradient is identically zero"
    return fraction <= max_outlier_fraction, fraction


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_pixel_barycentric_gradient(backend):
    """Genova's testSimpleTriangleGradientComputation: pixel (325, 245), 640 x 480."""
    def pixel(clip):
        bary, _, _ = rasterizer.rasterize(clip, tf.constant([[0, 1, 2]]), 640, 480,
                                          backend=backend)
        return bary[:, 245:246, 325:326, :]
    ok, fraction = _jacobians_match(pixel, scenes.TRIANGLE_CLIP, 4e-2, 0.01, 0.0)
    assert ok, f"{fraction:.4f} outliers"


@pytest.mark.parametrize("backend", BACKENDS)
def test_cube_barycentric_gradient(backend):
    """Genova's testInternalRenderGradientComputation: the NDC cube at 28 x 21."""
    def image(clip):
        bary, _, _ = rasterizer.rasterize(clip, scenes.CUBE_TRIANGLES, 28, 21, backend=backend)
        return bary
    ok, fraction = _jacobians_match(image, scenes.GRADIENT_CUBE_CLIP, 4e-2, 0.01, 0.01)
    assert ok, f"{fraction:.4f} outliers"


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_render_gradient(backend):
    """Genova's testFullRenderGradientComputation: d render / d cube vertices at 28 x 21."""
    transforms = mesh_renderer.camera_utils.euler_matrices(scenes.CUBE_ANGLES)[:, :3, :3]
    unit = scenes.CUBE_VERTICES / np.linalg.norm(scenes.CUBE_VERTICES, axis=1, keepdims=True)
    normals = tf.matmul(tf.stack([unit] * 2), transforms, transpose_b=True)

    def render(cubes):  # [N, 8, 3] -> [N, 2, 21, 28, 4]
        count = tf.shape(cubes)[0]
        vertices = tf.reshape(tf.matmul(cubes[:, tf.newaxis], transforms[tf.newaxis],
                                        transpose_b=True), [-1, 8, 3])
        eye = tf.tile([[0.0, 0.0, 6.0]], [2 * count, 1])
        images = mesh_renderer.mesh_renderer(
            vertices, scenes.CUBE_TRIANGLES, tf.tile(normals, [count, 1, 1]),
            tf.ones_like(vertices), eye, tf.zeros_like(eye), tf.tile([[0.0, 1.0, 0.0]], [2 * count, 1]),
            eye[:, tf.newaxis], tf.ones([2 * count, 1, 3]), 28, 21,
            specular_mode="genova", backend=backend)
        return tf.reshape(images, [count, 2, 21, 28, 4])
    ok, fraction = _jacobians_match(render, scenes.CUBE_VERTICES, 1e-3, 0.01, 0.01)
    assert ok, f"{fraction:.4f} outliers"
