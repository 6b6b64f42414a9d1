"""Normalized graph Laplacian, its largest eigenvalue and the rescaled Chebyshev operator.

L = I - D^-1/2 A D^-1/2 (D = diag of row sums of A; isolated vertices get a zero row in the
normalized term, so their Laplacian row is the identity row). Its eigenvalues lie in [0, 2].
The Chebyshev operator is L~ = 2 L / lmax - I, with spectrum in [-1, 1]. With lmax = 2 (the
authors' choice) L~ = L - I.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

LOG = logging.getLogger(__name__)

# Every eigenvalue of a normalized Laplacian is at most 2: the safe fallback bound.
LAPLACIAN_SPECTRAL_BOUND = 2.0


def normalized_laplacian(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """L = I - D^-1/2 A D^-1/2.

    Args:
      adjacency: [V, V] symmetric non-negative sparse matrix.
    Returns:
      [V, V] float64 CSR matrix with sorted indices.
    """
    adjacency = sp.csr_matrix(adjacency, dtype=np.float64)
    if adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be square, got {adjacency.shape}")
    if adjacency.nnz and adjacency.data.min() < 0:
        raise ValueError("adjacency weights must be non-negative")
    if abs(adjacency - adjacency.T).max() > 1e-12 * max(1.0, abs(adjacency).max()):
        raise ValueError("adjacency must be symmetric")
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    positive = degree > 0
    inv_sqrt[positive] = 1.0 / np.sqrt(degree[positive])
    scale = sp.diags(inv_sqrt)
    laplacian = sp.identity(adjacency.shape[0], format="csr") - scale @ adjacency @ scale
    laplacian = sp.csr_matrix(laplacian)
    laplacian.sort_indices()
    return laplacian


def largest_eigenvalue(laplacian: sp.spmatrix, method: str = "exact", tol: float = 1e-6) -> float:
    """Largest eigenvalue lmax of a symmetric Laplacian.

    Args:
      laplacian: [V, V] symmetric sparse matrix (a normalized Laplacian).
      method: "exact" (ARPACK eigsh; falls back to the bound 2 if it fails to converge or the
        matrix is tiny) or "fixed" (2, the authors' choice).
      tol: relative tolerance of eigsh.
    Returns:
      lmax as a Python float (> 0).
    """
    if method == "fixed":
        return LAPLACIAN_SPECTRAL_BOUND
    if method != "exact":
        raise ValueError(f"method must be 'exact' or 'fixed', got {method!r}")
    laplacian = sp.csr_matrix(laplacian, dtype=np.float64)
    size = laplacian.shape[0]
    if size <= 64:  # ARPACK needs k < n; dense is exact and cheap here
        return float(np.linalg.eigvalsh(laplacian.toarray())[-1])
    start = np.linspace(1.0, 2.0, size)  # deterministic start vector
    try:
        value = spla.eigsh(laplacian, k=1, which="LA", tol=tol, v0=start,
                           maxiter=max(1000, 10 * size), return_eigenvectors=False)[0]
    except (spla.ArpackNoConvergence, spla.ArpackError) as error:
        LOG.warning("eigsh did not converge (%s); using the bound lmax = 2", error)
        return LAPLACIAN_SPECTRAL_BOUND
    if not np.isfinite(value) or value <= 0:
        LOG.warning("eigsh returned lmax = %r; using the bound lmax = 2", value)
        return LAPLACIAN_SPECTRAL_BOUND
    return float(value)


def rescaled_laplacian(laplacian: sp.spmatrix, lmax: float) -> sp.csr_matrix:
    """L~ = 2 L / lmax - I, the Chebyshev operator (spectrum in [-1, 1] when lmax is exact).

    Args:
      laplacian: [V, V] sparse matrix.
      lmax: largest eigenvalue (or an upper bound), > 0.
    Returns:
      [V, V] float64 CSR matrix with sorted indices (the diagonal is stored even where zero).
    """
    if not np.isfinite(lmax) or lmax <= 0:
        raise ValueError(f"lmax must be a positive number, got {lmax}")
    laplacian = sp.csr_matrix(laplacian, dtype=np.float64)
    size = laplacian.shape[0]
    result = sp.csr_matrix((2.0 / lmax) * laplacian - sp.identity(size, format="csr"))
    result.sort_indices()
    return result


def chebyshev_operator(adjacency: sp.spmatrix, lmax: str | float = "exact") -> sp.csr_matrix:
    """Rescaled normalized Laplacian of an adjacency matrix.

    Args:
      adjacency: [V, V] symmetric sparse adjacency.
      lmax: "exact" (eigsh, fallback 2), "fixed" (2, the authors': L~ = L - I) or a number.
    Returns:
      [V, V] float64 CSR L~.
    """
    laplacian = normalized_laplacian(adjacency)
    value = largest_eigenvalue(laplacian, lmax) if isinstance(lmax, str) else float(lmax)
    return rescaled_laplacian(laplacian, value)
