"""Products of fixed sparse matrices with dense blocks: the arithmetic of the graph layers.

The matrix (a rescaled Laplacian L~, a down-sampling D or an up-sampling U) is constant: only the
dense side gets a gradient. Products of wide blocks run on TensorFlow's CSR kernels
(SparseMatrixMatMul, stock ops that TF Serving carries): on this project's CPUs they are 6-10x
faster than tf.sparse.sparse_dense_matmul on a 3,643-vertex Laplacian with 128 columns
(tools/bench_graph.py); blocks of at most COO_MAX_COLUMNS columns (a batch of one) use the latter.
The Chebyshev recursion is one differentiable unit (chebyshev_basis) whose backward pass runs the
transposed recursion on the same matrix; its doubled terms 2 L~ T use a second operand holding
2 L~ (exact in floating point), which spares an element-wise pass per order. Up to
POWER_BASIS_MAX_ORDER the filters run in the power basis instead (sum_k T_k(L~) x theta_k =
sum_j L~^j x phi_j, phi = C theta with C from chebyshev_to_power): its basis L~^j x is products
alone (power_basis), and a filter that projects first sums sum_j L~^j z_j by Horner's rule
(power_sum), one product and one addition per order where Clenshaw's recursion takes a product and
two element-wise passes. The same function, in fewer passes over the [N, B F] blocks. A decoder
step's filter of up-sampled features (upsampled_chebyshev_filter) projects before it up-samples,
U (x phi) = (U x) phi, so that its dense products run on the coarser level.

Vertex features are batch-major [B, N, F] at the layers' boundaries or vertex-major [N, B, F] inside
a network built that way (face_gcn.nets.gcn); a product sees them as columns [N, B * F], so that it
serves the whole batch, which is a free reshape of the vertex-major layout.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


# Up to this many columns the COO kernel (tf.sparse.sparse_dense_matmul) is the faster one and
# needs no conversion: at 35,899 vertices it takes 1.5-1.9 ms for 3-16 columns where the CSR kernel
# takes 2.5-4.5 ms plus a 1.1 ms conversion; from 32 columns on CSR wins (3.9 vs 17.5 ms at 32,
# 13 vs 103 ms at 256). Batched layers have B * F columns, per-photo refinement F.
COO_MAX_COLUMNS = 16
# Up to this order the filters run in the power basis (power_basis, power_sum). T_k's power
# coefficients grow with k (their absolute sum is 41 for T_5, 1393 for T_9), and rounding grows with
# them: at K = 6 a float32 filter is within about 6e-7 of the float64 one (relative to its largest
# value) where the Chebyshev recursions are within 2e-7 (tools/bench_graph.py); higher orders keep
# the Chebyshev recursions.
POWER_BASIS_MAX_ORDER = 6


class _Operand:
    """A fixed sparse matrix ready for products with blocks of ``columns`` columns: CSR form (one
    conversion, made here) for wide or unknown blocks, the COO components for narrow ones."""

    def __init__(self, indices, values, dense_shape, columns):
        self.coo = columns is not None and columns <= COO_MAX_COLUMNS
        if self.coo:
            self.matrix = tf.SparseTensor(indices, values, dense_shape)
        else:
            self.matrix = tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=indices, values=values,
                                                                   dense_shape=dense_shape)

    def times(self, block, transpose=False):
        """M block, or M^T block."""
        if self.coo:
            return tf.sparse.sparse_dense_matmul(self.matrix, block, adjoint_a=transpose)
        return tf.raw_ops.SparseMatrixMatMul(a=self.matrix, b=block, transpose_a=transpose)


def _recursion_operands(indices, values, dense_shape, columns):
    """(L~, 2 L~) as operands: the Chebyshev recursions' two matrices."""
    return (_Operand(indices, values, dense_shape, columns),
            _Operand(indices, 2.0 * values, dense_shape, columns))


# The gradient functions below rebuild their operands from their inputs instead of capturing the
# forward pass's: a SavedModel can keep gradient functions that read their inputs, not ones that
# capture intermediate tensors.


def sparse_matmul(matrix: tf.SparseTensor, dense):
    """M @ dense with a gradient for ``dense`` only (M^T g).

    Args:
      matrix: [R, C] SparseTensor, indices in row-major order, values of ``dense``'s dtype.
      dense: [C, K].
    Returns:
      [R, K].
    """
    @tf.custom_gradient
    def apply(indices, values, dense_shape, block):
        columns = block.shape[-1]

        def gradient(upstream):
            return None, None, None, _Operand(indices, values, dense_shape, columns).times(upstream, transpose=True)
        return _Operand(indices, values, dense_shape, columns).times(block), gradient

    return apply(matrix.indices, matrix.values, matrix.dense_shape,
                 tf.convert_to_tensor(dense, matrix.values.dtype))


def chebyshev_basis(laplacian: tf.SparseTensor, x, order: int) -> list:
    """[T_0(L~) x, ..., T_{K-1}(L~) x] for a symmetric L~, by T_k = 2 L~ T_{k-1} - T_{k-2}.

    One pair of operands (L~, 2 L~) serves the K - 1 products of the forward pass, another those of
    the backward pass, which is Clenshaw's recursion for sum_k T_k(L~) g_k (L~ symmetric, so every T_k(L~) is).

    Args:
      laplacian: [N, N] symmetric SparseTensor, indices in row-major order (unused when K = 1).
      x: [N, C].
      order: K >= 1.
    Returns:
      K tensors [N, C].
    """
    if order == 1:
        return [x]

    @tf.custom_gradient
    def basis(indices, values, dense_shape, t0):
        columns = t0.shape[-1]
        operand, doubled = _recursion_operands(indices, values, dense_shape, columns)
        terms = [t0, operand.times(t0)]
        for _ in range(2, order):
            terms.append(doubled.times(terms[-1]) - terms[-2])

        def gradient(*upstream):
            upstream = [tf.zeros_like(t0) if g is None else g for g in upstream]
            operand, doubled = _recursion_operands(indices, values, dense_shape, columns)
            later, latest = tf.zeros_like(t0), upstream[order - 1]  # b_{k+2}, b_{k+1}
            for k in range(order - 2, 0, -1):
                later, latest = latest, upstream[k] + (doubled.times(latest) - later)
            return None, None, None, upstream[0] + (operand.times(latest) - later)

        return terms, gradient

    return basis(laplacian.indices, laplacian.values, laplacian.dense_shape,
                 tf.convert_to_tensor(x, laplacian.values.dtype))


def to_vertex_major(x):
    """[B, N, F] -> [N, B, F]."""
    return tf.transpose(x, [1, 0, 2])


def to_batch_major(x):
    """[N, B, F] -> [B, N, F]."""
    return tf.transpose(x, [1, 0, 2])


def _columns(x):
    """Vertex-major [N, B, F] -> [N, B * F] (a free reshape): the batch folded into the columns."""
    return tf.reshape(x, [tf.shape(x)[0], -1])


def resample(matrix: tf.SparseTensor, x, vertex_major: bool = False):
    """M x per example: M [R, N] sparse, x [B, N, F] -> [B, R, F] (or [N, B, F] -> [R, B, F] when
    vertex_major)."""
    if not vertex_major:
        return to_batch_major(resample(matrix, to_vertex_major(x), vertex_major=True))
    shape = tf.shape(x)
    return tf.reshape(sparse_matmul(matrix, _columns(x)), [-1, shape[1], shape[2]])


def chebyshev_sum(laplacian: tf.SparseTensor, blocks) -> tf.Tensor:
    """sum_k T_k(L~) blocks[k] for a symmetric L~, by Clenshaw's recursion.

    b_k = z_k + 2 L~ b_{k+1} - b_{k+2} (b_K = b_{K+1} = 0), sum = z_0 + L~ b_1 - b_2: K - 1
    products, like chebyshev_basis, on the blocks' columns. Its gradient for block k is
    T_k(L~) g, which is chebyshev_basis's forward recursion on the upstream g.

    Args:
      laplacian: [N, N] symmetric SparseTensor, indices in row-major order (unused when K = 1).
      blocks: K tensors [N, C].
    Returns:
      [N, C].
    """
    order = len(blocks)
    if order == 1:
        return blocks[0]

    @tf.custom_gradient
    def total(indices, values, dense_shape, *zs):
        columns = zs[0].shape[-1]
        operand, doubled = _recursion_operands(indices, values, dense_shape, columns)
        later, latest = tf.zeros_like(zs[0]), zs[order - 1]  # b_{k+2}, b_{k+1}
        for k in range(order - 2, 0, -1):
            later, latest = latest, zs[k] + (doubled.times(latest) - later)
        result = zs[0] + (operand.times(latest) - later)

        def gradient(upstream):
            operand, doubled = _recursion_operands(indices, values, dense_shape, columns)
            terms = [upstream, operand.times(upstream)]
            for _ in range(2, order):
                terms.append(doubled.times(terms[-1]) - terms[-2])
            return (None, None, None, *terms)

        return result, gradient

    return total(laplacian.indices, laplacian.values, laplacian.dense_shape,
                 *[tf.convert_to_tensor(z, laplacian.values.dtype) for z in blocks])


def chebyshev_to_power(order: int):
    """C [K, K] float64 with T_k(x) = sum_j C[k, j] x^j (T_0 = 1, T_1 = x, T_k = 2 x T_{k-1} - T_{k-2})."""
    table = np.zeros((order, order))
    table[0, 0] = 1.0
    if order > 1:
        table[1, 1] = 1.0
    for k in range(2, order):
        table[k, 1:] = 2.0 * table[k - 1, :-1]
        table[k] -= table[k - 2]
    return table


def _powers(operand: _Operand, x, order: int) -> list:
    """[x, M x, ..., M^{K-1} x]: K - 1 products."""
    terms = [x]
    for _ in range(1, order):
        terms.append(operand.times(terms[-1]))
    return terms


def _horner(operand: _Operand, blocks) -> tf.Tensor:
    """sum_j M^j blocks[j] by Horner's rule: K - 1 products and K - 1 additions. Each of _powers and
    _horner is the other's transpose (for a symmetric M), so each serves as the other's gradient."""
    result = blocks[-1]
    for block in reversed(blocks[:-1]):
        result = block + operand.times(result)
    return result


def power_basis(laplacian: tf.SparseTensor, x, order: int) -> list:
    """[x, L~ x, ..., L~^{K-1} x] for a symmetric L~: K - 1 products and nothing else.

    The gradient, sum_j L~^j g_j, is power_sum's Horner rule on the upstream gradients.

    Args:
      laplacian: [N, N] symmetric SparseTensor, indices in row-major order (unused when K = 1).
      x: [N, C].
      order: K >= 1.
    Returns:
      K tensors [N, C].
    """
    if order == 1:
        return [x]

    @tf.custom_gradient
    def basis(indices, values, dense_shape, t0):
        terms = _powers(_Operand(indices, values, dense_shape, t0.shape[-1]), t0, order)

        def gradient(*upstream):
            upstream = [tf.zeros_like(t0) if g is None else g for g in upstream]
            return None, None, None, _horner(_Operand(indices, values, dense_shape, t0.shape[-1]), upstream)

        return terms, gradient

    return basis(laplacian.indices, laplacian.values, laplacian.dense_shape,
                 tf.convert_to_tensor(x, laplacian.values.dtype))


def power_sum(laplacian: tf.SparseTensor, blocks) -> tf.Tensor:
    """sum_j L~^j blocks[j] for a symmetric L~, by Horner's rule: b = z_{K-1}, b = z_j + L~ b.

    K - 1 products and K - 1 additions; the gradient for block j is L~^j g (the powers of the upstream
    gradient, K - 1 products and nothing else).

    Args:
      laplacian: [N, N] symmetric SparseTensor, indices in row-major order (unused for one block).
      blocks: K tensors [N, C].
    Returns:
      [N, C].
    """
    order = len(blocks)
    if order == 1:
        return blocks[0]

    @tf.custom_gradient
    def total(indices, values, dense_shape, *zs):
        result = _horner(_Operand(indices, values, dense_shape, zs[0].shape[-1]), zs)

        def gradient(upstream):
            operand = _Operand(indices, values, dense_shape, zs[0].shape[-1])
            return (None, None, None, *_powers(operand, upstream, order))

        return result, gradient

    return total(laplacian.indices, laplacian.values, laplacian.dense_shape,
                 *[tf.convert_to_tensor(z, laplacian.values.dtype) for z in blocks])


def _term_weights(kernel, channels: int, order: int):
    """(K weights [F_in, F_out], power): the kernel [F_in * K, F_out] per polynomial term, converted to
    the power basis (phi_j = sum_k C[k, j] theta_k) when 1 < K <= POWER_BASIS_MAX_ORDER."""
    kernels = tf.reshape(kernel, [channels, order, -1])  # [F_in, K, F_out]: theta_k = kernels[:, k]
    power = 1 < order <= POWER_BASIS_MAX_ORDER
    if power:
        kernels = tf.einsum("kj,ikf->ijf", tf.constant(chebyshev_to_power(order), kernel.dtype), kernels)
    return tf.unstack(kernels, axis=1), power


def _project(block, weight, rows):
    """Vertex-major [N, B, F_in] (or its columns [N, B * F_in]) @ [F_in, F_out] -> columns [N, B * F_out]."""
    return tf.reshape(tf.matmul(tf.reshape(block, [-1, weight.shape[0]]), weight), [rows, -1])


def chebyshev_filter(laplacian, x, kernel, order, vertex_major: bool = False):
    """sum_k T_k(L~) x theta_k.

    The sparse products run on min(F_in, F_out) channels per example: with F_out < F_in the input
    is projected first and the polynomial summed; otherwise the basis is built first and projected.
    For 1 < K <= POWER_BASIS_MAX_ORDER both run in the power basis (weights phi_j = sum_k C[k, j]
    theta_k; power_sum of z_j = x phi_j, or power_basis L~^j x projected by phi_j), above it in the
    Chebyshev one (chebyshev_sum of z_k = x theta_k, or chebyshev_basis T_k(L~) x projected by theta_k).
    Vertex-major features are the products' own layout; batch-major ones are transposed on the
    way in and out.

    Args:
      laplacian: symmetric tf.SparseTensor [N, N], the rescaled Laplacian L~ (unused when
        order == 1).
      x: [B, N, F_in], or [N, B, F_in] when vertex_major.
      kernel: [F_in * K, F_out], row f_in * K + k holds theta_k[f_in, :].
      order: K >= 1.
    Returns:
      [B, N, F_out], or [N, B, F_out] when vertex_major.
    """
    if not vertex_major:
        return to_batch_major(chebyshev_filter(laplacian, to_vertex_major(x), kernel, order, vertex_major=True))
    channels, shape = x.shape[-1], tf.shape(x)
    weights, power = _term_weights(kernel, channels, order)
    if order > 1 and kernel.shape[-1] < channels:
        y = (power_sum if power else chebyshev_sum)(laplacian, [_project(x, w, shape[0]) for w in weights])
    else:
        terms = (power_basis if power else chebyshev_basis)(laplacian, _columns(x), order)
        y = tf.add_n([_project(term, w, shape[0]) for term, w in zip(terms, weights)])
    return tf.reshape(y, [shape[0], shape[1], -1])


def upsampled_chebyshev_filter(laplacian, upsample, x, kernel, order, skip=None):
    """chebyshev_filter of [U x, skip] (the up-sampled features, then the skip's channels), vertex-major.

    With F_out < F_in the input is projected before it is up-sampled, U (x phi_j) = (U x) phi_j: the
    dense products of the x channels run on the coarse level's N_c rows instead of the fine level's
    N (about 4x fewer in a CoMA hierarchy), and U x is never formed. Otherwise U x is formed and
    concatenated, and chebyshev_filter runs on it.

    Args:
      laplacian: symmetric tf.SparseTensor [N, N] (unused when order == 1).
      upsample: tf.SparseTensor [N, N_c], U.
      x: [N_c, B, F_x] features at the coarse level.
      kernel: [(F_x + F_s) * K, F_out] (chebyshev_filter's layout; the x channels first).
      order: K >= 1.
      skip: None, or [N, B, F_s] features at the fine level.
    Returns:
      [N, B, F_out].
    """
    channels = x.shape[-1] + (0 if skip is None else skip.shape[-1])
    if kernel.shape[-1] >= channels:
        full = resample(upsample, x, vertex_major=True)
        if skip is not None:
            full = tf.concat([full, skip], axis=-1)
        return chebyshev_filter(laplacian, full, kernel, order, vertex_major=True)
    weights, power = _term_weights(kernel, channels, order)
    split, coarse_rows, rows = x.shape[-1], tf.shape(x)[0], tf.cast(upsample.dense_shape[0], tf.int32)
    blocks = []
    for weight in weights:
        block = sparse_matmul(upsample, _project(x, weight[:split], coarse_rows))  # [N, B * F_out]
        if skip is not None:
            block = block + _project(skip, weight[split:], rows)
        blocks.append(block)
    y = (power_sum if power else chebyshev_sum)(laplacian, blocks)
    return tf.reshape(y, [rows, tf.shape(x)[1], -1])
