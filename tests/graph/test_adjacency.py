import numpy as np
import pytest

from face_gcn.graph.adjacency import mesh_adjacency, mesh_edges, validate_mesh
from .graph_test_meshes import bumpy_grid, icosphere


def _dense_adjacency_by_loops(triangles, n, weighting):
    dense = np.zeros((n, n))
    for face in triangles:
        for i in range(3):
            u, v = face[i], face[(i + 1) % 3]
            if weighting == "coma":
                dense[u, v] += 1
                dense[v, u] += 1
            else:
                dense[u, v] = dense[v, u] = 1
    return dense


@pytest.mark.parametrize("weighting", ["coma", "binary"])
def test_adjacency_matches_loop_construction(weighting):
    vertices, triangles = bumpy_grid(8)
    got = mesh_adjacency(triangles, len(vertices), weighting).toarray()
    np.testing.assert_array_equal(got, _dense_adjacency_by_loops(triangles, len(vertices), weighting))


def test_coma_weights_two_inside_one_on_boundary():
    vertices, triangles = bumpy_grid(6)
    adjacency = mesh_adjacency(triangles, len(vertices)).toarray()
    assert adjacency[0, 1] == 1.0  # bottom row: boundary edge
    inner = 1 * 6 + 1  # vertex (1, 1)
    assert adjacency[inner, inner + 1] == 2.0
    closed_v, closed_t = icosphere(1)
    assert set(np.unique(mesh_adjacency(closed_t, len(closed_v)).data)) == {2.0}


def test_edges_and_face_counts_on_closed_mesh():
    vertices, triangles = icosphere(2)
    edges, counts = mesh_edges(triangles)
    assert len(vertices) - len(edges) + len(triangles) == 2  # Euler characteristic of a sphere
    assert np.all(counts == 2)


def test_validation_errors():
    vertices, triangles = bumpy_grid(4)
    with pytest.raises(ValueError, match="vertices"):
        validate_mesh(vertices[:, :2], triangles)
    with pytest.raises(ValueError, match="indices"):
        validate_mesh(vertices, triangles + 100)
    with pytest.raises(ValueError, match="distinct"):
        validate_mesh(vertices, np.array([[0, 0, 1]]))
    with pytest.raises(ValueError, match="weighting"):
        mesh_adjacency(triangles, len(vertices), "cotangent")
