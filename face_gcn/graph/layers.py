"""Keras 3 layers for graph convolution on a fixed mesh.

Serialisation design: the sparse matrices (rescaled Laplacian L~, D, U) are given to the
constructor as SciPy sparse matrices or tf.SparseTensor and stored in the layer as two
NON-TRAINABLE weights, ``<name>_indices`` [nnz, 2] int64 and ``<name>_values`` [nnz] float32.
get_config records only the matrix shape and nnz, so a ``.keras`` file stays small and its
weights file carries the matrices; ``keras.models.load_model`` rebuilds the layer with
placeholders of the right shape and loads the real values. SavedModels capture them as
variables too. Optimizers never touch them (not trainable).

Shared matrices: a network whose layers read the same matrix (every ChebConv of one mesh level reads
that level's L~; the Decoder and the Refiner up-sample with the same U) holds it once, in a
SparseMatrix layer handed to each of them instead of the SciPy matrix. Those layers store no copy;
a `.keras` file stores the matrix once (Keras serialises the shared object once and points every
user at it) and a SavedModel captures its two variables once.

Tensors are batch-major [B, N, F] (batch, vertices, channels) by default. ChebConv, MeshResample and
ChebResBlock built with ``vertex_major=True`` take and give [N, B, F] instead, the sparse products'
own layout, so a network that swaps the axes once (SwapBatchAndVertices) at its entry and exit
spares two transposes of every activation per graph layer.
"""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from face_gcn.graph.products import chebyshev_filter, resample, to_vertex_major, upsampled_chebyshev_filter
from face_gcn.graph.sparse import sparse_components

PACKAGE = "face_gcn"


def _components(matrix):
    """(indices [nnz, 2] int64, values [nnz] float64, shape) of a SciPy or tf sparse matrix."""
    if isinstance(matrix, tf.SparseTensor):
        matrix = sp.csr_matrix((np.asarray(matrix.values, np.float64),
                                (np.asarray(matrix.indices)[:, 0], np.asarray(matrix.indices)[:, 1])),
                               shape=tuple(int(s) for s in np.asarray(matrix.dense_shape)))
    if not sp.issparse(matrix):
        raise TypeError(f"expected a SciPy sparse matrix or tf.SparseTensor, got {type(matrix).__name__}")
    indices, values, shape = sparse_components(matrix)
    if not np.all(np.isfinite(values)):
        raise ValueError("sparse matrix has non-finite values")
    return indices, values, shape


class _SparseOperand:
    """A sparse matrix held by a layer as non-trainable (indices, values) weights."""

    def __init__(self, name, matrix=None, shape=None, nnz=None):
        self.name = name
        self.data = None
        if matrix is not None:
            indices, values, matrix_shape = _components(matrix)
            if shape is not None and tuple(shape) != matrix_shape:
                raise ValueError(f"{name}: matrix shape {matrix_shape} != declared {tuple(shape)}")
            self.data = (indices, values)
            shape, nnz = matrix_shape, len(values)
        if shape is None or nnz is None:
            raise ValueError(f"{name}: give the sparse matrix (or its shape and nnz when deserialising)")
        self.shape = (int(shape[0]), int(shape[1]))
        self.nnz = int(nnz)
        self.indices = self.values = None

    def create_weights(self, layer):
        data = self.data

        def initial(part, dtype):
            def initializer(shape, dtype=dtype):
                if data is None:
                    return tf.zeros(shape, dtype=dtype)
                return tf.constant(data[part], dtype=dtype)
            return initializer

        self.indices = layer.add_weight(name=f"{self.name}_indices", shape=(self.nnz, 2), dtype="int64",
                                        initializer=initial(0, "int64"), trainable=False)
        self.values = layer.add_weight(name=f"{self.name}_values", shape=(self.nnz,), dtype="float32",
                                       initializer=initial(1, "float32"), trainable=False)

    def is_symmetric(self, tolerance: float = 1e-6) -> bool:
        """Whether the given matrix equals its transpose (True while only its shape is known)."""
        if self.data is None:
            return True
        indices, values = self.data
        matrix = sp.csr_matrix((values, (indices[:, 0], indices[:, 1])), shape=self.shape)
        scale = max(1.0, float(np.abs(values).max(initial=0.0)))
        return self.shape[0] == self.shape[1] and abs(matrix - matrix.T).max() <= tolerance * scale

    def tensor(self, dtype):
        """The matrix as a tf.SparseTensor of ``dtype``."""
        values = tf.cast(tf.convert_to_tensor(self.values), dtype)
        return tf.SparseTensor(tf.convert_to_tensor(self.indices), values, self.shape)

    def config(self):
        return {f"{self.name}_shape": list(self.shape), f"{self.name}_nnz": self.nnz}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SparseMatrix(keras.layers.Layer):
    """A fixed sparse matrix held once, as non-trainable weights, for every graph layer that reads it.

    Not called on tensors: ChebConv (as its laplacian) and MeshResample (as its matrix) read it.

    Args:
      matrix: SciPy sparse matrix or tf.SparseTensor (or matrix_shape and matrix_nnz when
        deserialising; the weights then load from the file).
    """

    def __init__(self, matrix=None, *, matrix_shape=None, matrix_nnz=None, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.operand = _SparseOperand("matrix", matrix, matrix_shape, matrix_nnz)
        self.operand.create_weights(self)
        self.built = True

    def call(self, inputs):
        raise TypeError(f"{self.name}: a SparseMatrix is read by graph layers, not called on tensors")

    def get_config(self):
        config = super().get_config()
        config.update(self.operand.config())
        return config


def _matrix_operand(name, matrix, shape, nnz):
    """(operand, shared): a SparseMatrix's operand (the layer stores no copy), or a new private one."""
    if isinstance(matrix, SparseMatrix):
        return matrix.operand, matrix
    return _SparseOperand(name, matrix, shape, nnz), None


def _serialised_shared(matrix: SparseMatrix) -> dict:
    """The SparseMatrix's Keras config marked as one shared object (Keras's "shared_object_id"), so a
    loaded model rebuilds one matrix for all its readers. Keras marks on its own only an object it
    meets twice in one sub-model's config; a matrix read once in each of two sub-models (the Decoder's
    and the Refiner's U) would load as two matrices, the second without weights."""
    config = keras.saving.serialize_keras_object(matrix)
    config["shared_object_id"] = id(matrix)
    return config


def _matrix_config(key: str, operand, shared) -> dict:
    """A layer's config entries for one of its matrices: the shared SparseMatrix under ``key``, else the
    private operand's shape and nnz (nothing for a layer without the matrix)."""
    if shared is not None:
        return {key: _serialised_shared(shared)}
    return {} if operand is None else operand.config()


def _deserialised_matrix(config, key):
    """config with its shared SparseMatrix (serialised under ``key``) rebuilt, or as it is."""
    if isinstance(config.get(key), dict):
        config = dict(config)
        config[key] = keras.saving.deserialize_keras_object(config[key])
    return config


def _layout(vertex_major: bool) -> str:
    return "[N, B, F]" if vertex_major else "[B, N, F]"


def _check_input(shape, num_vertices, layer_name, vertex_major=False):
    """Rank 3 and, where known, ``num_vertices`` on the vertex axis of the layout."""
    if len(shape) != 3:
        raise ValueError(f"{layer_name}: input must be {_layout(vertex_major)}, got shape {tuple(shape)}")
    vertices = shape[0 if vertex_major else 1]
    if num_vertices is not None and vertices is not None and vertices != num_vertices:
        raise ValueError(f"{layer_name}: input has {vertices} vertices, the matrix expects {num_vertices}")


def _shape_of(value) -> tuple:
    """A tensor's static shape, or a shape, as a tuple."""
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def _with_vertices(shape, num_vertices, channels, vertex_major):
    """The output shape: ``shape`` with its vertex axis and channels replaced."""
    if vertex_major:
        return (num_vertices, shape[1], channels)
    return (shape[0], num_vertices, channels)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChebConv(keras.layers.Layer):
    """Chebyshev spectral graph convolution (Defferrard et al. 2016; CoMA; Lin et al. Eq. 2-3).

    y_j = sum_i sum_k theta[i, j, k] T_k(L~) x_i, with T_0 = x, T_1 = L~ x,
    T_k = 2 L~ T_{k-1} - T_{k-2}. No bias (the authors add it in the activation layer).

    Input [B, N, F_in] -> output [B, N, filters] ([N, B, ...] with vertex_major). The kernel is
    stored as [F_in * K, filters] with row index f_in * K + k (the authors' layout), He-normal
    initialised.

    Args:
      filters: F_out.
      K: polynomial order (number of Chebyshev terms), >= 1.
      laplacian: rescaled Laplacian L~ [N, N]: SciPy sparse or tf.SparseTensor (the layer stores
        it), or a SparseMatrix that other layers share. May be omitted for K = 1 (then it is a
        per-vertex dense layer and ``num_vertices`` is optional).
      use_bias: add a per-channel bias (default False, as the authors).
      vertex_major: features are [N, B, F] (default False: [B, N, F]).
    """

    def __init__(self, filters, K, laplacian=None, *, use_bias=False, kernel_initializer="he_normal",
                 kernel_regularizer=None, laplacian_shape=None, laplacian_nnz=None, vertex_major=False,
                 **kwargs):
        super().__init__(**kwargs)
        if int(filters) < 1 or int(K) < 1:
            raise ValueError(f"filters and K must be >= 1, got {filters}, {K}")
        self.filters, self.K, self.use_bias = int(filters), int(K), bool(use_bias)
        self.vertex_major = bool(vertex_major)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.operand = self.shared_laplacian = None
        if laplacian is not None or laplacian_shape is not None or self.K > 1:
            self.operand, self.shared_laplacian = _matrix_operand("laplacian", laplacian, laplacian_shape,
                                                                  laplacian_nnz)
            if self.operand.shape[0] != self.operand.shape[1]:
                raise ValueError(f"laplacian must be square, got {self.operand.shape}")
            if not self.operand.is_symmetric():
                raise ValueError("laplacian must be symmetric (a rescaled Laplacian of an undirected mesh)")

    def _num_vertices(self):
        return None if self.operand is None else self.operand.shape[0]

    def build(self, input_shape):
        _check_input(input_shape, self._num_vertices(), self.name, self.vertex_major)
        if input_shape[-1] is None:
            raise ValueError(f"{self.name}: input must have a known number of channels, got {input_shape}")
        if self.operand is not None and self.shared_laplacian is None:
            self.operand.create_weights(self)
        self.kernel = self.add_weight(name="kernel", shape=(int(input_shape[-1]) * self.K, self.filters),
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                     if self.use_bias else None)

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        _check_input(x.shape, self._num_vertices(), self.name, self.vertex_major)
        laplacian = None if self.operand is None else self.operand.tensor(x.dtype)
        y = chebyshev_filter(laplacian, x, tf.cast(self.kernel, x.dtype), self.K, vertex_major=self.vertex_major)
        if self.bias is not None:
            y = y + tf.cast(self.bias, x.dtype)
        return tf.ensure_shape(y, self.compute_output_shape(x.shape))

    def compute_output_shape(self, input_shape):
        vertices = input_shape[0 if self.vertex_major else 1]
        return _with_vertices(input_shape, vertices, self.filters, self.vertex_major)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, K=self.K, use_bias=self.use_bias, vertex_major=self.vertex_major,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                      kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer))
        config.update(_matrix_config("laplacian", self.operand, self.shared_laplacian))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialised_matrix(config, "laplacian"))


@keras.saving.register_keras_serializable(package=PACKAGE)
class UpsampleChebConv(ChebConv):
    """ChebConv of up-sampled features and, after their channels, a skip's: cheb([U x, skip]), a
    decoder step (MeshResample, [Concatenate,] ChebConv) in one layer with the same kernel.

    Computed by products.upsampled_chebyshev_filter: with filters < F_in the x channels are projected
    on the coarse level before U, so their dense products run on about 4x fewer rows. Vertex-major
    only: x [N_c, B, F_x], or [x, skip [N, B, F_s]] -> [N, B, filters]. The kernel is ChebConv's for
    F_x + F_s input channels.

    Args: ChebConv's, and upsample: U [N, N_c], SciPy sparse or tf.SparseTensor (the layer stores it),
      or a SparseMatrix that other layers share.
    """

    def __init__(self, filters, K, laplacian=None, upsample=None, *, upsample_shape=None, upsample_nnz=None,
                 vertex_major=True, **kwargs):
        if not vertex_major:
            raise ValueError("UpsampleChebConv takes vertex-major features only ([N, B, F])")
        super().__init__(filters, K, laplacian, vertex_major=True, **kwargs)
        self.upsample, self.shared_upsample = _matrix_operand("upsample", upsample, upsample_shape, upsample_nnz)
        if self.operand is not None and self.operand.shape[0] != self.upsample.shape[0]:
            raise ValueError(f"upsample has {self.upsample.shape[0]} rows, the laplacian {self.operand.shape[0]}")

    def _split(self, inputs):
        """(x, skip or None) from x or [x, skip] (tensors or their shapes), each checked against U."""
        if isinstance(inputs, (list, tuple)) and not isinstance(inputs[0], (int, type(None))):  # not one shape
            if len(inputs) != 2:
                raise ValueError(f"{self.name}: give x or [x, skip], got {len(inputs)} inputs")
            x, skip = inputs
        else:
            x, skip = inputs, None
        _check_input(_shape_of(x), self.upsample.shape[1], f"{self.name} (x)", vertex_major=True)
        if skip is not None:
            _check_input(_shape_of(skip), self.upsample.shape[0], f"{self.name} (skip)", vertex_major=True)
        return x, skip

    def build(self, input_shape):
        coarse, skip = self._split(input_shape)
        if self.shared_upsample is None:
            self.upsample.create_weights(self)
        channels = coarse[-1] + (0 if skip is None else skip[-1])
        super().build((self.upsample.shape[0], coarse[1], channels))

    def call(self, inputs):
        x, skip = self._split(inputs)
        x = tf.convert_to_tensor(x)
        skip = None if skip is None else tf.convert_to_tensor(skip, x.dtype)
        laplacian = None if self.operand is None else self.operand.tensor(x.dtype)
        y = upsampled_chebyshev_filter(laplacian, self.upsample.tensor(x.dtype), x, tf.cast(self.kernel, x.dtype),
                                       self.K, skip=skip)
        if self.bias is not None:
            y = y + tf.cast(self.bias, x.dtype)
        return tf.ensure_shape(y, (self.upsample.shape[0], x.shape[1], self.filters))

    def compute_output_shape(self, input_shape):
        coarse, _ = self._split(input_shape)
        return (self.upsample.shape[0], tuple(coarse)[1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(_matrix_config("upsample", self.upsample, self.shared_upsample))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialised_matrix(_deserialised_matrix(config, "laplacian"), "upsample"))


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeshResample(keras.layers.Layer):
    """y = M x with a fixed sparse M: down-sampling D [Nc, Nf] or up-sampling U [Nf, Nc].

    Input [B, N_in, F] -> output [B, N_out, F] with M [N_out, N_in] ([N, B, F] with vertex_major).
    matrix: SciPy sparse or tf.SparseTensor (the layer stores it), or a SparseMatrix that other
    layers share.
    """

    def __init__(self, matrix=None, *, matrix_shape=None, matrix_nnz=None, vertex_major=False, **kwargs):
        super().__init__(**kwargs)
        self.operand, self.shared_matrix = _matrix_operand("matrix", matrix, matrix_shape, matrix_nnz)
        self.vertex_major = bool(vertex_major)

    def build(self, input_shape):
        _check_input(input_shape, self.operand.shape[1], self.name, self.vertex_major)
        if self.shared_matrix is None:
            self.operand.create_weights(self)

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        _check_input(x.shape, self.operand.shape[1], self.name, self.vertex_major)
        y = resample(self.operand.tensor(x.dtype), x, vertex_major=self.vertex_major)
        return tf.ensure_shape(y, self.compute_output_shape(x.shape))

    def compute_output_shape(self, input_shape):
        return _with_vertices(input_shape, self.operand.shape[0], input_shape[2], self.vertex_major)

    def get_config(self):
        config = super().get_config()
        config.update(_matrix_config("matrix", self.operand, self.shared_matrix))
        config.update(vertex_major=self.vertex_major)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialised_matrix(config, "matrix"))


@keras.saving.register_keras_serializable(package=PACKAGE)
class SwapBatchAndVertices(keras.layers.Layer):
    """[B, N, F] <-> [N, B, F]: into and out of the vertex-major layout (its own inverse)."""

    def call(self, inputs):
        return to_vertex_major(tf.convert_to_tensor(inputs))

    def compute_output_shape(self, input_shape):
        return (input_shape[1], input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package=PACKAGE)
class BiasActivation(keras.layers.Layer):
    """Per-channel bias then activation: the authors' "brelu" (bias + ELU by default).

    Input [..., F] -> same shape. ``activation``: any Keras activation name ("elu", "relu", ...).
    """

    def __init__(self, activation="elu", **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(int(input_shape[-1]),), initializer="zeros")

    def call(self, inputs):
        return self.activation(inputs + tf.cast(self.bias, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(activation=keras.activations.serialize(self.activation))
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChebResBlock(keras.layers.Layer):
    """Residual block: act(b2 + cheb2(act(b1 + cheb1(x))) + shortcut(x)).

    The shortcut is the identity when F_in == filters, else a K = 1 Chebyshev conv (a per-vertex
    linear map, the authors' choice). Input [B, N, F_in] -> output [B, N, filters] ([N, B, ...] with
    vertex_major).

    Args:
      filters: F_out; K: Chebyshev order; laplacian: rescaled Laplacian [N, N] (SciPy sparse or
        tf.SparseTensor: each conv stores it; a SparseMatrix: both read the shared one);
      activation: Keras activation (default "elu"); vertex_major: features are [N, B, F].
    """

    def __init__(self, filters, K, laplacian=None, *, activation="elu", laplacian_shape=None,
                 laplacian_nnz=None, vertex_major=False, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.K, self.vertex_major = int(filters), int(K), bool(vertex_major)
        self.activation_name = activation if isinstance(activation, str) else keras.activations.serialize(activation)
        spec = dict(laplacian_shape=laplacian_shape, laplacian_nnz=laplacian_nnz, vertex_major=self.vertex_major)
        self.conv1 = ChebConv(self.filters, self.K, laplacian, name="conv1", **spec)
        self.act1 = BiasActivation(activation, name="act1")
        self.conv2 = ChebConv(self.filters, self.K, laplacian, name="conv2", **spec)
        self.bias2 = BiasActivation("linear", name="bias2")
        self.act_out = keras.layers.Activation(activation, name="act_out")
        self.shortcut = None

    def build(self, input_shape):
        inner = (input_shape[0], input_shape[1], self.filters)  # either layout: only F changes
        self.conv1.build(input_shape)
        self.act1.build(inner)
        self.conv2.build(inner)
        self.bias2.build(inner)
        if int(input_shape[-1]) != self.filters:
            self.shortcut = ChebConv(self.filters, 1, vertex_major=self.vertex_major, name="shortcut")
            self.shortcut.build(input_shape)

    def call(self, inputs):
        hidden = self.act1(self.conv1(inputs))
        hidden = self.bias2(self.conv2(hidden))
        skip = inputs if self.shortcut is None else self.shortcut(inputs)
        return self.act_out(hidden + skip)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, K=self.K, activation=self.activation_name, vertex_major=self.vertex_major)
        config.update(_matrix_config("laplacian", self.conv1.operand, self.conv1.shared_laplacian))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialised_matrix(config, "laplacian"))
