import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import tensorflow as tf  # noqa: E402

from face_gcn.graph.adjacency import mesh_adjacency  # noqa: E402
from face_gcn.graph.laplacian import chebyshev_operator  # noqa: E402
from face_gcn.graph.layers import (BiasActivation, ChebConv, ChebResBlock, MeshResample,  # noqa: E402
                                   SparseMatrix, SwapBatchAndVertices, UpsampleChebConv)
from .graph_test_meshes import bumpy_grid, icosphere  # noqa: E402


def _spectral_filters(adjacency, order, lmax):
    """T_k(L~) for k < order through the eigendecomposition of L (float64, no recursion).

    L = I - D^-1/2 A D^-1/2 = Q diag(lam) Q^T; T_k(L~) = Q diag(cos(k arccos(2 lam / lmax - 1))) Q^T.
    """
    a = adjacency.toarray()
    d = a.sum(axis=1)
    laplacian = np.eye(len(a)) - a / np.sqrt(np.outer(d, d))
    lam, q = np.linalg.eigh(laplacian)
    lmax = {"exact": lam[-1], "fixed": 2.0}.get(lmax, lmax)
    scaled = np.clip(2.0 * lam / lmax - 1.0, -1.0, 1.0)
    return [q @ np.diag(np.cos(k * np.arccos(scaled))) @ q.T for k in range(order)]


def _reference_cheb(filters_k, x, theta):
    """y[b] = sum_k T_k x[b] theta[k]; x [B, N, Fin], theta [K, Fin, Fout]."""
    return sum(np.einsum("nm,bmf,fo->bno", t, x, theta[k]) for k, t in enumerate(filters_k))


def _kernel_from_theta(theta):
    """[K, Fin, Fout] -> the layer's [Fin * K, Fout] layout (row f * K + k)."""
    order, fin, fout = theta.shape
    return np.transpose(theta, (1, 0, 2)).reshape(fin * order, fout)


def _vertex_major(x):
    """[B, N, F] <-> [N, B, F] in NumPy, for feeding and reading the layers' vertex-major layout."""
    return np.ascontiguousarray(np.transpose(x, (1, 0, 2)))


@pytest.fixture(scope="module")
def small_mesh():
    vertices, triangles = icosphere(2, bump=0.1)  # 162 vertices
    return vertices, triangles, mesh_adjacency(triangles, len(vertices))


@pytest.mark.parametrize("vertex_major", [False, True])
@pytest.mark.parametrize("lmax", ["exact", "fixed"])
# basis first or projection first, in the power basis (K = 6) or the Chebyshev one (K = 8)
@pytest.mark.parametrize("fin,fout,order", [(3, 5, 6), (5, 3, 6), (3, 5, 8), (5, 3, 8)])
def test_chebconv_matches_eigendecomposition_filter(small_mesh, lmax, fin, fout, order, vertex_major):
    _, _, adjacency = small_mesh
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(order, fin, fout))
    x = rng.normal(size=(2, adjacency.shape[0], fin))
    layer = ChebConv(fout, order, chebyshev_operator(adjacency, lmax), vertex_major=vertex_major)
    fed = (_vertex_major(x) if vertex_major else x).astype(np.float32)
    layer.build(fed.shape)
    layer.kernel.assign(_kernel_from_theta(theta).astype(np.float32))
    got = layer(fed).numpy()
    got = _vertex_major(got) if vertex_major else got
    expected = _reference_cheb(_spectral_filters(adjacency, order, lmax), x, theta)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("fin,fout", [(2, 3), (3, 2)])
def test_chebconv_input_gradient_matches_analytic(small_mesh, fin, fout):
    _, _, adjacency = small_mesh
    order = 4
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(order, fin, fout))
    weights = rng.normal(size=(1, adjacency.shape[0], fout))
    layer = ChebConv(fout, order, chebyshev_operator(adjacency, "fixed"))
    x = tf.constant(rng.normal(size=(1, adjacency.shape[0], fin)), tf.float32)
    layer.build(x.shape)
    layer.kernel.assign(_kernel_from_theta(theta).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) * weights)
    got = tape.gradient(loss, x).numpy()
    filters_k = _spectral_filters(adjacency, order, 2.0)
    expected = sum(np.einsum("nm,bmo,fo->bnf", t, weights, theta[k]) for k, t in enumerate(filters_k))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_resample_and_bias_activation_match_numpy():
    rng = np.random.default_rng(2)
    matrix = sp.random(7, 11, density=0.3, format="csr", random_state=3)
    x = rng.normal(size=(3, 11, 4)).astype(np.float32)
    expected = np.einsum("rn,bnf->brf", matrix.toarray(), x)
    np.testing.assert_allclose(MeshResample(matrix)(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    vertex_major = MeshResample(matrix, vertex_major=True)(_vertex_major(x)).numpy()
    np.testing.assert_allclose(vertex_major, _vertex_major(expected), rtol=1e-5, atol=1e-6)
    act = BiasActivation("relu")
    act.build(x.shape)
    act.bias.assign(np.arange(4, dtype=np.float32) - 1.5)
    np.testing.assert_allclose(act(x).numpy(), np.maximum(x + np.arange(4) - 1.5, 0), rtol=1e-6)
    elu = BiasActivation()
    np.testing.assert_allclose(elu(x).numpy(), np.where(x > 0, x, np.expm1(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("vertex_major", [False, True])
def test_residual_block_matches_reference(small_mesh, vertex_major):
    _, _, adjacency = small_mesh
    order, fin, fout = 3, 4, 6
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, adjacency.shape[0], fin)).astype(np.float32)
    block = ChebResBlock(fout, order, chebyshev_operator(adjacency, "exact"), vertex_major=vertex_major)
    block.build(_vertex_major(x).shape if vertex_major else x.shape)
    theta1, theta2 = rng.normal(size=(order, fin, fout)) * 0.3, rng.normal(size=(order, fout, fout)) * 0.3
    skip, b1, b2 = rng.normal(size=(fin, fout)), rng.normal(size=fout), rng.normal(size=fout)
    block.conv1.kernel.assign(_kernel_from_theta(theta1).astype(np.float32))
    block.conv2.kernel.assign(_kernel_from_theta(theta2).astype(np.float32))
    block.shortcut.kernel.assign(skip.astype(np.float32))
    block.act1.bias.assign(b1.astype(np.float32))
    block.bias2.bias.assign(b2.astype(np.float32))
    elu = lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0)))  # noqa: E731
    filters_k = _spectral_filters(adjacency, order, "exact")
    hidden = elu(_reference_cheb(filters_k, x, theta1) + b1)
    expected = elu(_reference_cheb(filters_k, hidden, theta2) + b2 + x @ skip)
    got = _vertex_major(block(_vertex_major(x)).numpy()) if vertex_major else block(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert len(block.trainable_weights) == 5  # two cheb kernels, two biases, the shortcut


def _small_model(vertex_major=False):
    """[B, 64, 3] -> [B, 16, 4]; with vertex_major the graph layers run on [N, B, F] between two swaps."""
    vertices, triangles = bumpy_grid(8)
    adjacency = mesh_adjacency(triangles, len(vertices))
    down = sp.csr_matrix((np.ones(16), (np.arange(16), np.arange(0, 64, 4))), shape=(16, 64))
    inputs = keras.Input((64, 3))
    x = SwapBatchAndVertices()(inputs) if vertex_major else inputs
    x = ChebConv(8, 6, chebyshev_operator(adjacency, "exact"), vertex_major=vertex_major)(x)
    x = BiasActivation()(x)
    x = ChebResBlock(8, 3, chebyshev_operator(adjacency, "fixed"), vertex_major=vertex_major)(x)
    x = ChebResBlock(4, 2, chebyshev_operator(adjacency, "fixed"), activation="relu", vertex_major=vertex_major)(x)
    x = MeshResample(down, vertex_major=vertex_major)(x)
    outputs = SwapBatchAndVertices()(x) if vertex_major else x
    return keras.Model(inputs, outputs)


def test_vertex_major_model_equals_the_batch_major_one():
    batch_major, vertex_major = _small_model(), _small_model(vertex_major=True)
    vertex_major.set_weights(batch_major.get_weights())
    x = np.random.default_rng(7).normal(size=(2, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(vertex_major(x).numpy(), batch_major(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("vertex_major", [False, True])
def test_keras_file_round_trip_and_tf_function(tmp_path, vertex_major):
    model = _small_model(vertex_major)
    x = np.random.default_rng(5).normal(size=(2, 64, 3)).astype(np.float32)
    expected = model(x).numpy()
    assert expected.shape == (2, 16, 4)
    traced = tf.function(lambda t: model(t), input_signature=[tf.TensorSpec([None, 64, 3], tf.float32)])
    # Grappler may regroup the float32 sums of the recursions in a traced graph: rounding-level differences,
    # up to about 1e-6 of the largest output in the power basis (coefficients up to 20 at K = 6)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(traced(x).numpy(), expected, rtol=1e-5, atol=1e-5 * scale)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored(x).numpy(), expected, rtol=1e-6)
    assert restored.count_params() == model.count_params()
    # The sparse matrices travelled in the weights, not as trainable parameters.
    assert all("indices" not in w.path and "values" not in w.path for w in restored.trainable_weights)


def _check_exported(model, x, expected, folder):
    """Exports ``model`` to ``folder`` as a SavedModel, reloads it and checks it maps x to expected."""
    model.export(str(folder), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(folder))
    # rounding-level differences from Grappler's regrouping (see the .keras test above)
    np.testing.assert_allclose(reloaded.serve(tf.constant(x)).numpy(), expected, rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("vertex_major", [False, True])
def test_saved_model_export_round_trip(tmp_path, vertex_major):
    model = _small_model(vertex_major)
    x = np.random.default_rng(6).normal(size=(3, 64, 3)).astype(np.float32)
    expected = model(x).numpy()
    _check_exported(model, x, expected, tmp_path / "saved")


def _upsampling_step(fused: bool, filters: int):
    """[16, B, 5] coarse features and [64, B, 2] skip features -> [64, B, filters]: U, concat, cheb as
    three layers, or as one UpsampleChebConv (private SciPy matrices in both)."""
    vertices, triangles = bumpy_grid(8)
    laplacian = chebyshev_operator(mesh_adjacency(triangles, len(vertices)), "exact")
    rng = np.random.default_rng(12)
    up = sp.random(64, 16, density=0.1, random_state=4, format="csr") + sp.eye(64, 16)
    coarse, skip = keras.Input((2, 5), batch_size=16), keras.Input((2, 2), batch_size=64)
    if fused:
        y = UpsampleChebConv(filters, 6, laplacian, up, name="step")([coarse, skip])
    else:
        x = keras.layers.Concatenate()([MeshResample(up, vertex_major=True)(coarse), skip])
        y = ChebConv(filters, 6, laplacian, vertex_major=True, name="step")(x)
    model = keras.Model([coarse, skip], y)
    model.get_layer("step").kernel.assign(rng.normal(size=(7 * 6, filters)).astype(np.float32))
    return model


@pytest.mark.parametrize("filters", [3, 9])  # projected on the coarse level, or U x formed first
def test_upsample_chebconv_equals_resample_concat_chebconv(tmp_path, filters):
    fused, layered = _upsampling_step(True, filters), _upsampling_step(False, filters)
    rng = np.random.default_rng(13)
    inputs = [rng.normal(size=(16, 2, 5)).astype(np.float32), rng.normal(size=(64, 2, 2)).astype(np.float32)]
    expected = layered(inputs).numpy()
    got = fused(inputs).numpy()
    # U (x phi) and (U x) phi round differently: rounding-level differences, scaled by the power-basis weights
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    path = tmp_path / "step.keras"
    fused.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path)(inputs).numpy(), got)
    with pytest.raises(ValueError, match="vertices"):
        fused.get_layer("step")([inputs[1], inputs[1]])  # the skip in the coarse features' place


def test_shape_errors():
    vertices, triangles = bumpy_grid(4)
    laplacian = chebyshev_operator(mesh_adjacency(triangles, len(vertices)), "fixed")
    with pytest.raises(ValueError, match="vertices"):
        ChebConv(4, 3, laplacian)(np.zeros((1, 17, 2), np.float32))
    with pytest.raises(ValueError):
        ChebConv(4, 3)  # K > 1 needs a Laplacian
    with pytest.raises(ValueError, match="vertices"):
        MeshResample(sp.identity(5, format="csr"))(np.zeros((1, 6, 2), np.float32))
    with pytest.raises(ValueError, match="17 vertices"):  # vertex-major: the vertices come first
        ChebConv(4, 3, laplacian, vertex_major=True)(np.zeros((17, 16, 2), np.float32))
    with pytest.raises(ValueError, match="6 vertices"):
        MeshResample(sp.identity(5, format="csr"), vertex_major=True)(np.zeros((6, 5, 2), np.float32))


def _two_stage_model(vertex_major=False):
    """Two sub-models reading one shared L~ and one shared D (each once per sub-model, and L~ twice in
    the first), the way the texture GCNs share their hierarchy's matrices."""
    vertices, triangles = bumpy_grid(8)  # 64 vertices
    adjacency = mesh_adjacency(triangles, len(vertices))
    laplacian = SparseMatrix(chebyshev_operator(adjacency, "fixed"), name="shared_laplacian")
    down = SparseMatrix(sp.random(16, 64, density=0.1, random_state=4, format="csr"), name="shared_down")

    def stage(name, channels):
        inputs = keras.Input((64, 3))
        x = SwapBatchAndVertices()(inputs) if vertex_major else inputs
        x = ChebConv(channels, 4, laplacian, vertex_major=vertex_major)(x)
        if name == "first":
            x = ChebResBlock(channels, 3, laplacian, vertex_major=vertex_major)(x)
        x = MeshResample(down, vertex_major=vertex_major)(x)
        return keras.Model(inputs, SwapBatchAndVertices()(x) if vertex_major else x, name=name)

    inputs = keras.Input((64, 3))
    outputs = keras.layers.Concatenate()([stage("first", 5)(inputs), stage("second", 2)(inputs)])
    return keras.Model(inputs, outputs), (laplacian, down)


def _matrix_variables(model):
    return [w for w in model.weights if w.path.endswith(("_indices", "_values"))]


@pytest.mark.parametrize("vertex_major", [False, True])
def test_shared_matrices_are_stored_once_and_load_shared(tmp_path, vertex_major):
    model, shared = _two_stage_model(vertex_major)
    assert len(_matrix_variables(model)) == 4  # two matrices, (indices, values) each: no per-layer copies
    x = np.random.default_rng(8).normal(size=(2, 64, 3)).astype(np.float32)
    expected = model(x).numpy()
    path = tmp_path / "shared.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored(x).numpy(), expected, rtol=1e-6, atol=1e-7)
    assert len(_matrix_variables(restored)) == 4
    readers = [layer for stage in ("first", "second") for layer in restored.get_layer(stage).layers
               if isinstance(layer, (ChebConv, MeshResample, ChebResBlock))]
    laplacians = {id(layer.shared_laplacian) for layer in readers if isinstance(layer, ChebConv)}
    laplacians |= {id(layer.conv1.shared_laplacian) for layer in readers if isinstance(layer, ChebResBlock)}
    laplacians |= {id(layer.conv2.shared_laplacian) for layer in readers if isinstance(layer, ChebResBlock)}
    downs = {id(layer.shared_matrix) for layer in readers if isinstance(layer, MeshResample)}
    assert len(laplacians) == 1 and len(downs) == 1
    # the loaded matrices are the saved ones, not placeholders
    for original, name in zip(shared, ("shared_laplacian", "shared_down")):
        match = [w for w in _matrix_variables(restored) if name in w.path and w.path.endswith("_values")]
        np.testing.assert_array_equal(match[0].numpy(), original.operand.values.numpy())


def test_shared_matrices_are_captured_once_by_a_saved_model(tmp_path):
    model, _ = _two_stage_model()
    x = np.random.default_rng(9).normal(size=(2, 64, 3)).astype(np.float32)
    expected = model(x).numpy()
    _check_exported(model, x, expected, tmp_path / "saved")
    reader = tf.train.load_checkpoint(str(tmp_path / "saved" / "variables" / "variables"))
    # Keras's export lists every variable again under _all_variables: count the "variables/" entries
    stored = {name: dtype for name, dtype in reader.get_variable_to_dtype_map().items()
              if name.startswith("variables/")}
    assert len(stored) == len(model.weights)  # every variable once, the two matrices included
    assert sum(dtype == tf.int64 for dtype in stored.values()) == 2  # one index table per matrix


def test_a_shared_matrix_is_not_a_layer_to_call():
    with pytest.raises(TypeError, match="not called"):
        SparseMatrix(sp.identity(3, format="csr"))(np.zeros((1, 3, 1), np.float32))
