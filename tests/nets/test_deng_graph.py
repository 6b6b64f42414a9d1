"""DengFrozenRegressor on small frozen graphs this test writes with Deng's tensor names."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.nets import deng_graph


def _tiny_weights(num_coeff=257, num_features=2048, seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": rng.standard_normal((3, num_features)).astype(np.float32) / 100.0,
            "b1": rng.standard_normal(num_features).astype(np.float32),
            "w2": rng.standard_normal((num_features, num_coeff)).astype(np.float32) / 40.0,
            "b2": rng.standard_normal(num_coeff).astype(np.float32)}


def _write_frozen_graph(path, weights, names=("input_imgs", "coeff", "resnet_v1_50/pool5")):
    """Tiny stand-in for FaceReconModel.pb: spatial mean of the BGR input, a 1x1 conv with ReLU
    named like resnet_v1_50/pool5 [B, 1, 1, F], then a dense layer named coeff [B, C]."""
    input_name, coeff_name, pool_name = names
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, 224, 224, 3], name=input_name)
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        conv = tf.nn.conv2d(mean, tf.constant(weights["w1"][None, None]), strides=1,
                            padding="VALID")
        pool5 = tf.nn.relu(conv + weights["b1"], name=pool_name)
        flat = tf.reshape(pool5, [-1, weights["w1"].shape[1]])
        tf.identity(tf.matmul(flat, weights["w2"]) + weights["b2"], name=coeff_name)
    with open(path, "wb") as f:
        f.write(graph.as_graph_def().SerializeToString())
    return str(path)


def _reference(images_rgb, weights):
    """float64 NumPy forward pass of the tiny net on RGB images (the graph takes BGR)."""
    bgr = images_rgb[..., ::-1].astype(np.float64)
    pooled = bgr.mean(axis=(1, 2))
    features = np.maximum(pooled @ weights["w1"] + weights["b1"], 0.0)
    return features @ weights["w2"] + weights["b2"], features


def test_matches_numpy_reference(tmp_path):
    weights = _tiny_weights()
    path = _write_frozen_graph(tmp_path / "FaceReconModel.pb", weights)
    regressor = deng_graph.DengFrozenRegressor(path)
    rng = np.random.default_rng(1)
    # Channel-dependent images, so an RGB/BGR mix-up changes the answer.
    images = rng.uniform(0, 255, (2, 224, 224, 3)) * np.array([0.2, 0.6, 1.0])
    coefficients, features = regressor(images.astype(np.float32))
    want_coeff, want_features = _reference(images, weights)
    assert coefficients.shape == (2, 257) and features.shape == (2, 2048)
    np.testing.assert_allclose(features.numpy(), want_features, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(coefficients.numpy(), want_coeff, rtol=1e-4, atol=1e-3)
    wrong_order, _ = _reference(images[..., ::-1], weights)
    assert not np.allclose(coefficients.numpy(), wrong_order, rtol=1e-4, atol=1e-3)
    single, _ = regressor(images[:1].astype(np.float32))
    np.testing.assert_allclose(single.numpy(), want_coeff[:1], rtol=1e-4, atol=1e-3)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pb"):
        deng_graph.DengFrozenRegressor(str(tmp_path / "absent.pb"))


def test_not_a_graph_def(tmp_path):
    path = tmp_path / "notes.pb"
    path.write_bytes(b"\xff\xfe this is not a protocol buffer \x00\x01")
    with pytest.raises(deng_graph.DengGraphError, match="notes.pb"):
        deng_graph.DengFrozenRegressor(str(path))
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    with pytest.raises(deng_graph.DengGraphError, match="empty.pb"):
        deng_graph.DengFrozenRegressor(str(empty))


def test_missing_tensor_names(tmp_path):
    path = _write_frozen_graph(tmp_path / "renamed.pb", _tiny_weights(),
                               names=("input_imgs", "output", "resnet_v1_50/pool5"))
    with pytest.raises(deng_graph.DengGraphError, match=r"renamed.pb.*coeff:0"):
        deng_graph.DengFrozenRegressor(path)


def test_wrong_output_shapes(tmp_path):
    path = _write_frozen_graph(tmp_path / "short.pb", _tiny_weights(num_coeff=239))
    with pytest.raises(deng_graph.DengGraphError, match=r"short.pb.*257"):
        deng_graph.DengFrozenRegressor(path)
    path = _write_frozen_graph(tmp_path / "narrow.pb", _tiny_weights(num_features=64))
    with pytest.raises(deng_graph.DengGraphError, match=r"narrow.pb.*2048"):
        deng_graph.DengFrozenRegressor(path)


def test_rejects_wrong_image_shape(tmp_path):
    regressor = deng_graph.DengFrozenRegressor(
        _write_frozen_graph(tmp_path / "FaceReconModel.pb", _tiny_weights()))
    with pytest.raises(ValueError, match="224"):
        regressor(np.zeros((1, 160, 160, 3), np.float32))
