import numpy as np
import pytest
from scipy.spatial import cKDTree

from face_gcn.graph.adjacency import mesh_edges
from face_gcn.graph.decimation import decimate, vertex_quadrics
from .graph_test_meshes import bumpy_grid, check_manifold, icosphere


def _surface_samples(vertices, triangles, per_edge=8):
    """Dense barycentric samples of every triangle: [S, 3]."""
    steps = np.linspace(0.0, 1.0, per_edge + 1)
    u, v = np.meshgrid(steps, steps)
    keep = u + v <= 1.0 + 1e-12
    u, v = u[keep], v[keep]
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    samples = a[:, None] + u[None, :, None] * (b - a)[:, None] + v[None, :, None] * (c - a)[:, None]
    return samples.reshape(-1, 3)


def hausdorff(vertices_a, triangles_a, vertices_b, triangles_b):
    """Symmetric Hausdorff distance between two surfaces, estimated on dense surface samples."""
    sa = _surface_samples(vertices_a, triangles_a)
    sb = _surface_samples(vertices_b, triangles_b)
    return max(cKDTree(sb).query(sa)[0].max(), cKDTree(sa).query(sb)[0].max())


@pytest.mark.parametrize("mesh", ["sphere", "grid"])
def test_decimation_keeps_count_manifold_and_surface(mesh):
    vertices, triangles = icosphere(3, bump=0.1) if mesh == "sphere" else bumpy_grid(30)
    sizes = [len(vertices)]
    current_v, current_t = vertices, triangles
    for _ in range(2):
        sizes.append(-(-sizes[-1] // 4))
        result = decimate(current_v, current_t, sizes[-1])
        assert len(result.kept) == sizes[-1]
        assert np.all(np.diff(result.kept) > 0)
        check_manifold(result.triangles, len(result.kept))
        current_v, current_t = current_v[result.kept], result.triangles
        distance = hausdorff(vertices, triangles, current_v, current_t)
        print(f"{mesh}: {sizes[0]} -> {sizes[-1]} vertices, Hausdorff {distance:.4f}")
        # Unit sphere / unit square: 4x fewer vertices within 6 %, 16x fewer within 20 % (a
        # 41-vertex polyhedron inscribed in the unit sphere already deviates by about 0.15).
        assert distance < (0.06 if len(sizes) == 2 else 0.2)
    # Topology preserved: Euler characteristic 2 (sphere) or 1 (disc).
    edges, counts = mesh_edges(current_t)
    euler = len(current_v) - len(edges) + len(current_t)
    assert euler == (2 if mesh == "sphere" else 1)
    if mesh == "grid":
        corners = (0, 29, 870, 899)  # the four corners stay (boundary quadrics)
        assert all(np.any(np.all(current_v == vertices[c], axis=1)) for c in corners)
        assert np.all(counts <= 2)


def test_decimation_is_deterministic_and_keeps_orientation():
    vertices, triangles = icosphere(3, bump=0.05)
    first = decimate(vertices, triangles, 161)
    second = decimate(vertices.copy(), triangles.copy(), 161)
    np.testing.assert_array_equal(first.kept, second.kept)
    np.testing.assert_array_equal(first.triangles, second.triangles)
    kept = vertices[first.kept]
    a, b, c = (kept[first.triangles[:, i]] for i in range(3))
    outward = np.einsum("ij,ij->i", np.cross(b - a, c - a), (a + b + c) / 3.0)
    assert np.all(outward > 0), "every face of the decimated sphere still faces outwards"


def test_vertex_quadric_measures_squared_plane_distance():
    # A flat square of two triangles in z = 0: each quadric gives (sum of faces) * z^2.
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    quadrics = vertex_quadrics(vertices, triangles, boundary_weight=0.0)
    point = np.array([0.3, 0.7, 0.5, 1.0])
    assert point @ quadrics[0] @ point == pytest.approx(2 * 0.25)
    assert point @ quadrics[1] @ point == pytest.approx(1 * 0.25)


def test_invalid_targets():
    vertices, triangles = bumpy_grid(5)
    with pytest.raises(ValueError, match="num_keep"):
        decimate(vertices, triangles, 2)
    with pytest.raises(ValueError, match="unreferenced"):
        decimate(np.concatenate([vertices, [[5.0, 5.0, 5.0]]]), triangles, 10)
    fin = np.array([[1, 5, 12]])  # a third triangle on the interior edge (1, 5)
    with pytest.raises(ValueError, match="manifold"):
        decimate(vertices, np.concatenate([triangles, fin]), 10)
