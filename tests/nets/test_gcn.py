"""Texture GCNs on the demo model's hierarchy with narrow widths."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.graph.hierarchy import load_or_build_hierarchy
from face_gcn.morphable import configured
from face_gcn.nets import gcn

SMALL = gcn.GCNConfig(embedding_size=8, decoder_widths=(4, 3, 3, 3, 3), refiner_widths=(3, 4, 5, 6),
                      refiner_latent=8, K=3,
                      combiner_init="glorot_normal")  # random start: outputs and gradients are non-trivial


@pytest.fixture(scope="module")
def hierarchy():
    model = configured.load_demo()
    return load_or_build_hierarchy(model.mean_shape, model.triangles)


def _inputs(hierarchy, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(batch, SMALL.embedding_size)).astype(np.float32)
    vis = (rng.random((batch, hierarchy.num_vertices[0])) > 0.3).astype(np.float32)
    features = gcn.refiner_inputs(rng.random((batch, hierarchy.num_vertices[0], 3)),
                                  rng.random((batch, hierarchy.num_vertices[0], 3)), vis)
    return embedding, features.numpy()


def test_shapes_and_range(hierarchy):
    embedding, features = _inputs(hierarchy)
    # the default Combiner starts at 0 (mid-grey) everywhere, whatever its inputs
    zero_start = dataclasses.replace(SMALL, combiner_init=gcn.GCNConfig().combiner_init)
    assert np.all(gcn.build_texture_gcn(hierarchy, zero_start)([embedding, features]).numpy() == 0.0)
    model = gcn.build_texture_gcn(hierarchy, SMALL)
    colors = model([embedding, features]).numpy()
    assert colors.shape == (2, hierarchy.num_vertices[0], 3)
    assert np.all(np.abs(colors) <= 1.0) and np.std(colors) > 0
    decoder, refiner = model.get_layer("decoder"), model.get_layer("refiner")
    assert decoder.output.shape[1:] == (hierarchy.num_vertices[0], 3)
    assert refiner.output.shape[1:] == (hierarchy.num_vertices[0], 3)
    # The decoder's Dense fills the coarsest level.
    assert decoder.get_layer("fc").kernel.shape == (8, hierarchy.num_vertices[4] * 4)


def test_refiner_inputs_channels():
    albedo = np.full((1, 2, 3), 0.75, np.float32)
    colors = np.full((1, 2, 3), 0.25, np.float32)
    got = gcn.refiner_inputs(albedo, colors, np.array([[1.0, 0.0]], np.float32)).numpy()
    np.testing.assert_allclose(got[0, 0], [0.5] * 3 + [-0.5] * 3 + [1.0])
    np.testing.assert_allclose(got[0, 1], [0.5] * 3 + [0.0] * 3 + [0.0])


def _zero_bottleneck(refiner):
    for name in ("latent", "unlatent"):
        layer = refiner.get_layer(name)
        layer.kernel.assign(tf.zeros_like(layer.kernel))
        layer.bias.assign(tf.zeros_like(layer.bias))


@pytest.mark.parametrize("skip_levels", [0, 1, 2])
def test_refiner_skip_wiring(hierarchy, skip_levels):
    """With the bottleneck zeroed, information reaches the output only through the skips."""
    config = gcn.GCNConfig(**{**SMALL.__dict__, "refiner_skip_levels": skip_levels})
    refiner = gcn.build_refiner(hierarchy, config)
    _zero_bottleneck(refiner)
    _, features = _inputs(hierarchy, batch=1)
    changed = features.copy()
    changed[0] = -features[0]
    a, b = refiner(features).numpy(), refiner(changed).numpy()
    if skip_levels == 0:
        np.testing.assert_array_equal(a, b)
    else:
        assert np.abs(a - b).max() > 1e-3
    concats = [layer.name for layer in refiner.layers if isinstance(layer, keras.layers.Concatenate)]
    assert concats == [f"skip{level}" for level in (3, 2)[:skip_levels]]


def test_combiner_matches_numpy_for_k1(hierarchy):
    """K = 1: colours = tanh([d, r] W + b) per vertex."""
    config = gcn.GCNConfig(**{**SMALL.__dict__, "K": 1})
    combiner = gcn.build_combiner(hierarchy.num_vertices[0], 2, 3, None, config)
    rng = np.random.default_rng(3)
    d = rng.normal(size=(1, hierarchy.num_vertices[0], 2)).astype(np.float32)
    r = rng.normal(size=(1, hierarchy.num_vertices[0], 3)).astype(np.float32)
    kernel = rng.normal(size=combiner.get_layer("cheb").kernel.shape).astype(np.float32)
    combiner.get_layer("cheb").kernel.assign(kernel)
    bias = rng.normal(size=3).astype(np.float32)
    combiner.get_layer("tanh").bias.assign(bias)
    expected = np.tanh(np.concatenate([d, r], -1).astype(np.float64) @ kernel + bias)
    np.testing.assert_allclose(combiner([d, r]).numpy(), expected, atol=1e-5)


def test_decoder_plain_variant_and_too_shallow_hierarchy(hierarchy):
    config = gcn.GCNConfig(**{**SMALL.__dict__, "residual": False})
    decoder = gcn.build_decoder(hierarchy, config)
    assert decoder(np.ones((1, 8), np.float32)).shape == (1, hierarchy.num_vertices[0], 3)
    with pytest.raises(ValueError, match="levels"):
        gcn.build_decoder(hierarchy, gcn.GCNConfig(decoder_widths=(4,) * 6))


def test_keras_round_trip(hierarchy, tmp_path):
    model = gcn.build_texture_gcn(hierarchy, SMALL)
    embedding, features = _inputs(hierarchy, seed=5)
    before = model([embedding, features]).numpy()
    path = str(tmp_path / "texture_gcn.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded([embedding, features]).numpy(), before)


def test_gradients_reach_every_trainable_variable(hierarchy):
    model = gcn.build_texture_gcn(hierarchy, SMALL)
    embedding, features = _inputs(hierarchy, seed=6)
    target = np.random.default_rng(7).uniform(-1, 1, (2, hierarchy.num_vertices[0], 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model([embedding, features]) - target))
    grads = tape.gradient(loss, model.trainable_variables)
    assert len(grads) == len(model.trainable_variables) > 20
    for variable, grad in zip(model.trainable_variables, grads):
        assert grad is not None, variable.path
        assert np.all(np.isfinite(grad.numpy())) and np.abs(grad.numpy()).max() > 0, variable.path
    # The sparse matrices are weights but never trainable.
    assert all(not v.trainable for v in model.non_trainable_variables)


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def _weights(model, name, attribute):
    return getattr(model.get_layer(name), attribute).numpy().astype(np.float64)


K1 = gcn.GCNConfig(**{**SMALL.__dict__, "K": 1})


@pytest.mark.parametrize("residual", [False, True])
def test_decoder_matches_numpy_wiring_for_k1(hierarchy, residual):
    """With K = 1 every Chebyshev conv is a per-vertex matrix: the whole decoder in NumPy."""
    config = gcn.GCNConfig(**{**K1.__dict__, "residual": residual})
    decoder = gcn.build_decoder(hierarchy, config)
    rng = np.random.default_rng(8)
    for variable in decoder.trainable_variables:  # non-zero biases exercise every bias path
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype(np.float32))
    embedding = rng.normal(size=(2, 8))
    x = embedding @ _weights(decoder, "fc", "kernel") + _weights(decoder, "fc", "bias")
    x = x.reshape(2, hierarchy.num_vertices[4], 4)
    for level in (3, 2, 1, 0):
        x = np.einsum("nm,bmf->bnf", hierarchy.up[level].toarray(), x)
        if residual:
            block = decoder.get_layer(f"res{level}")
            w1, w2 = block.conv1.kernel.numpy(), block.conv2.kernel.numpy()
            b1, b2 = block.act1.bias.numpy(), block.bias2.bias.numpy()
            hidden = _elu(x @ w1 + b1)
            skip = x @ block.shortcut.kernel.numpy() if block.shortcut is not None else x
            x = _elu(hidden @ w2 + b2 + skip)
        else:
            x = _elu(x @ _weights(decoder, f"cheb{level}", "kernel") + _weights(decoder, f"act{level}", "bias"))
    got = decoder(embedding.astype(np.float32)).numpy()
    np.testing.assert_allclose(got, x, rtol=1e-4, atol=1e-4)


def test_refiner_matches_numpy_wiring_for_k1(hierarchy):
    """Encoder, bottleneck, decoder and the two skip concatenations, in NumPy (K = 1)."""
    refiner = gcn.build_refiner(hierarchy, K1)
    rng = np.random.default_rng(9)
    for variable in refiner.trainable_variables:
        variable.assign(rng.normal(scale=0.3, size=variable.shape).astype(np.float32))
    _, features = _inputs(hierarchy, batch=2, seed=10)
    x, skips = features.astype(np.float64), {}
    for level in range(4):
        x = _elu(x @ _weights(refiner, f"enc_cheb{level}", "kernel") + _weights(refiner, f"enc_act{level}", "bias"))
        skips[level] = x
        x = np.einsum("nm,bmf->bnf", hierarchy.down[level].toarray(), x)
    x = x.reshape(2, -1) @ _weights(refiner, "latent", "kernel") + _weights(refiner, "latent", "bias")
    x = x @ _weights(refiner, "unlatent", "kernel") + _weights(refiner, "unlatent", "bias")
    x = _elu(x.reshape(2, hierarchy.num_vertices[4], 6))
    for level in (3, 2, 1, 0):
        x = np.einsum("nm,bmf->bnf", hierarchy.up[level].toarray(), x)
        if level >= 2:
            x = np.concatenate([x, skips[level]], axis=-1)
        x = _elu(x @ _weights(refiner, f"dec_cheb{level}", "kernel") + _weights(refiner, f"dec_act{level}", "bias"))
    np.testing.assert_allclose(refiner(features).numpy(), x, rtol=1e-4, atol=1e-4)
