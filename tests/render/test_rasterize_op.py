"""Tests of the compiled rasterizer op against an independent float64 NumPy rasterizer."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import op_library

pytestmark = pytest.mark.skipif(
    op_library.load() is None,
    reason=f"compiled rasterizer op not built ({op_library.status()})")

from face_gcn.render import rasterize_op  # noqa: E402  (after the skip marker on purpose)


# ---------------------------------------------------------------- reference (float64 NumPy)

def reference_rasterize(clip_vertices, triangles, width, height):
    """Per-pixel Olano-Greer rasterization in float64, written from the documented rules.

    clip_vertices [V, 4], triangles [T, 3] -> ids [H, W] (-1 empty), bary [H, W, 3], z [H, W].
    """
    verts = np.asarray(clip_vertices, np.float64)
    px = (np.arange(width) + 0.5) / (0.5 * width) - 1.0
    py = (np.arange(height) + 0.5) / (0.5 * height) - 1.0
    grid_x, grid_y = np.meshgrid(px, py)                     # [H, W], row 0 = NDC y = -1
    pixels = np.stack([grid_x, grid_y, np.ones_like(grid_x)], axis=-1)  # [H, W, 3]
    ids = np.full((height, width), -1, np.int64)
    bary = np.zeros((height, width, 3))
    depth = np.ones((height, width))
    for index, tri in enumerate(triangles):
        corners = verts[tri]                                  # [3, 4]
        if np.all(corners[:, 3] < 0):
            continue
        matrix = np.stack([corners[:, 0], corners[:, 1], corners[:, 3]])  # rows x, y, w
        det = np.linalg.det(matrix)
        if det == 0:
            continue
        # Adjugate with the sign of det: edge values independent of winding.
        edges = pixels @ (np.linalg.inv(matrix) * abs(det)).T  # [H, W, 3]
        inside = np.all(edges >= 0, axis=-1) & np.any(edges > 0, axis=-1)
        b = edges / np.sum(edges, axis=-1, keepdims=True).clip(1e-300)
        z = (b @ corners[:, 2]) / (b @ corners[:, 3])
        keep = inside & (z >= -1) & (z <= 1) & (z <= depth)   # ties: later triangle wins
        ids[keep] = index
        depth[keep] = z[keep]
        bary[keep] = b[keep]
    return ids, bary, depth


def random_scene(rng, triangle_count, vertex_count=None, w_range=(0.8, 2.5), z_scale=1.0):
    vertex_count = vertex_count or 3 * triangle_count
    w = rng.uniform(*w_range, size=(vertex_count, 1))
    xy = rng.uniform(-1.1, 1.1, size=(vertex_count, 2)) * w
    z = rng.uniform(-z_scale, z_scale, size=(vertex_count, 1)) * w
    vertices = np.concatenate([xy, z, w], axis=1).astype(np.float32)
    triangles = rng.integers(0, vertex_count, size=(triangle_count, 3)).astype(np.int32)
    triangles = triangles[np.array([len(set(t)) == 3 for t in triangles])]
    return vertices, triangles


def run_op(vertices, triangles, width, height):
    bary, ids, z = rasterize_op.rasterize(vertices, triangles, width, height)
    return bary.numpy(), ids.numpy(), z.numpy()


def assert_matches_reference(vertices_batch, triangles, width, height, atol=1e-5):
    bary, ids, z = run_op(vertices_batch, triangles, width, height)
    assert bary.shape == (len(vertices_batch), height, width, 3)
    for image, vertices in enumerate(vertices_batch):
        ref_ids, ref_bary, ref_z = reference_rasterize(vertices, triangles, width, height)
        np.testing.assert_array_equal(ids[image], ref_ids)
        np.testing.assert_allclose(bary[image], ref_bary, atol=atol)
        np.testing.assert_allclose(z[image], ref_z, atol=atol)
    return bary, ids, z


# ---------------------------------------------------------------- forward

def test_random_scenes_match_reference():
    rng = np.random.default_rng(0)
    batch = []
    for _ in range(3):
        vertices, triangles = random_scene(rng, 40, vertex_count=60)
        batch.append(vertices)
    _, ids, _ = assert_matches_reference(np.stack(batch), triangles, 37, 29)
    assert (ids >= 0).mean() > 0.3 and (ids == -1).any()


def test_small_triangles_and_occlusion_match_reference():
    rng = np.random.default_rng(1)
    vertices, triangles = random_scene(rng, 600, z_scale=0.9)
    # Shrink every triangle around its first corner: many sub-pixel triangles.
    vertices = vertices.reshape(-1, 3, 4)
    vertices[:, 1:, :2] = vertices[:, :1, :2] + 0.08 * (vertices[:, 1:, :2] - vertices[:, :1, :2])
    vertices = vertices.reshape(-1, 4)
    triangles = np.arange(len(vertices), dtype=np.int32).reshape(-1, 3)
    # The edge functions are float32 products of coordinates ~1 whose differences are ~1e-3
    # for these tiny triangles (as in Genova's kernel): barycentrics lose ~3 more digits.
    assert_matches_reference(vertices[None], triangles, 64, 48, atol=5e-4)


def test_triangle_crossing_the_eye_plane_matches_reference():
    # One corner behind the camera (w < 0): the projection is unbounded.
    vertices = np.array([[-0.5, -0.5, 0.0, 1.0], [0.6, -0.4, 0.2, 1.0],
                         [0.1, 0.8, -0.5, -0.3], [0.2, 0.2, 0.0, -1.0],
                         [0.3, 0.1, 0.0, -2.0], [0.1, 0.4, 0.0, -1.0]], np.float32)
    triangles = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    _, ids, _ = assert_matches_reference(vertices[None], triangles, 20, 16)
    assert not (ids == 1).any()  # all three w < 0: skipped


def test_both_windings_cover_the_same_pixels():
    vertices = np.array([[[-0.7, -0.6, 0.1, 1.0], [0.8, -0.5, 0.1, 1.0], [0.0, 0.7, 0.1, 1.0]]],
                        np.float32)
    bary_ccw, ids_ccw, z_ccw = run_op(vertices, np.array([[0, 1, 2]], np.int32), 16, 16)
    bary_cw, ids_cw, z_cw = run_op(vertices, np.array([[0, 2, 1]], np.int32), 16, 16)
    assert (ids_ccw == 0).sum() > 50
    np.testing.assert_array_equal(ids_ccw, ids_cw)
    np.testing.assert_allclose(bary_ccw, bary_cw[..., [0, 2, 1]], atol=1e-6)
    np.testing.assert_allclose(z_ccw, z_cw, atol=1e-6)


def test_row_zero_is_bottom_of_ndc_and_empty_pixels_convention():
    # A triangle covering only the lower half (NDC y < 0) lands in the first rows.
    vertices = np.array([[[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [0.0, -0.1, 0.0, 1.0]]],
                        np.float32)
    bary, ids, z = run_op(vertices, np.array([[0, 1, 2]], np.int32), 8, 8)
    assert (ids[0, :4] == 0).any() and not (ids[0, 4:] == 0).any()
    empty = ids == -1
    assert np.all(bary[empty] == 0) and np.all(z[empty] == 1)
    np.testing.assert_allclose(bary[~empty].sum(-1), 1.0, atol=1e-6)


def test_near_and_far_planes_clip():
    # A square tilted in depth: z runs from -1.5 (left) to 1.5 (right), w = 1.
    vertices = np.array([[[-1, -1, -1.5, 1], [1, -1, 1.5, 1], [1, 1, 1.5, 1], [-1, 1, -1.5, 1]]],
                        np.float32)
    triangles = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    _, ids, z = assert_matches_reference(vertices, triangles, 24, 8)
    column_z = -1.5 + 3.0 * (np.arange(24) + 0.5) / 24
    visible = np.abs(column_z) <= 1
    assert np.all(ids[0][:, visible] >= 0) and np.all(ids[0][:, ~visible] == -1)
    assert z.min() >= -1 and z.max() <= 1


def test_equal_depth_goes_to_higher_triangle_index():
    vertices = np.array([[[-1, -1, 0.25, 1], [1, -1, 0.25, 1], [0, 1, 0.25, 1]]], np.float32)
    _, ids, _ = run_op(vertices, np.array([[0, 1, 2], [2, 0, 1], [1, 2, 0]], np.int32), 8, 8)
    assert set(np.unique(ids)) <= {-1, 2} and (ids == 2).any()


def test_static_shapes_in_graph_mode():
    @tf.function(input_signature=[tf.TensorSpec([None, None, 4], tf.float32),
                                  tf.TensorSpec([None, 3], tf.int32)])
    def render(vertices, triangles):
        outputs = rasterize_op.rasterize(vertices, triangles, 12, 10)
        assert outputs[0].shape.as_list() == [None, 10, 12, 3]
        assert outputs[1].shape.as_list() == [None, 10, 12]
        return outputs

    bary, ids, _ = render(np.zeros((2, 3, 4), np.float32), np.array([[0, 1, 2]], np.int32))
    assert bary.shape == (2, 10, 12, 3) and np.all(ids.numpy() == -1)


# ---------------------------------------------------------------- gradient

def weighted_bary_loss(bary, weights):
    return float(np.sum(bary * weights))


def test_gradient_matches_finite_differences_of_reference():
    # Three large triangles at different depths with varied w (perspective).
    vertices = np.array([[-0.9, -0.8, 0.1, 1.0], [0.7, -0.9, 0.3, 1.4], [-0.1, 0.9, -0.2, 0.9],
                         [0.0, -0.3, -0.5, 1.2], [0.9, 0.2, -0.4, 1.1], [0.3, 0.8, -0.6, 1.3]],
                        np.float32)
    triangles = np.array([[0, 1, 2], [3, 5, 4]], np.int32)
    width, height = 20, 18
    weights = np.random.default_rng(3).normal(size=(height, width, 3))
    variable = tf.Variable(vertices[None])
    with tf.GradientTape() as tape:
        bary, _, _ = rasterize_op.rasterize(variable, triangles, width, height)
        loss = tf.reduce_sum(bary * tf.constant(weights, tf.float32))
    grad = tape.gradient(loss, variable).numpy()[0]
    assert np.all(grad[:, 2] == 0)

    base_ids = reference_rasterize(vertices, triangles, width, height)[0]
    step = 1e-6
    checked = 0
    for v in range(len(vertices)):
        for k in (0, 1, 3):
            plus = vertices.astype(np.float64)
            minus = vertices.astype(np.float64)
            plus[v, k] += step
            minus[v, k] -= step
            ids_p, bary_p, _ = reference_rasterize(plus, triangles, width, height)
            ids_m, bary_m, _ = reference_rasterize(minus, triangles, width, height)
            assert np.array_equal(ids_p, base_ids) and np.array_equal(ids_m, base_ids)
            numeric = (weighted_bary_loss(bary_p, weights)
                       - weighted_bary_loss(bary_m, weights)) / (2 * step)
            np.testing.assert_allclose(grad[v, k], numeric, rtol=2e-3, atol=2e-3)
            checked += 1
    assert checked == 18 and np.abs(grad).max() > 1


def test_gradient_ignores_empty_pixels_and_batches_independently():
    vertices = np.array([[[-0.5, -0.5, 0, 1], [0.5, -0.5, 0, 1], [0, 0.5, 0, 1]],
                         [[-0.5, -0.5, 0, 1], [0.5, -0.5, 0, 1], [0, 0.5, 0, 1]]], np.float32)
    triangles = np.array([[0, 1, 2]], np.int32)
    variable = tf.Variable(vertices)
    with tf.GradientTape() as tape:
        bary, ids, _ = rasterize_op.rasterize(variable, triangles, 16, 16)
        empty = tf.cast(ids == -1, tf.float32)[..., None]
        # Image 0: weights only on empty pixels; image 1: on covered pixels.
        weights = tf.stack([empty[0], 1.0 - empty[1]]) * tf.constant([1.0, 0.5, -2.0])
        loss = tf.reduce_sum(bary * weights)
    grad = tape.gradient(loss, variable).numpy()
    assert np.all(grad[0] == 0)
    assert np.abs(grad[1]).max() > 0


# ---------------------------------------------------------------- determinism across threads

_THREAD_SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    import tensorflow as tf
    threads, batch, width, height = (int(value) for value in sys.argv[1:5])
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from face_gcn.render import rasterize_op
    rng = np.random.default_rng(7)
    w = rng.uniform(0.8, 2.0, size=(batch, 3000, 1))
    xyz = rng.uniform(-1, 1, size=(batch, 3000, 3)) * w
    vertices = tf.Variable(np.concatenate([xyz, w], -1).astype(np.float32))
    triangles = rng.integers(0, 3000, size=(4000, 3)).astype(np.int32)
    weights = tf.constant(rng.normal(size=(batch, height, width, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        bary, ids, z = rasterize_op.rasterize(vertices, triangles, width, height)
        loss = tf.reduce_sum(bary * weights)
    grad = tape.gradient(loss, vertices)
    digest = hashlib.sha256()
    for array in (bary, ids, z, grad):
        digest.update(array.numpy().tobytes())
    print(json.dumps(digest.hexdigest()))
""")


def _digest_with_threads(threads, batch=2, width=128, height=96):
    result = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, str(threads), str(batch),
                             str(width), str(height)],
                            capture_output=True, text=True, check=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_results_are_bitwise_identical_for_1_and_3_threads():
    assert _digest_with_threads(1) == _digest_with_threads(3)


def test_large_single_image_is_bitwise_identical_for_1_and_3_threads():
    # Enough work per image for the op to split it: forward over triangle ranges merged by
    # depth, gradient over blocks of rows.
    assert _digest_with_threads(1, 1, 700, 600) == _digest_with_threads(3, 1, 700, 600)


# ---------------------------------------------------------------- bad input

TRIANGLE = np.array([[[-0.5, -0.5, 0, 1], [0.5, -0.5, 0, 1], [0, 0.5, 0, 1]]], np.float32)


def raw_op(vertices, triangles, width=8, height=8):
    return op_library.load().face_gcn_rasterize_triangles(
        vertices, triangles, image_width=width, image_height=height)


@pytest.mark.parametrize("vertices, triangles", [
    (TRIANGLE[0], [[0, 1, 2]]),                                  # rank 2 vertices
    (TRIANGLE[..., :3], [[0, 1, 2]]),                            # last dim 3
    (TRIANGLE, [0, 1, 2]),                                       # rank 1 triangles
    (TRIANGLE, [[0, 1, 2, 0]]),                                  # 4 indices per triangle
    (TRIANGLE, [[0, 1, 3]]),                                     # index == V
    (TRIANGLE, [[0, -1, 2]]),                                    # negative index
    (np.zeros((1, 0, 4), np.float32), [[0, 1, 2]]),             # no vertices
    (np.where(np.arange(12).reshape(1, 3, 4) == 5, np.nan, TRIANGLE).astype(np.float32),
     [[0, 1, 2]]),                                               # NaN
    (np.where(np.arange(12).reshape(1, 3, 4) == 0, np.inf, TRIANGLE).astype(np.float32),
     [[0, 1, 2]]),                                               # Inf
], ids=["rank2", "last3", "tri_rank1", "tri_last4", "index_eq_V", "negative", "no_vertices",
        "nan", "inf"])
def test_bad_meshes_raise_invalid_argument(vertices, triangles):
    triangles = np.asarray(triangles, np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError):
        raw_op(vertices, triangles)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        rasterize_op.rasterize(vertices, triangles, 8, 8)

    @tf.function
    def in_graph(v, t):
        return raw_op(v, t)

    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        in_graph(tf.constant(vertices), tf.constant(triangles))


@pytest.mark.parametrize("width, height", [(0, 8), (8, 0), (-3, 8), (8193, 8), (8, 100000)])
def test_bad_image_sizes_raise(width, height):
    with pytest.raises(tf.errors.InvalidArgumentError):
        raw_op(TRIANGLE, np.array([[0, 1, 2]], np.int32), width, height)
    with pytest.raises(ValueError):
        rasterize_op.rasterize(TRIANGLE, np.array([[0, 1, 2]], np.int32), width, height)


def test_total_pixel_cap_raises_before_allocating():
    batch = np.repeat(TRIANGLE, 5, axis=0)  # 5 x 8192 x 8192 > 2**28 pixels
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds"):
        raw_op(batch, np.array([[0, 1, 2]], np.int32), 8192, 8192)


def test_wrong_dtypes_raise():
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError)):
        raw_op(tf.constant(TRIANGLE, tf.float64), np.array([[0, 1, 2]], np.int32))
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError)):
        raw_op(TRIANGLE, tf.constant([[0, 1, 2]], tf.int64))
    with pytest.raises(TypeError):
        rasterize_op.rasterize(TRIANGLE.astype(np.float64), np.array([[0, 1, 2]], np.int32), 8, 8)
    with pytest.raises(TypeError):
        rasterize_op.rasterize(TRIANGLE, np.array([[0, 1, 2]], np.int64), 8, 8)


def test_empty_mesh_and_empty_batch_are_valid():
    bary, ids, z = run_op(np.zeros((2, 0, 4), np.float32), np.zeros((0, 3), np.int32), 5, 4)
    assert ids.shape == (2, 4, 5) and np.all(ids == -1) and np.all(bary == 0) and np.all(z == 1)
    bary, ids, z = run_op(TRIANGLE, np.zeros((0, 3), np.int32), 5, 4)
    assert np.all(ids == -1)
    bary, ids, z = run_op(np.zeros((0, 3, 4), np.float32), np.array([[0, 1, 2]], np.int32), 5, 4)
    assert bary.shape == (0, 4, 5, 3) and ids.shape == (0, 4, 5) and z.shape == (0, 4, 5)


def test_gradient_op_rejects_inconsistent_inputs():
    module = op_library.load()
    triangles = np.array([[0, 1, 2]], np.int32)
    bary = np.zeros((1, 8, 8, 3), np.float32)
    ids = np.zeros((1, 8, 8), np.int32)
    with pytest.raises(tf.errors.InvalidArgumentError):  # wrong image size
        module.face_gcn_rasterize_triangles_grad(TRIANGLE, triangles, bary, ids, bary,
                                                 image_width=4, image_height=8)
    bad_ids = np.full((1, 8, 8), 7, np.int32)
    ones = np.full((1, 8, 8, 3), 1.0 / 3, np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError):  # covered pixel, id out of range
        module.face_gcn_rasterize_triangles_grad(TRIANGLE, triangles, ones, bad_ids, ones,
                                                 image_width=8, image_height=8)


# ---------------------------------------------------------------- agreement with the fallback

@pytest.mark.skipif(importlib.util.find_spec("face_gcn.render.rasterize_fallback") is None,
                    reason="face_gcn/render/rasterize_fallback.py does not exist yet")
def test_op_agrees_with_pure_tf_fallback():
    from face_gcn.render import rasterize_fallback  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(11)
    vertices, triangles = random_scene(rng, 60, vertex_count=80)
    batch = np.stack([vertices, vertices * np.float32([1, -1, 1, 1])])
    variable = tf.Variable(batch)
    weights = tf.constant(rng.normal(size=(2, 30, 40, 3)).astype(np.float32))
    results = []
    for module in (rasterize_op, rasterize_fallback):
        with tf.GradientTape() as tape:
            bary, ids, z = module.rasterize(variable, triangles, 40, 30)
            loss = tf.reduce_sum(bary * weights)
        results.append((bary.numpy(), ids.numpy(), z.numpy(), tape.gradient(loss, variable)))
    (bary_a, ids_a, z_a, grad_a), (bary_b, ids_b, z_b, grad_b) = results
    same = ids_a == ids_b
    assert same.mean() > 0.999
    np.testing.assert_allclose(bary_a[same], bary_b[same], atol=1e-4)
    np.testing.assert_allclose(z_a[same], z_b[same], atol=1e-4)
    if same.all() and grad_b is not None:
        np.testing.assert_allclose(grad_a.numpy(), tf.convert_to_tensor(grad_b).numpy(),
                                   rtol=1e-3, atol=1e-3)
