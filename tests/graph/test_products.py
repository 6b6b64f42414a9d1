import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import tensorflow as tf  # noqa: E402

from face_gcn.graph.adjacency import mesh_adjacency  # noqa: E402
from face_gcn.graph.laplacian import chebyshev_operator  # noqa: E402
from face_gcn.graph import products  # noqa: E402
from face_gcn.graph.products import (chebyshev_basis, chebyshev_sum, chebyshev_to_power, power_basis,  # noqa: E402
                                     power_sum, resample, sparse_matmul, upsampled_chebyshev_filter)
from face_gcn.graph.sparse import to_sparse_tensor  # noqa: E402
from .graph_test_meshes import icosphere  # noqa: E402


def _dense_chebyshev(laplacian, order):
    """T_k(L~) as dense float64 matrices from the closed form on the eigenvalues (no recursion)."""
    lam, q = np.linalg.eigh(laplacian.toarray())
    lam = np.clip(lam, -1.0, 1.0)
    return [q @ np.diag(np.cos(k * np.arccos(lam))) @ q.T for k in range(order)]


# narrow blocks take the COO kernel, wide ones the CSR kernel
COLUMNS = [3, products.COO_MAX_COLUMNS + 5]


@pytest.fixture(scope="module")
def laplacian():
    vertices, triangles = icosphere(2, bump=0.1)  # 162 vertices
    return chebyshev_operator(mesh_adjacency(triangles, len(vertices)), "exact")


@pytest.mark.parametrize("columns", COLUMNS + [None])  # None: traced with an unknown column count
def test_sparse_matmul_and_its_gradient_match_dense(columns):
    rng = np.random.default_rng(0)
    matrix = sp.random(7, 11, density=0.3, random_state=1, format="csr") + sp.eye(7, 11)  # not square
    dense = rng.normal(size=(11, columns or 5))
    upstream = rng.normal(size=(7, columns or 5))
    block = tf.constant(dense)

    def product_and_gradient(block):
        with tf.GradientTape() as tape:
            tape.watch(block)
            product = sparse_matmul(to_sparse_tensor(matrix, "float64"), block)
            loss = tf.reduce_sum(product * upstream)
        return product, tape.gradient(loss, block)

    if columns is None:
        product_and_gradient = tf.function(product_and_gradient,
                                           input_signature=[tf.TensorSpec([11, None], tf.float64)])
    product, gradient = product_and_gradient(block)
    np.testing.assert_allclose(product.numpy(), matrix.toarray() @ dense, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gradient.numpy(), matrix.toarray().T @ upstream, rtol=1e-12, atol=1e-12)


def test_resample_per_example_matches_dense():
    rng = np.random.default_rng(2)
    matrix = sp.random(4, 9, density=0.4, random_state=3, format="csr")
    x = rng.normal(size=(3, 9, 2))
    got = resample(to_sparse_tensor(matrix, "float64"), tf.constant(x)).numpy()
    np.testing.assert_allclose(got, np.einsum("rn,bnf->brf", matrix.toarray(), x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("columns", COLUMNS)
@pytest.mark.parametrize("order", [2, 3, 6])
def test_chebyshev_basis_and_its_gradient_match_closed_form(laplacian, order, columns):
    rng = np.random.default_rng(order)
    x = rng.normal(size=(laplacian.shape[0], columns))
    upstream = [rng.normal(size=x.shape) for _ in range(order)]
    filters = _dense_chebyshev(laplacian, order)
    block = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(block)
        terms = chebyshev_basis(to_sparse_tensor(laplacian, "float64"), block, order)
        loss = tf.add_n([tf.reduce_sum(t * g) for t, g in zip(terms, upstream)])
    for got, t_k in zip(terms, filters):
        np.testing.assert_allclose(got.numpy(), t_k @ x, rtol=1e-9, atol=1e-9)
    expected = sum(t_k.T @ g for t_k, g in zip(filters, upstream))
    np.testing.assert_allclose(tape.gradient(loss, block).numpy(), expected, rtol=1e-9, atol=1e-9)


def test_chebyshev_basis_gradient_with_unused_terms(laplacian):
    """Terms that do not reach the loss (None upstream) count as zero in the backward recursion."""
    x = np.random.default_rng(5).normal(size=(laplacian.shape[0], 2))
    filters = _dense_chebyshev(laplacian, 4)
    block = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(block)
        terms = chebyshev_basis(to_sparse_tensor(laplacian, "float64"), block, 4)
        loss = tf.reduce_sum(terms[2])
    expected = filters[2].T @ np.ones_like(x)
    np.testing.assert_allclose(tape.gradient(loss, block).numpy(), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("columns", COLUMNS)
@pytest.mark.parametrize("order", [1, 2, 3, 6])
def test_chebyshev_sum_and_its_gradient_match_closed_form(laplacian, order, columns):
    rng = np.random.default_rng(10 + order)
    blocks = [rng.normal(size=(laplacian.shape[0], columns)) for _ in range(order)]
    upstream = rng.normal(size=blocks[0].shape)
    filters = _dense_chebyshev(laplacian, order)
    variables = [tf.constant(b) for b in blocks]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        total = chebyshev_sum(to_sparse_tensor(laplacian, "float64"), variables)
        loss = tf.reduce_sum(total * upstream)
    np.testing.assert_allclose(total.numpy(), sum(t_k @ b for t_k, b in zip(filters, blocks)), rtol=1e-9, atol=1e-9)
    for got, t_k in zip(tape.gradient(loss, variables), filters):
        np.testing.assert_allclose(got.numpy(), t_k.T @ upstream, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("order", [1, 2, 6, 9])
def test_chebyshev_to_power_matches_numpy(order):
    for k in range(order):
        expected = np.polynomial.chebyshev.cheb2poly(np.eye(order)[k])
        np.testing.assert_array_equal(chebyshev_to_power(order)[k, :len(expected)], expected)
        np.testing.assert_array_equal(chebyshev_to_power(order)[k, len(expected):], 0.0)


@pytest.mark.parametrize("columns", COLUMNS)
@pytest.mark.parametrize("order", [1, 2, 6])
def test_power_sum_and_its_gradient_match_dense_powers(laplacian, order, columns):
    rng = np.random.default_rng(20 + order)
    blocks = [rng.normal(size=(laplacian.shape[0], columns)) for _ in range(order)]
    upstream = rng.normal(size=blocks[0].shape)
    dense = laplacian.toarray()
    powers = [np.linalg.matrix_power(dense, j) for j in range(order)]
    variables = [tf.constant(b) for b in blocks]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        total = power_sum(to_sparse_tensor(laplacian, "float64"), variables)
        loss = tf.reduce_sum(total * upstream)
    np.testing.assert_allclose(total.numpy(), sum(p @ b for p, b in zip(powers, blocks)), rtol=1e-9, atol=1e-9)
    for got, power in zip(tape.gradient(loss, variables), powers):
        np.testing.assert_allclose(got.numpy(), power.T @ upstream, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("columns", COLUMNS)
@pytest.mark.parametrize("order", [2, 6])
def test_power_basis_and_its_gradient_match_dense_powers(laplacian, order, columns):
    rng = np.random.default_rng(30 + order)
    x = rng.normal(size=(laplacian.shape[0], columns))
    upstream = [rng.normal(size=x.shape) for _ in range(order)]
    dense = laplacian.toarray()
    powers = [np.linalg.matrix_power(dense, j) for j in range(order)]
    block = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(block)
        terms = power_basis(to_sparse_tensor(laplacian, "float64"), block, order)
        loss = tf.add_n([tf.reduce_sum(t * g) for t, g in zip(terms[1:], upstream[1:])])  # term 0 unused
    for got, power in zip(terms, powers):
        np.testing.assert_allclose(got.numpy(), power @ x, rtol=1e-9, atol=1e-9)
    expected = sum(p.T @ g for p, g in zip(powers[1:], upstream[1:]))
    np.testing.assert_allclose(tape.gradient(loss, block).numpy(), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("skip_channels", [0, 3])
@pytest.mark.parametrize("filters", [2, 9])  # fewer than the input channels (projected on the coarse level), more
@pytest.mark.parametrize("order", [1, 6, 8])  # the power basis (K <= 6) and the Chebyshev one
def test_upsampled_chebyshev_filter_and_its_gradient_match_dense(laplacian, order, filters, skip_channels):
    """sum_k T_k(L~) [U x, skip] theta_k and its gradients for x, the skip and the kernel, from dense
    float64 matrices and the closed-form T_k (batch of 2, vertex-major)."""
    rng = np.random.default_rng(40 + order + filters + skip_channels)
    fine, coarse, x_channels, batch = laplacian.shape[0], 42, 5, 2
    upsample = sp.random(fine, coarse, density=0.05, random_state=3, format="csr") + sp.eye(fine, coarse)
    x = rng.normal(size=(coarse, batch, x_channels))
    skip = rng.normal(size=(fine, batch, skip_channels)) if skip_channels else None
    channels = x_channels + skip_channels
    kernel = rng.normal(size=(channels * order, filters))
    upstream = rng.normal(size=(fine, batch, filters))
    thetas = [kernel.reshape(channels, order, filters)[:, k] for k in range(order)]  # row f * K + k
    polys, u = _dense_chebyshev(laplacian, order), upsample.toarray()
    inputs = np.einsum("nm,mbf->nbf", u, x)
    if skip is not None:
        inputs = np.concatenate([inputs, skip], axis=-1)
    expected = sum(np.einsum("nm,mbf,fg->nbg", t, inputs, theta) for t, theta in zip(polys, thetas))
    d_inputs = sum(np.einsum("mn,mbg,fg->nbf", t, upstream, theta) for t, theta in zip(polys, thetas))
    d_thetas = [np.einsum("nbf,mn,mbg->fg", inputs, t, upstream) for t in polys]
    d_kernel = np.stack(d_thetas, axis=1).reshape(channels * order, filters)

    tensors = [tf.constant(x), tf.constant(kernel)] + ([tf.constant(skip)] if skip is not None else [])
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        y = upsampled_chebyshev_filter(to_sparse_tensor(laplacian, "float64"), to_sparse_tensor(upsample, "float64"),
                                       tensors[0], tensors[1], order, skip=tensors[2] if skip is not None else None)
        loss = tf.reduce_sum(y * upstream)
    gradients = tape.gradient(loss, tensors)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gradients[0].numpy(), np.einsum("nm,nbf->mbf", u, d_inputs[..., :x_channels]),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gradients[1].numpy(), d_kernel, rtol=1e-9, atol=1e-9)
    if skip is not None:
        np.testing.assert_allclose(gradients[2].numpy(), d_inputs[..., x_channels:], rtol=1e-9, atol=1e-9)


def test_chebconv_refuses_an_asymmetric_laplacian():
    from face_gcn.graph.layers import ChebConv  # pylint: disable=import-outside-toplevel

    with pytest.raises(ValueError, match="symmetric"):
        ChebConv(2, 3, sp.csr_matrix(np.array([[0.0, 1.0], [0.0, 0.0]])))
