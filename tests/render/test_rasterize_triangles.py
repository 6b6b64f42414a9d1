"""rasterize_triangles as a drop-in for Genova's module: his raw op's API, empty ids, backends."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import op_library, rasterize_triangles, rasterizer

BACKENDS = [
    "fallback",
    pytest.param("op", marks=pytest.mark.skipif(
        op_library.load() is None, reason=f"compiled op not available: {op_library.status()}")),
]

# One triangle covering the lower-left part of a 9 x 7 image, one pixel-sized gap elsewhere.
CLIP = np.array([[-1.0, -1.0, 0.2, 1.0], [0.5, -1.0, 0.2, 1.0], [-1.0, 0.5, 0.2, 1.0],
                 [0.6, 0.6, 0.0, 1.0], [0.9, 0.6, 0.0, 1.0], [0.6, 0.9, 0.0, 1.0]], np.float32)
TRIANGLES = np.array([[0, 1, 2], [3, 4, 5]], np.int32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_op_is_genovas_single_mesh_op_with_id_zero_where_empty(backend):
    module = rasterize_triangles.rasterize_triangles_module
    result = module.rasterize_triangles(CLIP, TRIANGLES, 9, 7, backend=backend)
    assert result._fields == ("barycentric_coordinates", "triangle_ids", "z_buffer")
    bary, ids, z = (t.numpy() for t in result)
    assert bary.shape == (7, 9, 3) and ids.shape == (7, 9) and z.shape == (7, 9)
    ours_bary, ours_ids, ours_z = (t.numpy()[0] for t in rasterizer.rasterize(
        CLIP[np.newaxis], TRIANGLES, 9, 7, backend=backend))
    empty = ours_ids < 0
    assert empty.any() and (~empty).any()
    np.testing.assert_array_equal(ids, np.where(empty, 0, ours_ids))
    np.testing.assert_array_equal(bary, ours_bary)
    np.testing.assert_array_equal(z, ours_z)
    # His idiom: every id indexes the triangle list.
    assert tf.gather(tf.constant(TRIANGLES), result.triangle_ids).shape == (7, 9, 3)
    # face_gcn's convention on request.
    own = module.rasterize_triangles(CLIP, TRIANGLES, 9, 7, empty_triangle_id=-1,
                                     backend=backend)
    np.testing.assert_array_equal(own.triangle_ids.numpy(), ours_ids)


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_op_rejects_a_batch(backend):
    with pytest.raises(ValueError, match=r"\(-1, 4\)"):
        rasterize_triangles.rasterize_triangles_module.rasterize_triangles(
            CLIP[np.newaxis], TRIANGLES, 9, 7, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_op_matches_autodiff(backend):
    module = rasterize_triangles.rasterize_triangles_module
    vertices = tf.constant(CLIP)
    upstream = tf.random.stateless_normal([7, 9, 3], [3, 4])
    with tf.GradientTape() as tape:
        tape.watch(vertices)
        result = module.rasterize_triangles(vertices, TRIANGLES, 9, 7, backend=backend)
    expected = tape.gradient(result.barycentric_coordinates, vertices, output_gradients=upstream)
    gradient = module.rasterize_triangles_grad(vertices, TRIANGLES, result.barycentric_coordinates,
                                               result.triangle_ids, upstream, 9, 7,
                                               backend=backend)
    assert np.abs(expected.numpy()).max() > 0
    np.testing.assert_allclose(gradient.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_numpy_integer_image_sizes(backend):
    width, height = np.int64(9), np.int32(7)
    bary, _, _ = rasterizer.rasterize(CLIP[np.newaxis], TRIANGLES, width, height, backend=backend)
    assert bary.shape == (1, 7, 9, 3)
    raw = rasterize_triangles.rasterize_triangles_module.rasterize_triangles(
        CLIP, TRIANGLES, width, height, backend=backend)
    np.testing.assert_array_equal(raw.barycentric_coordinates.numpy(), bary.numpy()[0])
    image = rasterize_triangles.rasterize_clip_space(CLIP[np.newaxis], CLIP[np.newaxis],
                                                     TRIANGLES, width, height, [0.0] * 4,
                                                     backend=backend)
    assert image.shape == (1, 7, 9, 4)
    for bad in (9.0, True, "9"):
        with pytest.raises(TypeError):
            rasterizer.rasterize(CLIP[np.newaxis], TRIANGLES, bad, 7, backend=backend)


def test_use_backend_sets_the_default_and_restores_it():
    assert rasterize_triangles.default_backend() == "auto"
    with rasterize_triangles.use_backend("fallback"):
        assert rasterize_triangles.default_backend() == "fallback"
        with pytest.raises(RuntimeError):
            with rasterize_triangles.use_backend("op"):
                raise RuntimeError("leaves the block")
        assert rasterize_triangles.default_backend() == "fallback"
    assert rasterize_triangles.default_backend() == "auto"
    with pytest.raises(ValueError):
        with rasterize_triangles.use_backend("opengl"):
            pass


def test_default_backend_reaches_the_rasterizer(monkeypatch):
    calls = []
    original = rasterizer.rasterize

    def spy(*args, backend="auto"):
        calls.append(backend)
        return original(*args, backend="fallback")

    monkeypatch.setattr(rasterizer, "rasterize", spy)
    module = rasterize_triangles.rasterize_triangles_module
    module.rasterize_triangles(CLIP, TRIANGLES, 9, 7)
    with rasterize_triangles.use_backend("fallback"):
        module.rasterize_triangles(CLIP, TRIANGLES, 9, 7)
        rasterize_triangles.rasterize_clip_space(CLIP[np.newaxis], CLIP[np.newaxis], TRIANGLES,
                                                 9, 7, [0.0] * 4)
        module.rasterize_triangles(CLIP, TRIANGLES, 9, 7, backend="auto")
    assert calls == ["auto", "fallback", "fallback", "auto"]
