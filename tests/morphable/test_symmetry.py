import numpy as np
import pytest

from face_gcn.morphable import configured, symmetry

PLANE_X = 0.3


def _synthetic(seed=0):
    """Random points right of x = PLANE_X mirrored to the left (+ 1e-5 noise), 4 points on the
    plane and 3 outliers on the left with no mirror partner, shuffled.

    Returns: vertices [N, 3], expected {(left, right)} index pairs.
    """
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(6), np.arange(5), np.arange(3), indexing="ij"), -1).reshape(-1, 3)
    right = 0.1 * grid + rng.uniform(-0.02, 0.02, grid.shape)  # spacing >= 0.06
    right[:, 0] += PLANE_X + 0.05
    left = right * [-1, 1, 1] + [2 * PLANE_X, 0, 0] + rng.normal(0.0, 1e-5, right.shape)
    on_plane = np.column_stack([np.full(4, PLANE_X), rng.uniform(0, 0.4, 4), rng.uniform(0, 0.2, 4)])
    outliers = np.array([[PLANE_X - 0.5, 0.8, 0.1], [PLANE_X - 0.45, -0.5, 0.0], [PLANE_X - 0.35, 0.2, 0.6]])
    points = np.concatenate([left, right, on_plane, outliers])
    n = len(right)
    order = np.random.default_rng(seed + 1).permutation(len(points))
    position = np.argsort(order)  # new index of old point i
    expected = {(int(position[i]), int(position[n + i])) for i in range(n)}
    return points[order], expected


def test_synthetic_pairs_known_by_construction():
    points, expected = _synthetic()
    pairs = symmetry.mirror_pairs(points)
    assert pairs.dtype == np.int32 and pairs.shape == (len(expected), 2)
    assert {tuple(map(int, p)) for p in pairs} == expected
    assert np.all(np.diff(pairs[:, 0]) > 0)  # sorted by the left index


def test_plane_is_fitted_despite_outliers():
    points, _ = _synthetic(3)
    assert abs(np.mean(points[:, 0]) - PLANE_X) > 5e-3  # the outliers pull the mean x off
    assert symmetry.fit_mirror_plane(points) == pytest.approx(PLANE_X, abs=1e-5)
    assert symmetry.fit_mirror_plane(points, iterations=0) == pytest.approx(np.mean(points[:, 0]))


def test_tolerance_is_relative_to_bounding_box_diagonal():
    points = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [1.1, 1.0, 0.0]])
    relative = 0.1 / np.linalg.norm([2.1, 1.0, 0.0])  # the second pair's distance / diagonal
    loose = symmetry.mirror_pairs(points, tolerance=relative * 1.01, center=0.0)
    tight = symmetry.mirror_pairs(points, tolerance=relative * 0.99, center=0.0)
    np.testing.assert_array_equal(loose, [[0, 1], [2, 3]])
    np.testing.assert_array_equal(tight, [[0, 1]])
    scaled = symmetry.mirror_pairs(points * 10.0, tolerance=relative * 0.99, center=0.0)
    np.testing.assert_array_equal(scaled, [[0, 1]])


def test_only_mutual_matches_each_vertex_once():
    # both left points' mirror images are nearest to the one right point; it chooses the first
    points = np.array([[-1.0, 0.0, 0.0], [-1.0, 0.05, 0.0], [1.0, 0.02, 0.0], [0.0, 3.0, 0.0]])
    pairs = symmetry.mirror_pairs(points, tolerance=0.05, center=0.0)
    np.testing.assert_array_equal(pairs, [[0, 2]])


def test_on_plane_and_same_side_matches_are_not_paired():
    # 0 and 1 lie on the plane; 2 is just left of it and nearest to its own mirror image
    points = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.01, 2.0, 0.0], [0.5, 2.0, 0.0]])
    assert symmetry.mirror_pairs(points, tolerance=1.0, center=0.0).shape == (0, 2)


@pytest.mark.parametrize("vertices, kwargs", [
    (np.zeros((4, 2)), {}),
    (np.zeros((2, 4, 3)), {}),
    (np.array([[0.0, 0.0, np.nan], [1.0, 0.0, 0.0]]), {}),
    (np.zeros((4, 3)), {"tolerance": -0.1}),
    (np.zeros((4, 3)), {"tolerance": np.nan}),
    (np.zeros((4, 3)), {"center": np.inf}),
])
def test_invalid_input(vertices, kwargs):
    with pytest.raises(ValueError):
        symmetry.mirror_pairs(vertices, **kwargs)


def test_demo_model_pairs():
    model = configured.load_demo()
    vertices = model.mean_shape.astype(np.float64)
    # The demo surface is symmetric about x = 0 (depth and outline even in x) but its lattice
    # vertices are not: mirrored about x = 0, a vertex lands 0.012 (0.4 edge) from the nearest one.
    mirrored = symmetry.mirror_pairs(vertices, tolerance=symmetry.DEFAULT_TOLERANCE, center=0.0)
    assert mirrored.size >= 0.95 * model.num_vertices
    pairs = symmetry.model_mirror_pairs(model)
    center = symmetry.fit_mirror_plane(vertices)
    left, right = vertices[pairs[:, 0]], vertices[pairs[:, 1]]
    distance = np.linalg.norm(left * [-1, 1, 1] + [2 * center, 0, 0] - right, axis=1)
    diagonal = np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0))
    assert abs(center) < 0.01
    assert np.all(left[:, 0] < center) and np.all(right[:, 0] > center)
    assert len(np.unique(pairs)) == pairs.size
    assert pairs.size >= 0.95 * model.num_vertices  # observed: 1783 pairs of 3643 vertices
    assert distance.max() <= symmetry.DEFAULT_TOLERANCE * diagonal
    assert np.median(distance) < 0.01  # a third of an edge (edges are about 0.03 long)
    assert np.mean(model.skin_mask[pairs[:, 0]] == model.skin_mask[pairs[:, 1]]) > 0.95
