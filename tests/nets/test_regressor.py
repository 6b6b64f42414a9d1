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
