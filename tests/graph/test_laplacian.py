import numpy as np
import pytest
import scipy.sparse.linalg as spla

from face_gcn.graph import laplacian as lap
from face_gcn.graph.adjacency import mesh_adjacency
from .graph_test_meshes import bumpy_grid, icosphere


def _dense_reference(adjacency):
    a = adjacency.toarray()
    d = a.sum(axis=1)
    return np.eye(len(a)) - a / np.sqrt(np.outer(d, d))


@pytest.mark.parametrize("weighting", ["coma", "binary"])
def test_normalized_laplacian_matches_dense_formula(weighting):
    vertices, triangles = bumpy_grid(9)
    adjacency = mesh_adjacency(triangles, len(vertices), weighting)
    np.testing.assert_allclose(lap.normalized_laplacian(adjacency).toarray(), _dense_reference(adjacency),
                               atol=1e-14)


def test_exact_lmax_matches_dense_eigendecomposition():
    vertices, triangles = icosphere(3, bump=0.1)  # 642 vertices: the ARPACK path
    laplacian = lap.normalized_laplacian(mesh_adjacency(triangles, len(vertices)))
    expected = np.linalg.eigvalsh(laplacian.toarray())[-1]
    assert lap.largest_eigenvalue(laplacian) == pytest.approx(expected, rel=1e-6)
    assert lap.largest_eigenvalue(laplacian, "fixed") == 2.0


def test_lmax_falls_back_to_bound_when_arpack_fails(monkeypatch):
    vertices, triangles = icosphere(2)
    laplacian = lap.normalized_laplacian(mesh_adjacency(triangles, len(vertices)))

    def failing(*args, **kwargs):
        raise spla.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(lap.spla, "eigsh", failing)
    assert lap.largest_eigenvalue(laplacian) == 2.0


@pytest.mark.parametrize("lmax", ["exact", "fixed", 1.7])
def test_rescaled_laplacian(lmax):
    vertices, triangles = bumpy_grid(10)
    adjacency = mesh_adjacency(triangles, len(vertices))
    dense_l = _dense_reference(adjacency)
    eigenvalues = np.linalg.eigvalsh(dense_l)
    value = {"exact": eigenvalues[-1], "fixed": 2.0}.get(lmax, lmax)
    got = lap.chebyshev_operator(adjacency, lmax).toarray()
    np.testing.assert_allclose(got, 2.0 * dense_l / value - np.eye(len(dense_l)), atol=1e-6)
    if lmax == "exact":
        spectrum = np.linalg.eigvalsh(got)
        assert spectrum.min() >= -1 - 1e-9 and spectrum.max() == pytest.approx(1.0, abs=1e-6)


def test_invalid_arguments():
    vertices, triangles = bumpy_grid(4)
    adjacency = mesh_adjacency(triangles, len(vertices))
    with pytest.raises(ValueError, match="lmax"):
        lap.rescaled_laplacian(lap.normalized_laplacian(adjacency), 0.0)
    with pytest.raises(ValueError, match="method"):
        lap.largest_eigenvalue(lap.normalized_laplacian(adjacency), "approximate")
    with pytest.raises(ValueError, match="symmetric"):
        asymmetric = adjacency.tolil()
        asymmetric[0, 5] = 3.0
        lap.normalized_laplacian(asymmetric.tocsr())
