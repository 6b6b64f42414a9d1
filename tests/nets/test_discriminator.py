"""The critic: layer order, sizes, parameter count and normalisation options."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.nets.discriminator import build_discriminator


def _expected_parameters(normalization_params_per_channel):
    """Hand count for 224: convs (k*k*cin + 1) * cout, plus the normalisation's per-channel params."""
    layers = [(1, 3, 16), (3, 16, 32), (3, 32, 64), (3, 64, 128), (3, 128, 256), (3, 256, 512), (7, 512, 1)]
    total = sum((k * k * cin + 1) * cout for k, cin, cout in layers)
    return total + normalization_params_per_channel * sum(cout for _, _, cout in layers[:-1])


def test_authors_layout_at_224():
    model = build_discriminator(224)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    block = ["Conv2D", "BatchNormalization", "LeakyReLU", "MaxPooling2D"]
    assert kinds == block * 5 + ["Conv2D", "BatchNormalization", "LeakyReLU", "Conv2D", "Reshape"]
    assert model.get_layer("conv0").kernel.shape == (1, 1, 3, 16)
    assert model.get_layer("conv_top").output.shape[1:] == (7, 7, 512)
    assert model.get_layer("score").kernel.shape == (7, 7, 512, 1)
    assert model.get_layer("score").padding == "valid"
    assert model.get_layer("lrelu0").negative_slope == pytest.approx(0.2)
    # batch norm as the authors': beta only (no gamma), plus 2 non-trainable moving statistics
    assert model.count_params() == _expected_parameters(3)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert trainable == _expected_parameters(1) == 1_598_481  # the authors' count (DESIGN section 7)
    assert model.get_layer("norm0").momentum == pytest.approx(0.9)
    scores = model(np.random.default_rng(0).random((2, 224, 224, 3)).astype(np.float32))
    assert scores.shape == (2,)


@pytest.mark.parametrize("normalization,per_channel", [("layer", 2), ("none", 0)])
def test_normalisation_options(normalization, per_channel):
    model = build_discriminator(224, normalization=normalization)
    assert model.count_params() == _expected_parameters(per_channel)


def test_layer_norm_critic_scores_samples_independently():
    model = build_discriminator(64, normalization="layer")
    images = np.random.default_rng(1).random((3, 64, 64, 3)).astype(np.float32)
    together = model(images, training=True).numpy()
    alone = np.array([model(images[i:i + 1], training=True).numpy()[0] for i in range(3)])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_gradients_and_bad_sizes():
    model = build_discriminator(64)
    images = tf.constant(np.random.default_rng(2).random((2, 64, 64, 3)), tf.float32)
    with tf.GradientTape() as tape:
        score = tf.reduce_sum(model(images, training=True))
    grads = tape.gradient(score, model.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    with pytest.raises(ValueError):
        build_discriminator(100)
    with pytest.raises(ValueError):
        build_discriminator(64, normalization="group")
