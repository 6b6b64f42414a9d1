"""Conversion of SciPy sparse matrices to and from tf.sparse.SparseTensor."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def sparse_components(matrix: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Row-major (canonical) COO components of a sparse matrix.

    Returns:
      indices: [nnz, 2] int64 (row, col), sorted row-major.
      values: [nnz] float64.
      shape: (rows, cols).
    """
    coo = sp.csr_matrix(matrix)
    coo.sum_duplicates()
    coo.sort_indices()
    coo = coo.tocoo()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
    return indices, coo.data.astype(np.float64), (int(coo.shape[0]), int(coo.shape[1]))


def to_sparse_tensor(matrix: sp.spmatrix, dtype="float32"):
    """tf.sparse.SparseTensor of a SciPy sparse matrix (canonical row-major order)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    indices, values, shape = sparse_components(matrix)
    return tf.SparseTensor(indices=indices, values=tf.constant(values, dtype=dtype), dense_shape=shape)


def from_sparse_tensor(tensor) -> sp.csr_matrix:
    """SciPy CSR matrix of an eager tf.sparse.SparseTensor."""
    indices = np.asarray(tensor.indices)
    values = np.asarray(tensor.values, dtype=np.float64)
    shape = tuple(int(s) for s in np.asarray(tensor.dense_shape))
    return sp.csr_matrix((values, (indices[:, 0], indices[:, 1])), shape=shape)
