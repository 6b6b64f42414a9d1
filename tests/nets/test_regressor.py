"""ResNet-50 regressor: outputs, preprocessing, zero-initialised head, weights by path."""

import numpy as np
import pytest

from face_gcn.nets import regressor


@pytest.fixture(scope="module")
def model():
    return regressor.build_regressor()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return (rng.uniform(0, 255, (2, 224, 224, 3)) * np.array([0.3, 0.7, 1.0])).astype(np.float32)


def test_outputs_and_zero_initial_coefficients(model, images):
    coefficients, features = regressor.regress(model, images)
    assert coefficients.shape == (2, 257) and features.shape == (2, 2048)
    np.testing.assert_array_equal(coefficients.numpy(), 0.0)  # mean face, neutral pose
    assert np.all(features.numpy() >= 0.0) and np.any(features.numpy() > 0.0)


def test_features_are_pooled_backbone_of_caffe_bgr_input(model, images):
    _, features = regressor.regress(model, images)
    caffe = images[..., ::-1].astype(np.float64) - np.array([103.939, 116.779, 123.68])
    backbone = model.get_layer("resnet50")
    want = backbone(caffe.astype(np.float32), training=False).numpy().mean(axis=(1, 2))
    np.testing.assert_allclose(features.numpy(), want, rtol=1e-4, atol=1e-5)


def test_head_is_dense_on_features(model, images):
    head = model.get_layer("coefficients")
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((2048, 257)).astype(np.float32) * 0.01
    bias = rng.standard_normal(257).astype(np.float32)
    old = [w.numpy() for w in head.weights]
    head.set_weights([kernel, bias])
    try:
        coefficients, features = regressor.regress(model, images)
        want = features.numpy().astype(np.float64) @ kernel + bias
        np.testing.assert_allclose(coefficients.numpy(), want, rtol=1e-4, atol=1e-4)
    finally:
        head.set_weights(old)


def test_weights_round_trip_by_path(model, images, tmp_path):
    head = model.get_layer("coefficients")
    old = [w.numpy() for w in head.weights]
    rng = np.random.default_rng(2)
    head.set_weights([rng.standard_normal((2048, 257)).astype(np.float32) * 0.01,
                      rng.standard_normal(257).astype(np.float32)])
    try:
        path = str(tmp_path / "regressor.weights.h5")
        model.save_weights(path)
        want = regressor.regress(model, images[:1]).coefficients.numpy()
    finally:
        head.set_weights(old)
    reloaded = regressor.build_regressor(weights=path)
    got = regressor.regress(reloaded, images[:1]).coefficients.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_errors(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.weights.h5"):
        regressor.build_regressor(weights=str(tmp_path / "absent.weights.h5"))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        regressor.build_regressor(input_shape=(224, 224))
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        regressor.regress(model, np.zeros((224, 224, 3), np.float32))


# ----------------------------------------------------------------------------- compact backbone

COMPACT_SIZE = 64


def _randomise(model, seed):
    """Random head and batch-norm statistics, so inference outputs are non-trivial."""
    rng = np.random.default_rng(seed)
    for layer in model.get_layer("compact").layers:
        if layer.name.startswith("bn"):
            width = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, width).astype(np.float32),
                               rng.normal(0, 0.2, width).astype(np.float32),
                               rng.normal(0, 5.0, width).astype(np.float32),
                               rng.uniform(50, 500, width).astype(np.float32)])
    model.get_layer("coefficients").set_weights(
        [rng.standard_normal((256, 257)).astype(np.float32) * 0.01,
         rng.standard_normal(257).astype(np.float32)])


def _numpy_conv_same_stride2(x, kernel):
    """[H, W, Ci] float64, [3, 3, Ci, Co] -> [ceil(H/2), ceil(W/2), Co], TF 'same' padding."""
    height, width = x.shape[:2]
    out_h, out_w = -(-height // 2), -(-width // 2)
    pad_h, pad_w = max((out_h - 1) * 2 + 3 - height, 0), max((out_w - 1) * 2 + 3 - width, 0)
    padded = np.pad(x, [(pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2),
                        (0, 0)])
    out = np.zeros((out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[2 * i:2 * i + 3, 2 * j:2 * j + 3]
            out[i, j] = np.tensordot(patch, kernel, axes=([0, 1, 2], [0, 1, 2]))
    return out


def test_compact_outputs_match_a_numpy_forward_pass(images):
    model = regressor.build_regressor((COMPACT_SIZE, COMPACT_SIZE, 3), backbone="compact")
    small = images[:2, :COMPACT_SIZE, :COMPACT_SIZE]
    coefficients, features = regressor.regress(model, small)
    assert coefficients.shape == (2, 257) and features.shape == (2, 256)
    assert regressor.feature_size("compact") == 256 and regressor.feature_size() == 2048
    np.testing.assert_array_equal(coefficients.numpy(), 0.0)  # zero head
    _randomise(model, 3)
    coefficients, features = regressor.regress(model, small)
    compact = model.get_layer("compact")
    for b in range(2):
        x = small[b, ..., ::-1].astype(np.float64) - np.array([103.939, 116.779, 123.68])
        for i in range(5):
            kernel = compact.get_layer(f"conv{i + 1}").kernel.numpy().astype(np.float64)
            gamma, beta, mean, var = (w.numpy().astype(np.float64)
                                      for w in compact.get_layer(f"bn{i + 1}").weights)
            x = _numpy_conv_same_stride2(x, kernel)
            x = np.maximum((x - mean) / np.sqrt(var + 1e-3) * gamma + beta, 0.0)
        assert x.shape == (2, 2, 256)
        np.testing.assert_allclose(features.numpy()[b], x.mean(axis=(0, 1)), rtol=1e-4, atol=1e-4)
        kernel, bias = (w.numpy().astype(np.float64) for w in model.get_layer("coefficients").weights)
        np.testing.assert_allclose(coefficients.numpy()[b], x.mean(axis=(0, 1)) @ kernel + bias,
                                   rtol=1e-4, atol=1e-4)


def test_compact_keras_file_and_weights_round_trip(images, tmp_path):
    model = regressor.build_regressor((COMPACT_SIZE, COMPACT_SIZE, 3), backbone="compact")
    _randomise(model, 4)
    small = images[:2, :COMPACT_SIZE, :COMPACT_SIZE]
    want = regressor.regress(model, small)
    path = str(tmp_path / "regressor.keras")
    model.save(path)
    loaded = regressor.load_regressor(path)
    got = regressor.regress(loaded, small)
    np.testing.assert_allclose(got.coefficients.numpy(), want.coefficients.numpy(), rtol=1e-6)
    np.testing.assert_allclose(got.features.numpy(), want.features.numpy(), rtol=1e-6)
    weights = str(tmp_path / "regressor.weights.h5")
    model.save_weights(weights)
    rebuilt = regressor.build_regressor((COMPACT_SIZE, COMPACT_SIZE, 3), weights=weights,
                                        backbone="compact")
    np.testing.assert_allclose(regressor.regress(rebuilt, small).coefficients.numpy(),
                               want.coefficients.numpy(), rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="absent.keras"):
        regressor.load_regressor(str(tmp_path / "absent.keras"))
    with pytest.raises(ValueError, match=".keras file"):
        regressor.load_regressor(weights)


def test_unknown_backbone_is_refused():
    with pytest.raises(ValueError, match="backbone must be one of"):
        regressor.build_regressor((64, 64, 3), backbone="vgg")
    with pytest.raises(ValueError, match="backbone must be one of"):
        regressor.feature_size("vgg")
