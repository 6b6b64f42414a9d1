"""Texture GCNs: the authors' layer structure (counts at BFM sizes, NumPy wiring), on the demo
model's hierarchy with narrow widths."""

import dataclasses

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from face_gcn.graph.hierarchy import load_or_build_hierarchy
from face_gcn.morphable import configured
from face_gcn.nets import gcn

SMALL = gcn.GCNConfig(embedding_size=8, decoder_widths=(4, 3, 3, 3, 3), refiner_widths=(3, 4, 5, 6),
                      refiner_latent=8, K=3)
SMALL_RESNET = gcn.GCNConfig(embedding_size=8, variant="resnet", decoder_widths=(4, 3, 3, 3),
                             refiner_widths=(3, 4, 4, 3), K=3)


@pytest.fixture(scope="module")
def hierarchy():
    model = configured.load_demo()
    return load_or_build_hierarchy(model.mean_shape, model.triangles)


class _LevelSizes:
    """Just the shapes of a hierarchy (identity-like operators): enough to build the networks at
    any size without decimating a mesh."""

    def __init__(self, sizes):
        self.num_vertices = tuple(sizes)
        self.num_levels = len(sizes)
        self.down = [sp.eye(sizes[k + 1], sizes[k], format="csr") for k in range(len(sizes) - 1)]
        self.up = [sp.eye(sizes[k], sizes[k + 1], format="csr") for k in range(len(sizes) - 1)]

    def chebyshev(self, level, lmax="fixed"):
        del lmax
        return sp.eye(self.num_vertices[level], format="csr")


BFM_SIZES = (35709, 8928, 2232, 558, 140)


def _cheb(f_in, f_out, K=6, bias=True):
    """Trainable parameters of the authors' chebyshev5 [f_in * K, f_out] (+ the brelu bias)."""
    return f_in * K * f_out + (f_out if bias else 0)


def _fc(n_in, n_out):
    return n_in * n_out + n_out


def _res(f_in, f_out, K=6):
    """cheb_res_block: two convs with biases, a K = 1 shortcut when the widths differ."""
    return _cheb(f_in, f_out, K) + _cheb(f_out, f_out, K) + (f_in * f_out if f_in != f_out else 0)


def test_parameter_counts_at_bfm_sizes_are_the_authors():
    """model_normal.py's layer list at 35709/8928/2232/558/140 vertices, E = 3840."""
    v4, embedding = BFM_SIZES[-1], 3840
    decoder = (_fc(embedding, v4 * 32) + _cheb(32, 16) + 3 * _cheb(16, 16) + _cheb(16, 3))
    refiner = (_cheb(7, 16, bias=False) + _cheb(16, 16) + _cheb(16, 32) + _cheb(32, 64) + _cheb(64, 128)
               + _fc(v4 * 128, 512) + _fc(512, v4 * 128)
               + _cheb(128 + 64, 128) + _cheb(128 + 32, 64) + _cheb(64, 32) + _cheb(32, 16) + _cheb(16, 3))
    combiner = _cheb(6, 3, bias=False)
    assert (decoder, refiner, combiner) == (17_215_715, 18_660_259, 108)  # DESIGN section 7
    counts = gcn.count_parameters(gcn.build_texture_gcn(_LevelSizes(BFM_SIZES)))
    assert counts == {"texture_gcn": decoder + refiner + combiner, "decoder": decoder, "refiner": refiner,
                      "combiner": combiner}


def test_parameter_counts_with_feature_input_to_the_combiner():
    """combiner_input="features" (ours): no cheb(16->3) at the Decoder's and Refiner's ends; the
    Combiner's bias-free conv reads their 16 + 16 channels."""
    cheb_to_colors = _cheb(16, 3)
    counts = gcn.count_parameters(gcn.build_texture_gcn(_LevelSizes(BFM_SIZES),
                                                        gcn.GCNConfig(combiner_input="features")))
    assert (counts["decoder"], counts["refiner"], counts["combiner"]) == \
        (17_215_715 - cheb_to_colors, 18_660_259 - cheb_to_colors, _cheb(32, 3, bias=False))


def test_feature_input_to_the_combiner_wiring(hierarchy):
    """K = 1 and identity Laplacians aside, the Combiner is tanh(concat(decoder, refiner) @ W)."""
    config = dataclasses.replace(SMALL, combiner_input="features", K=1)
    model = gcn.build_texture_gcn(hierarchy, config)
    embedding, features = _inputs(hierarchy)
    decoded = model.get_layer("decoder")(embedding).numpy()
    refined = model.get_layer("refiner")(features).numpy()
    assert decoded.shape[-1] == config.decoder_widths[-1] and refined.shape[-1] == config.refiner_widths[0]
    kernel = model.get_layer("combiner").get_layer("cheb").trainable_weights[0].numpy()
    expected = np.tanh(np.concatenate([decoded, refined], -1).astype(np.float64) @ kernel.astype(np.float64))
    np.testing.assert_allclose(model([embedding, features]).numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError):
        gcn.GCNConfig(variant="resnet", combiner_input="features")


def test_parameter_counts_of_the_resnet_variant():
    """model_resnet.py: Decoder F = 32,16,16,16 then a block to 3; Refiner blocks 16,32,32,16,3."""
    v4, embedding = BFM_SIZES[-1], 3840
    decoder = _fc(embedding, v4 * 32) + _res(32, 16) + _res(16, 16) + _res(16, 16) + _res(16, 3)
    refiner = _res(7, 16) + _res(16, 32) + _res(32, 32) + _res(32, 16) + _res(16, 3)
    counts = gcn.count_parameters(gcn.build_texture_gcn(_LevelSizes(BFM_SIZES), gcn.GCNConfig(variant="resnet")))
    assert (counts["decoder"], counts["refiner"], counts["combiner"]) == (decoder, refiner, _cheb(6, 3, bias=False))


def _inputs(hierarchy, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(batch, SMALL.embedding_size)).astype(np.float32)
    vis = (rng.random((batch, hierarchy.num_vertices[0])) > 0.3).astype(np.float32)
    features = gcn.refiner_inputs(rng.random((batch, hierarchy.num_vertices[0], 3)),
                                  rng.random((batch, hierarchy.num_vertices[0], 3)), vis)
    return embedding, features.numpy()


@pytest.mark.parametrize("config", [SMALL, SMALL_RESNET], ids=["normal", "resnet"])
def test_shapes_and_range(hierarchy, config):
    embedding, features = _inputs(hierarchy)
    model = gcn.build_texture_gcn(hierarchy, config)
    colors = model([embedding, features]).numpy()
    assert colors.shape == (2, hierarchy.num_vertices[0], 3)
    assert np.all(np.abs(colors) <= 1.0) and np.std(colors) > 0
    for part in ("decoder", "refiner"):  # each ends in a 3-channel colour map
        assert model.get_layer(part).output.shape[1:] == (hierarchy.num_vertices[0], 3)
    # the "zeros" Combiner (ours) starts at 0 (mid-grey) everywhere, whatever its inputs
    zero_start = dataclasses.replace(config, combiner_init="zeros")
    assert np.all(gcn.build_texture_gcn(hierarchy, zero_start)([embedding, features]).numpy() == 0.0)


def test_config_defaults_and_validation():
    config = gcn.GCNConfig()
    assert (config.variant, config.lmax, config.combiner_init, config.refiner_skip_levels) == \
        ("normal", "fixed", "he_normal", 2)
    assert config.decoder_widths == (32, 16, 16, 16, 16) and config.refiner_widths == (16, 32, 64, 128)
    assert gcn.GCNConfig(variant="resnet").refiner_widths == (16, 32, 32, 16)
    for bad in ({"variant": "unet"}, {"lmax": 2.0}, {"decoder_widths": (4, 0)}, {"combiner_input": "both"},
                {"variant": "resnet", "refiner_widths": (4, 4)}):
        with pytest.raises(ValueError):
            gcn.GCNConfig(**bad)


def test_refiner_inputs_channels():
    albedo = np.full((1, 2, 3), 0.75, np.float32)
    colors = np.full((1, 2, 3), 0.25, np.float32)
    got = gcn.refiner_inputs(albedo, colors, np.array([[1.0, 0.0]], np.float32)).numpy()
    np.testing.assert_allclose(got[0, 0], [0.5] * 3 + [-0.5] * 3 + [1.0])
    np.testing.assert_allclose(got[0, 1], [0.5] * 3 + [0.0] * 3 + [0.0])


@pytest.mark.parametrize("skip_levels", [0, 1, 2, 4])
def test_refiner_skip_wiring(hierarchy, skip_levels):
    """With the bottleneck zeroed, information reaches the output only through the skips."""
    refiner = gcn.build_refiner(hierarchy, dataclasses.replace(SMALL, refiner_skip_levels=skip_levels))
    for name in ("latent", "unlatent"):
        for weight in refiner.get_layer(name).trainable_weights:
            weight.assign(tf.zeros_like(weight))
    _, features = _inputs(hierarchy, batch=1)
    a, b = refiner(features).numpy(), refiner(-features).numpy()
    if skip_levels == 0:
        np.testing.assert_array_equal(a, b)
    else:
        assert np.abs(a - b).max() > 1e-4
    with_skip = [level for level in (3, 2, 1, 0)
                 if len(refiner.get_layer(f"dec{level}_cheb")._inbound_nodes[0].input_tensors) == 2]
    assert with_skip == [3, 2, 1, 0][:skip_levels]


def test_lmax_modes(hierarchy):
    """"fixed" stores L - I (the authors' lmax = 2), "exact" 2 L / lmax - I."""
    laplacian = hierarchy.laplacian(0).toarray()
    for mode, expected in (("fixed", laplacian - np.eye(len(laplacian))),
                           ("exact", 2.0 * laplacian / hierarchy.lmax[0] - np.eye(len(laplacian)))):
        refiner = gcn.build_refiner(hierarchy, dataclasses.replace(SMALL, lmax=mode))
        layer = refiner.get_layer("input_cheb")
        indices, values = layer.operand.indices.numpy(), layer.operand.values.numpy()
        stored = np.zeros_like(expected)
        stored[indices[:, 0], indices[:, 1]] = values
        np.testing.assert_allclose(stored, expected, atol=1e-6)


def test_keras_round_trip(hierarchy, tmp_path):
    model = gcn.build_texture_gcn(hierarchy, SMALL)
    embedding, features = _inputs(hierarchy, seed=5)
    before = model([embedding, features]).numpy()
    path = str(tmp_path / "texture_gcn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded([embedding, features]).numpy(), before)
    assert _matrix_count(loaded) == _matrix_count(model)


def _matrix_count(model):
    """How many sparse matrices the model holds (each is an indices and a values variable)."""
    return sum(w.path.endswith("_values") for w in model.weights)


def test_each_matrix_of_the_hierarchy_is_held_once(hierarchy):
    model = gcn.build_texture_gcn(hierarchy, SMALL)
    levels = hierarchy.num_levels
    assert _matrix_count(model) == levels + 2 * (levels - 1)  # L~ of every level, every U and D
    readers = {name: model.get_layer(name) for name in ("decoder", "refiner", "combiner")}
    level0 = {id(readers["decoder"].get_layer("output_cheb").shared_laplacian),
              id(readers["refiner"].get_layer("input_cheb").shared_laplacian),
              id(readers["combiner"].get_layer("cheb").shared_laplacian)}
    assert len(level0) == 1
    assert readers["decoder"].get_layer("up0").shared_matrix is readers["refiner"].get_layer("dec0_cheb").shared_upsample


@pytest.mark.parametrize("config", [SMALL, SMALL_RESNET], ids=["normal", "resnet"])
def test_gradients_reach_every_trainable_variable(hierarchy, config):
    model = gcn.build_texture_gcn(hierarchy, config)
    rng = np.random.default_rng(6)
    for variable in model.trainable_variables:  # non-zero biases: no ReLU or ELU path is dead
        variable.assign(rng.normal(scale=0.3, size=variable.shape).astype(np.float32))
    embedding, features = _inputs(hierarchy, seed=6)
    target = rng.uniform(-1, 1, (2, hierarchy.num_vertices[0], 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model([embedding, features]) - target))
    grads = tape.gradient(loss, model.trainable_variables)
    assert len(grads) == len(model.trainable_variables) > 20
    for variable, grad in zip(model.trainable_variables, grads):
        assert grad is not None, variable.path
        assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0, variable.path
    assert all(not v.trainable for v in model.non_trainable_variables)  # the sparse matrices


def test_fully_connected_l2_is_the_authors_weight_decay(hierarchy):
    model = gcn.build_texture_gcn(hierarchy, SMALL)
    dense = [w.numpy().astype(np.float64) for name in ("fc",) for w in
             model.get_layer("decoder").get_layer(name).trainable_weights]
    dense += [w.numpy().astype(np.float64) for name in ("latent", "unlatent") for w in
              model.get_layer("refiner").get_layer(name).trainable_weights]
    assert len(dense) == 6  # three FC layers, weights and biases
    for w in dense:
        assert np.any(w) or w.ndim == 1
    expected = sum(np.sum(w ** 2) / 2.0 for w in dense)
    np.testing.assert_allclose(float(gcn.fully_connected_l2(model)), expected, rtol=1e-5)


# --- K = 1: every Chebyshev conv is a per-vertex matrix, so whole networks fit in NumPy ---

def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _relu(x):
    return np.maximum(x, 0.0)


def _randomise(model, seed, scale=0.4):
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:  # non-zero biases exercise every bias path
        variable.assign(rng.normal(scale=scale, size=variable.shape).astype(np.float32))


def _w(model, name, attribute="kernel"):
    return getattr(model.get_layer(name), attribute).numpy().astype(np.float64)


def _dense(model, name, x):
    return _relu(x @ _w(model, name) + _w(model, name, "bias"))


def _cheb_elu(model, name, x):
    return _elu(x @ _w(model, f"{name}_cheb") + _w(model, f"{name}_act", "bias"))


def _res_block(block, x):
    hidden = _elu(x @ block.conv1.kernel.numpy() + block.act1.bias.numpy())
    skip = x @ block.shortcut.kernel.numpy() if block.shortcut is not None else x
    return _elu(hidden @ block.conv2.kernel.numpy() + block.bias2.bias.numpy() + skip)


def _resample(matrix, x):
    return np.einsum("nm,bmf->bnf", matrix.toarray(), x)


@pytest.mark.parametrize("variant", ["normal", "resnet"])
def test_decoder_matches_numpy_for_k1(hierarchy, variant):
    config = dataclasses.replace(SMALL if variant == "normal" else SMALL_RESNET, K=1)
    decoder = gcn.build_decoder(hierarchy, config)
    _randomise(decoder, 8)
    embedding = np.random.default_rng(8).normal(size=(2, 8))
    x = _dense(decoder, "fc", embedding).reshape(2, hierarchy.num_vertices[4], 4)
    for level in (3, 2, 1, 0):
        x = _resample(hierarchy.up[level], x)
        x = _cheb_elu(decoder, f"level{level}", x) if variant == "normal" else \
            _res_block(decoder.get_layer(f"res{level}"), x)
    if variant == "normal":
        x = _cheb_elu(decoder, "output", x)
    assert x.shape[-1] == 3
    np.testing.assert_allclose(decoder(embedding.astype(np.float32)).numpy(), x, rtol=1e-4, atol=1e-4)


def test_refiner_matches_numpy_for_k1(hierarchy):
    """Input conv, encoder at levels 1..4, ReLU bottleneck, decoder with the skips at levels 3, 2."""
    refiner = gcn.build_refiner(hierarchy, dataclasses.replace(SMALL, K=1))
    _randomise(refiner, 9, scale=0.3)
    _, features = _inputs(hierarchy, batch=2, seed=10)
    x = features.astype(np.float64) @ _w(refiner, "input_cheb")  # no bias, no activation
    encoded = {0: x}
    for level in (1, 2, 3, 4):
        x = _cheb_elu(refiner, f"enc{level}", _resample(hierarchy.down[level - 1], x))
        encoded[level] = x
    x = _dense(refiner, "unlatent", _dense(refiner, "latent", x.reshape(2, -1)))
    x = x.reshape(2, hierarchy.num_vertices[4], 6)
    for level in (3, 2, 1, 0):
        x = _resample(hierarchy.up[level], x)
        if level >= 2:
            x = np.concatenate([x, encoded[level]], axis=-1)
        x = _cheb_elu(refiner, f"dec{level}", x)
    x = _cheb_elu(refiner, "output", x)
    np.testing.assert_allclose(refiner(features).numpy(), x, rtol=1e-4, atol=1e-4)


def test_resnet_refiner_matches_numpy_for_k1(hierarchy):
    """Blocks at level 0, down, two blocks at level 1, up, two blocks at level 0."""
    refiner = gcn.build_refiner(hierarchy, dataclasses.replace(SMALL_RESNET, K=1))
    _randomise(refiner, 11, scale=0.3)
    _, features = _inputs(hierarchy, batch=2, seed=12)
    block = lambda name, x: _res_block(refiner.get_layer(name), x)
    x = block("res0", features.astype(np.float64))
    x = block("res2", block("res1", _resample(hierarchy.down[0], x)))
    x = block("res4", block("res3", _resample(hierarchy.up[0], x)))
    np.testing.assert_allclose(refiner(features).numpy(), x, rtol=1e-4, atol=1e-4)


def test_combiner_matches_numpy_for_k1(hierarchy):
    """K = 1: colours = tanh([d, r] W) per vertex (no bias)."""
    combiner = gcn.build_combiner(hierarchy.num_vertices[0], 3, 3, None, dataclasses.replace(SMALL, K=1))
    assert len(combiner.trainable_weights) == 1
    rng = np.random.default_rng(3)
    d = rng.normal(size=(1, hierarchy.num_vertices[0], 3)).astype(np.float32)
    r = rng.normal(size=(1, hierarchy.num_vertices[0], 3)).astype(np.float32)
    kernel = rng.normal(size=(6, 3)).astype(np.float32)
    combiner.get_layer("cheb").kernel.assign(kernel)
    expected = np.tanh(np.concatenate([d, r], -1).astype(np.float64) @ kernel)
    np.testing.assert_allclose(combiner([d, r]).numpy(), expected, atol=1e-5)


def test_too_shallow_hierarchy(hierarchy):
    with pytest.raises(ValueError, match="levels"):
        gcn.build_decoder(hierarchy, gcn.GCNConfig(decoder_widths=(4,) * 6))
    with pytest.raises(ValueError, match="refiner_skip_levels"):
        gcn.build_refiner(hierarchy, dataclasses.replace(SMALL, refiner_skip_levels=5))
