import numpy as np
import pytest

from face_gcn.graph.decimation import decimate
from face_gcn.graph.sampling import (down_sampling_matrix, nearest_surface_points, up_sampling_matrix)
from .graph_test_meshes import bumpy_grid, icosphere


def _point_triangle_distance_by_sampling(point, a, b, c, steps=60):
    """Reference distance point -> triangle: min over a dense barycentric grid plus the edges."""
    s = np.linspace(0.0, 1.0, steps + 1)
    u, v = np.meshgrid(s, s)
    keep = u + v <= 1
    samples = a + u[keep][:, None] * (b - a) + v[keep][:, None] * (c - a)
    return np.sqrt(((samples - point) ** 2).sum(axis=1)).min()


def test_nearest_surface_points_against_brute_force():
    vertices, triangles = icosphere(2, bump=0.1)
    rng = np.random.default_rng(1)
    points = rng.normal(size=(25, 3)) * 0.7
    face, weights, distance = nearest_surface_points(points, vertices, triangles, candidates=3)
    assert np.all(weights >= -1e-12) and np.allclose(weights.sum(axis=1), 1.0)
    for i, p in enumerate(points):
        reference = min(_point_triangle_distance_by_sampling(p, *vertices[t]) for t in triangles)
        # The sampled reference over-estimates by at most the grid spacing.
        assert distance[i] <= reference + 1e-12
        assert distance[i] >= reference - 0.01
        nearest = weights[i] @ vertices[triangles[face[i]]]
        assert np.linalg.norm(nearest - p) == pytest.approx(distance[i])


def test_down_sampling_selects_kept_vertices():
    kept = np.array([1, 4, 5])
    matrix = down_sampling_matrix(kept, 7)
    x = np.arange(14.0).reshape(7, 2)
    np.testing.assert_array_equal(matrix @ x, x[kept])
    with pytest.raises(ValueError):
        down_sampling_matrix(np.array([4, 1]), 7)


def test_up_sampling_is_exact_for_linear_functions_on_a_plane():
    vertices, triangles = bumpy_grid(20, flat=True)
    result = decimate(vertices, triangles, 100)
    up = up_sampling_matrix(vertices, vertices[result.kept], result.triangles, result.kept)
    assert up.shape == (400, 100)
    np.testing.assert_allclose(np.asarray(up.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    assert up.min() >= 0
    linear = lambda p: 0.3 + 2.0 * p[:, 0] - 1.5 * p[:, 1]  # noqa: E731
    np.testing.assert_allclose(up @ linear(vertices[result.kept]), linear(vertices), atol=1e-10)
    # Kept vertices map to themselves.
    np.testing.assert_array_equal(up[result.kept].toarray(), np.eye(100))


def test_up_sampling_maps_smooth_to_smooth_on_a_sphere():
    vertices, triangles = icosphere(3)
    result = decimate(vertices, triangles, 161)
    coarse = vertices[result.kept]
    up = up_sampling_matrix(vertices, coarse, result.triangles, result.kept)
    smooth = lambda p: np.sin(2 * p[:, 0]) + p[:, 1] * p[:, 2]  # noqa: E731
    error = np.abs(up @ smooth(coarse) - smooth(vertices))
    spread = np.ptp(smooth(vertices))
    print(f"sphere 642 <- 161: max |U f_c - f| = {error.max():.4f} (function range {spread:.2f})")
    assert error.max() < 0.05 * spread
    # Smoothness: the up-sampled field varies across fine edges about as little as the true one.
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]]])
    jump_up = np.abs(np.diff((up @ smooth(coarse))[edges], axis=1)).max()
    jump_true = np.abs(np.diff(smooth(vertices)[edges], axis=1)).max()
    assert jump_up < 2.0 * jump_true
