import numpy as np
import scipy.sparse as sp

from face_gcn.graph.sparse import from_sparse_tensor, sparse_components, to_sparse_tensor


def test_sparse_tensor_round_trip_is_canonical():
    matrix = sp.random(9, 7, density=0.3, format="csc", random_state=0)
    indices, values, shape = sparse_components(matrix)
    assert shape == (9, 7)
    order = indices[:, 0] * 7 + indices[:, 1]
    assert np.all(np.diff(order) > 0)  # row-major, no duplicates
    np.testing.assert_array_equal(values, matrix.toarray()[indices[:, 0], indices[:, 1]])
    tensor = to_sparse_tensor(matrix, "float64")
    np.testing.assert_array_equal(from_sparse_tensor(tensor).toarray(), matrix.toarray())
