"""The pure-TF rasterizer against an independent float64 NumPy per-pixel reference."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import rasterize_fallback


def reference_rasterize(clip, triangles, width, height):
    """Float64 loop over pixels and triangles in index order (Genova's rules).

    Returns ids [H, W] (-1 empty), barycentrics [H, W, 3], depth [H, W] (1 empty).
    """
    clip = clip.astype(np.float64)
    ids = -np.ones((height, width), np.int64)
    bary = np.zeros((height, width, 3))
    depth = np.ones((height, width))
    for iy in range(height):
        py = (iy + 0.5) / (height / 2.0) - 1.0
        for ix in range(width):
            px = (ix + 0.5) / (width / 2.0) - 1.0
            for t, tri in enumerate(triangles):
                corners = clip[tri]                                  # [3, 4]
                if np.all(corners[:, 3] < 0):
                    continue
                matrix = np.stack([corners[:, 0], corners[:, 1], corners[:, 3]])
                det = np.linalg.det(matrix)
                if det == 0:
                    continue
                edges = np.linalg.solve(matrix, [px, py, 1.0]) * det * np.sign(det)
                if not (np.all(edges >= 0) and np.any(edges > 0)):
                    continue
                b = edges / edges.sum()
                z = (b @ corners[:, 2]) / (b @ corners[:, 3])
                if not -1.0 <= z <= 1.0 or z > depth[iy, ix]:
                    continue
                ids[iy, ix], bary[iy, ix], depth[iy, ix] = t, b, z
    return ids, bary, depth


def barycentrics_for_ids(clip, triangles, ids, width, height):
    """Float64 perspective-correct barycentrics of given triangle ids [H, W] (0 where -1)."""
    out = np.zeros(ids.shape + (3,))
    for iy, ix in zip(*np.nonzero(ids >= 0)):
        corners = clip[triangles[ids[iy, ix]]].astype(np.float64)
        matrix = np.stack([corners[:, 0], corners[:, 1], corners[:, 3]])
        p = [(ix + 0.5) / (width / 2.0) - 1.0, (iy + 0.5) / (height / 2.0) - 1.0, 1.0]
        lam = np.linalg.solve(matrix, p)
        out[iy, ix] = lam / lam.sum()
    return out


def random_scene(rng, triangle_count, vertex_count=None):
    """Well-shaped random triangles in clip space with perspective (w in [0.8, 3])."""
    centres = rng.uniform(-1.1, 1.1, size=(triangle_count, 1, 3))
    corners = centres + rng.normal(scale=0.35, size=(triangle_count, 3, 3))
    w = rng.uniform(0.8, 3.0, size=(triangle_count, 3, 1))
    clip = np.concatenate([corners[..., :2] * w, 0.9 * corners[..., 2:] * w, w], axis=-1)
    return clip.reshape(-1, 4).astype(np.float32), \
        np.arange(3 * triangle_count, dtype=np.int32).reshape(-1, 3)


def run(clip, triangles, width, height):
    bary, ids, z = rasterize_fallback.rasterize(tf.constant(clip), tf.constant(triangles),
                                                width, height)
    return bary.numpy(), ids.numpy(), z.numpy()


def assert_matches_reference(clip, triangles, width, height, image=0, result=None):
    bary, ids, z = result if result is not None else run(clip[np.newaxis], triangles, width, height)
    ref_ids, ref_bary, ref_z = reference_rasterize(clip, triangles, width, height)
    np.testing.assert_array_equal(ids[image], ref_ids)
    np.testing.assert_allclose(bary[image], ref_bary, atol=1e-5)
    np.testing.assert_allclose(z[image], ref_z, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_scenes_match_reference(seed):
    rng = np.random.default_rng(seed)
    clip, triangles = random_scene(rng, 12)
    assert_matches_reference(clip, triangles, 23, 17)


def test_tight_candidate_boxes_lose_no_pixel(monkeypatch):
    """Candidate pixels come from a tight box around the projected corners. With vertices exactly
    on pixel centres (edges through centres) and triangles smaller than a pixel, the result must
    equal that of testing every pixel of the image against every triangle."""
    size = 12
    centre = lambda i: (i + 0.5) / (size / 2.0) - 1.0  # noqa: E731 - NDC of pixel i's centre
    grid = [(centre(i), centre(j)) for j in (2, 5, 9) for i in (2, 5, 9)]
    rows = [[x, y, 0.1, 1.0] for x, y in grid]
    triangles = [[0, 1, 4], [0, 4, 3], [4, 5, 8], [4, 8, 7], [1, 2, 5]]
    rng = np.random.default_rng(7)
    for _ in range(60):  # specks and slivers a third of a pixel across, some around centres
        anchor = np.array([centre(rng.integers(size)), centre(rng.integers(size))]) + rng.choice([0.0, 0.04])
        base = len(rows)
        for offset in rng.normal(scale=0.06, size=(3, 2)):
            rows.append([*(anchor + offset), rng.uniform(-0.5, 0.5), 1.0])
        triangles.append([base, base + 1, base + 2])
    clip = np.array(rows, np.float32)
    scenes = np.stack([clip, clip * rng.uniform(0.8, 2.0, size=(len(rows), 1)).astype(np.float32)])
    triangles = np.array(triangles, np.int32)
    tight = run(scenes, triangles, size, size)
    assert (tight[1] >= 0).mean() > 0.2
    whole_axis = lambda p0, p1, p2, axis_size: (tf.zeros_like(p0), tf.fill(tf.shape(p0), float(axis_size)))  # noqa: E731
    monkeypatch.setattr(rasterize_fallback, "_pixel_range", whole_axis)
    every_pixel = run(scenes, triangles, size, size)
    for got, expected in zip(tight, every_pixel):
        np.testing.assert_array_equal(got, expected)


def test_both_windings_cover_the_same_pixels():
    rng = np.random.default_rng(5)
    clip, triangles = random_scene(rng, 6)
    _, ids_a, _ = run(clip[np.newaxis], triangles, 20, 20)
    _, ids_b, _ = run(clip[np.newaxis], triangles[:, ::-1].copy(), 20, 20)
    np.testing.assert_array_equal(ids_a, ids_b)
    assert (ids_a >= 0).any()


def test_triangle_crossing_the_eye_plane_and_behind_the_eye():
    clip = np.array([[-0.5, -0.5, 0.0, 1.0], [0.0, -0.5, 0.0, -1.0], [0.5, -0.5, 0.0, 1.0],
                     [-0.5, -0.5, 0.0, -1.0], [0.5, 0.5, 0.0, -1.0], [0.0, 0.5, 0.0, -2.0]],
                    np.float32)
    triangles = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    bary, ids, _ = run(clip[np.newaxis], triangles, 16, 12)
    assert (ids == 0).any() and not (ids == 1).any()
    assert_matches_reference(clip, triangles, 16, 12, result=(bary, ids, _))


def test_near_and_far_planes_clip_and_empty_pixels():
    clip = np.array([[-0.93, -1.07, -1.43, 1.0], [1.04, -0.96, -1.37, 1.0],
                     [0.07, 1.13, 1.61, 1.0]], np.float32)
    triangles = np.array([[0, 1, 2]], np.int32)
    bary, ids, z = run(clip[np.newaxis], triangles, 9, 15)
    assert (ids == 0).any() and (ids == -1).any()
    assert np.all(bary[ids == -1] == 0) and np.all(z[ids == -1] == 1.0)
    assert np.all(np.abs(z[ids == 0]) <= 1.0)
    assert_matches_reference(clip, triangles, 9, 15, result=(bary, ids, z))


def test_equal_depths_go_to_higher_index_and_row_zero_is_bottom():
    clip = np.array([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 0.0, 0.0, 1.0]],
                    np.float32)
    triangles = np.array([[0, 1, 2], [2, 1, 0]], np.int32)
    _, ids, _ = run(clip[np.newaxis], triangles, 8, 8)
    assert (ids[0, 0, :4] == 1).all()        # bottom rows covered, by the later triangle
    assert (ids[0, -1] == -1).all()          # top row empty


def test_batch_images_are_independent_and_dynamic_batch_works():
    rng = np.random.default_rng(3)
    clip_a, triangles = random_scene(rng, 8)
    clip_b, _ = random_scene(rng, 8)
    batch = np.stack([clip_a, clip_b])
    compiled = tf.function(lambda c, t: rasterize_fallback.rasterize(c, t, 19, 13),
                           input_signature=[tf.TensorSpec([None, None, 4], tf.float32),
                                            tf.TensorSpec([None, 3], tf.int32)])
    bary, ids, z = (x.numpy() for x in compiled(batch, triangles))
    for image, clip in enumerate((clip_a, clip_b)):
        assert_matches_reference(clip, triangles, 19, 13, image=image, result=(bary, ids, z))
    one = [x.numpy() for x in compiled(batch[1:], triangles)]
    np.testing.assert_array_equal(one[1][0], ids[1])


def test_gradient_matches_finite_differences_of_reference():
    rng = np.random.default_rng(8)
    clip, triangles = random_scene(rng, 10)
    width, height = 15, 11
    weights = rng.normal(size=(height, width, 3))
    variable = tf.Variable(clip[np.newaxis])
    with tf.GradientTape() as tape:
        bary, ids, _ = rasterize_fallback.rasterize(variable, triangles, width, height)
        loss = tf.reduce_sum(bary[0] * tf.constant(weights, tf.float32))
    gradient = tape.gradient(loss, variable).numpy()[0]
    ids = ids.numpy()[0]
    assert (ids >= 0).sum() > 20
    numerical = np.zeros_like(clip, dtype=np.float64)
    delta = 1e-6
    for index in np.ndindex(*clip.shape):
        step = np.zeros(clip.shape)
        step[index] = delta
        plus = barycentrics_for_ids(clip + step, triangles, ids, width, height)
        minus = barycentrics_for_ids(clip - step, triangles, ids, width, height)
        numerical[index] = np.sum((plus - minus) * weights) / (2 * delta)
    assert np.all(numerical[:, 2] == 0) and np.all(gradient[:, 2] == 0)
    np.testing.assert_allclose(gradient, numerical, rtol=1e-3, atol=1e-3)


def test_empty_mesh_and_empty_batch():
    clip = np.zeros((2, 3, 4), np.float32)
    bary, ids, z = run(clip, np.zeros((0, 3), np.int32), 5, 4)
    assert ids.shape == (2, 4, 5) and (ids == -1).all() and (z == 1).all() and (bary == 0).all()
    bary, ids, z = run(np.zeros((0, 3, 4), np.float32), np.array([[0, 1, 2]], np.int32), 5, 4)
    assert bary.shape == (0, 4, 5, 3) and ids.shape == (0, 4, 5)


@pytest.mark.parametrize("clip, triangles", [
    (np.zeros((1, 3, 4), np.float32), np.array([[0, 1, 3]], np.int32)),
    (np.zeros((1, 3, 4), np.float32), np.array([[0, -1, 2]], np.int32)),
    (np.full((1, 3, 4), np.nan, np.float32), np.array([[0, 1, 2]], np.int32)),
])
def test_bad_meshes_raise_invalid_argument(clip, triangles):
    with pytest.raises(tf.errors.InvalidArgumentError):
        run(clip, triangles, 4, 4)


def test_bad_sizes_shapes_and_dtypes_raise():
    clip = np.zeros((1, 3, 4), np.float32)
    triangles = np.array([[0, 1, 2]], np.int32)
    with pytest.raises(ValueError):
        run(clip, triangles, 0, 4)
    with pytest.raises(ValueError):
        run(clip[..., :3], triangles, 4, 4)
    with pytest.raises(TypeError):
        run(clip.astype(np.float64), triangles, 4, 4)
    with pytest.raises(TypeError):
        run(clip, triangles.astype(np.int64), 4, 4)


def test_small_fragment_chunks_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(4)
    clip, triangles = random_scene(rng, 10)
    triangles = np.concatenate([triangles, triangles[:3]])  # exact duplicates: equal depths
    whole = run(clip[np.newaxis], triangles, 21, 16)
    monkeypatch.setattr(rasterize_fallback, "FRAGMENT_CHUNK", 37)
    chunked = run(clip[np.newaxis], triangles, 21, 16)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    assert not np.isin([0, 1, 2], chunked[1]).any()         # their duplicates won every tie
    assert np.isin([10, 12], chunked[1]).all()
    assert_matches_reference(clip, triangles, 21, 16, result=chunked)


@pytest.mark.parametrize("speck_first", [True, False])
def test_equal_depths_across_one_pixel_and_larger_triangles(speck_first):
    """A speck whose box holds one pixel centre is shaded apart from the big triangles; at equal
    depth the higher index must still win, whichever of the two it is."""
    size = 8
    centre = (3 + 0.5) / (size / 2.0) - 1.0                 # NDC of pixel 3's centre
    big = [[-1.0, -1.0, 0.25, 1.0], [3.0, -1.0, 0.25, 1.0], [-1.0, 3.0, 0.25, 1.0]]
    speck = [[centre - 0.05, centre - 0.05, 0.25, 1.0], [centre + 0.05, centre - 0.05, 0.25, 1.0],
             [centre, centre + 0.05, 0.25, 1.0]]
    clip = np.array(speck + big if speck_first else big + speck, np.float32)
    triangles = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    _, ids, _ = run(clip[np.newaxis], triangles, size, size)
    assert ids[0, 3, 3] == 1 and (ids[0] == 1).sum() == (1 if not speck_first else size * size)
    assert_matches_reference(clip, triangles, size, size)
