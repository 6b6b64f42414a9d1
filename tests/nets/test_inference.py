"""fold_batch_norms: the folded network computes Keras's own inference-mode BatchNormalization, folds
exactly the pairs it may, and leaves the original model as it was."""

import keras
import numpy as np

from face_gcn.nets import inference


def randomise_statistics(model, seed=0):
    """Batch norms with non-trivial statistics and affine terms (fresh ones are the identity)."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, channels))
            layer.moving_variance.assign(rng.uniform(0.3, 3.0, channels))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, channels))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.3, channels))


def build_model():
    """Foldable pairs (with and without conv bias, gamma and beta; inside a nested model) next to pairs
    that must stay: a conv whose output also feeds an Add, a norm after a Dense, a norm over rows."""
    inner_input = keras.Input((8, 8, 6))
    inner = keras.layers.Conv2D(5, 3, padding="same", name="inner_conv")(inner_input)
    inner = keras.layers.BatchNormalization(name="inner_norm")(inner)
    inner_model = keras.Model(inner_input, keras.layers.ReLU(name="inner_relu")(inner), name="inner")

    images = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, name="conv_a")(images)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name="norm_a")(x)
    x = keras.layers.ReLU(name="relu_a")(x)
    x = inner_model(x)
    shared = keras.layers.Conv2D(5, 1, name="conv_shared")(x)  # feeds the norm and the Add: not folded
    x = keras.layers.Add(name="add")([keras.layers.BatchNormalization(name="norm_shared")(shared), shared])
    x = keras.layers.Conv2D(4, 1, name="conv_plain")(x)
    x = keras.layers.BatchNormalization(scale=False, center=False, name="norm_plain")(x)
    x = keras.layers.Lambda(lambda t, scale: t * scale, arguments={"scale": 0.5}, name="half")(x)
    rows = keras.layers.BatchNormalization(axis=1, name="norm_rows")(keras.layers.Conv2D(4, 1, name="conv_rows")(x))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(rows)
    dense = keras.layers.BatchNormalization(name="norm_dense")(keras.layers.Dense(3, name="dense")(pooled))
    return keras.Model(images, {"map": x, "vector": dense}, name="net")


def test_folded_network_equals_keras_inference_and_folds_only_safe_pairs():
    model = build_model()
    randomise_statistics(model)
    before = [w.copy() for w in model.get_weights()]
    folded = inference.fold_batch_norms(model)
    images = np.random.default_rng(1).normal(0, 1, (3, 8, 8, 3)).astype(np.float32)
    expected, got = model(images, training=False), folded(images, training=False)
    for key in ("map", "vector"):
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), rtol=2e-5, atol=2e-5, err_msg=key)
    names = lambda m: {layer.name for layer in m._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)}
    assert names(folded) == {"norm_shared", "norm_rows", "norm_dense"}  # a shared conv, the wrong axis, a Dense
    assert names(model) == {"norm_a", "inner_norm", "norm_shared", "norm_plain", "norm_rows", "norm_dense"}
    assert all(layer.use_bias for layer in folded._flatten_layers() if layer.name in ("conv_a", "conv_plain"))
    assert folded.name == model.name and not folded.trainable
    for old, new in zip(before, model.get_weights()):  # the original is untouched
        np.testing.assert_array_equal(old, new)
    # weights are copied, not shared: changing the folded model leaves the original alone
    folded.get_layer("dense").kernel.assign(np.zeros((4, 3), np.float32))
    assert np.abs(model.get_layer("dense").kernel.numpy()).max() > 0


def test_folded_weights_match_the_float64_formula():
    rng = np.random.default_rng(2)
    kernel, bias = rng.normal(0, 1, (1, 1, 4, 3)), rng.normal(0, 1, 3)
    gamma, beta, mean, variance = rng.uniform(0.5, 2, 3), rng.normal(0, 1, 3), rng.normal(0, 1, 3), rng.uniform(0.1, 2, 3)
    pixels = rng.normal(0, 1, (10, 4))
    normalised = ((pixels @ kernel[0, 0] + bias) - mean) / np.sqrt(variance + 1e-3) * gamma + beta
    folded_kernel, folded_bias = inference.folded_conv_weights(kernel, bias, gamma, beta, mean, variance, 1e-3)
    assert folded_kernel.dtype == folded_bias.dtype == np.float32
    np.testing.assert_allclose(pixels @ folded_kernel[0, 0].astype(np.float64) + folded_bias, normalised, rtol=1e-6,
                               atol=1e-6)
    # no bias, gamma or beta: 0, 1 and 0
    plain_kernel, plain_bias = inference.folded_conv_weights(kernel, None, None, None, mean, variance, 1e-3)
    np.testing.assert_allclose(pixels @ plain_kernel[0, 0].astype(np.float64) + plain_bias,
                               (pixels @ kernel[0, 0] - mean) / np.sqrt(variance + 1e-3), rtol=1e-6, atol=1e-6)


def test_the_regressor_folds_and_keeps_its_outputs():
    from face_gcn.nets import regressor as regressor_lib
    regressor = regressor_lib.build_regressor((64, 64, 3), backbone="compact")
    randomise_statistics(regressor, seed=3)
    folded = inference.fold_batch_norms(regressor)
    images = np.random.default_rng(4).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    expected, got = regressor(images, training=False), folded(images, training=False)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded._flatten_layers())
    for key in expected:
        scale = float(np.abs(expected[key].numpy()).max()) + 1e-6
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), atol=1e-5 * scale, err_msg=key)


def test_pairs_are_found_by_layer_not_by_name():
    """A nested model may reuse an outer layer's name: only the conv that feeds a norm is folded."""
    inner_input = keras.Input((8, 8, 3))
    inner = keras.Model(inner_input, keras.layers.Conv2D(4, 1, name="conv")(inner_input), name="inner")
    images = keras.Input((8, 8, 3))
    outer = keras.layers.BatchNormalization(name="norm")(keras.layers.Conv2D(4, 3, padding="same", name="conv")(images))
    model = keras.Model(images, keras.layers.Concatenate()([inner(images), outer]), name="net")
    randomise_statistics(model, seed=5)
    folded = inference.fold_batch_norms(model)
    images_in = np.random.default_rng(6).normal(0, 1, (2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(folded(images_in).numpy(), model(images_in, training=False).numpy(), rtol=2e-5,
                               atol=2e-5)
    assert folded.get_layer("inner").get_layer("conv").kernel.shape == (1, 1, 3, 4)
