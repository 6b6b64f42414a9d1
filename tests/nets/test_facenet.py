"""FaceNet wrapper and Sandberg checkpoint conversion, checked against a checkpoint this test
writes in Sandberg's variable naming (names and shapes spelled out here from
davidsandberg/facenet src/models/inception_resnet_v1.py) and NumPy references."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.nets import facenet, facenet_checkpoint

S = "InceptionResnetV1"


def _sandberg_variables():
    """name -> shape for every network variable of the 512-d 20180402 model."""
    convs = {}  # scope -> (kh, kw, cin, cout, has_bias)
    stem = [("Conv2d_1a_3x3", 3, 3, 3, 32), ("Conv2d_2a_3x3", 3, 3, 32, 32),
            ("Conv2d_2b_3x3", 3, 3, 32, 64), ("Conv2d_3b_1x1", 1, 1, 64, 80),
            ("Conv2d_4a_3x3", 3, 3, 80, 192), ("Conv2d_4b_3x3", 3, 3, 192, 256)]
    for name, kh, kw, cin, cout in stem:
        convs[f"{S}/{name}"] = (kh, kw, cin, cout, False)

    def block(scope, channels, branches, mixed_width):
        for path, kh, kw, cin, cout in branches:
            convs[f"{scope}/{path}"] = (kh, kw, cin, cout, False)
        convs[f"{scope}/Conv2d_1x1"] = (1, 1, mixed_width, channels, True)

    b35 = [("Branch_0/Conv2d_1x1", 1, 1, 256, 32), ("Branch_1/Conv2d_0a_1x1", 1, 1, 256, 32),
           ("Branch_1/Conv2d_0b_3x3", 3, 3, 32, 32), ("Branch_2/Conv2d_0a_1x1", 1, 1, 256, 32),
           ("Branch_2/Conv2d_0b_3x3", 3, 3, 32, 32), ("Branch_2/Conv2d_0c_3x3", 3, 3, 32, 32)]
    b17 = [("Branch_0/Conv2d_1x1", 1, 1, 896, 128), ("Branch_1/Conv2d_0a_1x1", 1, 1, 896, 128),
           ("Branch_1/Conv2d_0b_1x7", 1, 7, 128, 128), ("Branch_1/Conv2d_0c_7x1", 7, 1, 128, 128)]
    b8 = [("Branch_0/Conv2d_1x1", 1, 1, 1792, 192), ("Branch_1/Conv2d_0a_1x1", 1, 1, 1792, 192),
          ("Branch_1/Conv2d_0b_1x3", 1, 3, 192, 192), ("Branch_1/Conv2d_0c_3x1", 3, 1, 192, 192)]
    for i in range(1, 6):
        block(f"{S}/Repeat/block35_{i}", 256, b35, 96)
    for path, kh, kw, cin, cout in [
            ("Branch_0/Conv2d_1a_3x3", 3, 3, 256, 384), ("Branch_1/Conv2d_0a_1x1", 1, 1, 256, 192),
            ("Branch_1/Conv2d_0b_3x3", 3, 3, 192, 192), ("Branch_1/Conv2d_1a_3x3", 3, 3, 192, 256)]:
        convs[f"{S}/Mixed_6a/{path}"] = (kh, kw, cin, cout, False)
    for i in range(1, 11):
        block(f"{S}/Repeat_1/block17_{i}", 896, b17, 256)
    for path, kh, kw, cin, cout in [
            ("Branch_0/Conv2d_0a_1x1", 1, 1, 896, 256), ("Branch_0/Conv2d_1a_3x3", 3, 3, 256, 384),
            ("Branch_1/Conv2d_0a_1x1", 1, 1, 896, 256), ("Branch_1/Conv2d_1a_3x3", 3, 3, 256, 256),
            ("Branch_2/Conv2d_0a_1x1", 1, 1, 896, 256), ("Branch_2/Conv2d_0b_3x3", 3, 3, 256, 256),
            ("Branch_2/Conv2d_1a_3x3", 3, 3, 256, 256)]:
        convs[f"{S}/Mixed_7a/{path}"] = (kh, kw, cin, cout, False)
    for i in range(1, 6):
        block(f"{S}/Repeat_2/block8_{i}", 1792, b8, 384)
    block(f"{S}/Block8", 1792, b8, 384)

    shapes = {}
    for scope, (kh, kw, cin, cout, has_bias) in convs.items():
        shapes[f"{scope}/weights"] = (kh, kw, cin, cout)
        if has_bias:
            shapes[f"{scope}/biases"] = (cout,)
        else:
            for stat in ("beta", "moving_mean", "moving_variance"):
                shapes[f"{scope}/BatchNorm/{stat}"] = (cout,)
    shapes[f"{S}/Bottleneck/weights"] = (1792, 512)
    for stat in ("beta", "moving_mean", "moving_variance"):
        shapes[f"{S}/Bottleneck/BatchNorm/{stat}"] = (512,)
    return shapes


def _random_values(shapes, seed=0):
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in shapes.items():
        if name.endswith("moving_variance"):
            values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif name.endswith("weights"):
            fan_in = int(np.prod(shape[:-1]))
            values[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
        else:
            values[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    return values


def _write_checkpoint(prefix, values):
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return prefix


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    values = _random_values(_sandberg_variables())
    # Variables a real training checkpoint also holds, which the loader must ignore.
    extras = {"Logits/weights": np.ones((512, 7), np.float32),
              "global_step": np.array(275, np.int64),
              f"{S}/Conv2d_1a_3x3/weights/RMSProp": np.zeros((3, 3, 3, 32), np.float32)}
    prefix = str(tmp_path_factory.mktemp("sandberg") / "model-20180402-114759.ckpt-275")
    return _write_checkpoint(prefix, {**values, **extras}), values


@pytest.fixture(scope="module")
def loaded(checkpoint):
    prefix, _ = checkpoint
    model = facenet.build_facenet()
    count = facenet_checkpoint.load_sandberg_checkpoint(model, prefix)
    return model, count


def test_every_weight_comes_from_its_own_checkpoint_variable(checkpoint, loaded):
    _, values = checkpoint
    model, count = loaded
    assert count == model.count_params() == 23497424
    assert sum(v.size for v in values.values()) == 23497424
    # Random values make each array identifiable: match every Keras weight to one variable.
    by_bytes = {values[n].tobytes(): n for n in values}
    assert len(by_bytes) == len(values)
    used = [by_bytes.get(w.numpy().tobytes()) for w in model.weights]
    assert None not in used
    assert sorted(used) == sorted(values)


@pytest.mark.parametrize("layer, weight, variable", [
    ("Conv2d_1a_3x3", "kernel", "Conv2d_1a_3x3/weights"),
    ("Conv2d_4b_3x3_BatchNorm", "moving_variance", "Conv2d_4b_3x3/BatchNorm/moving_variance"),
    ("Block35_3_Branch_2_Conv2d_0c_3x3", "kernel",
     "Repeat/block35_3/Branch_2/Conv2d_0c_3x3/weights"),
    ("Block35_5_Conv2d_1x1", "bias", "Repeat/block35_5/Conv2d_1x1/biases"),
    ("Mixed_6a_Branch_1_Conv2d_0b_3x3_BatchNorm", "beta",
     "Mixed_6a/Branch_1/Conv2d_0b_3x3/BatchNorm/beta"),
    ("Block17_10_Branch_1_Conv2d_0c_7x1", "kernel",
     "Repeat_1/block17_10/Branch_1/Conv2d_0c_7x1/weights"),
    ("Mixed_7a_Branch_2_Conv2d_1a_3x3_BatchNorm", "moving_mean",
     "Mixed_7a/Branch_2/Conv2d_1a_3x3/BatchNorm/moving_mean"),
    ("Block8_2_Branch_1_Conv2d_0b_1x3", "kernel",
     "Repeat_2/block8_2/Branch_1/Conv2d_0b_1x3/weights"),
    ("Block8_6_Conv2d_1x1", "kernel", "Block8/Conv2d_1x1/weights"),
    ("Block8_6_Branch_0_Conv2d_1x1_BatchNorm", "moving_variance",
     "Block8/Branch_0/Conv2d_1x1/BatchNorm/moving_variance"),
    ("Bottleneck", "kernel", "Bottleneck/weights"),
    ("Bottleneck_BatchNorm", "moving_mean", "Bottleneck/BatchNorm/moving_mean"),
])
def test_representative_layers(checkpoint, loaded, layer, weight, variable):
    prefix, _ = checkpoint
    model, _ = loaded
    reader = tf.train.load_checkpoint(prefix)
    core = model.get_layer(facenet.CORE_NAME)
    keras_weight = [w for w in core.get_layer(layer).weights if w.path.endswith("/" + weight)]
    assert len(keras_weight) == 1
    np.testing.assert_array_equal(keras_weight[0].numpy(), reader.get_tensor(f"{S}/{variable}"))


def _conv_valid(x, kernel, stride):
    """x [B, H, W, C] float64, kernel [kh, kw, C, F] -> VALID convolution [B, H', W', F]."""
    kh, kw = kernel.shape[:2]
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * out_h:stride, j:j + stride * out_w:stride, :]
            out += patch @ kernel[i, j]
    return out


def _batch_norm(x, prefix_values, scope):
    mean = prefix_values[f"{scope}/BatchNorm/moving_mean"].astype(np.float64)
    var = prefix_values[f"{scope}/BatchNorm/moving_variance"].astype(np.float64)
    beta = prefix_values[f"{scope}/BatchNorm/beta"].astype(np.float64)
    return (x - mean) / np.sqrt(var + 0.001) + beta


def test_stem_conv_bn_relu_matches_numpy(checkpoint, loaded):
    _, values = checkpoint
    model, _ = loaded
    core = model.get_layer(facenet.CORE_NAME)
    stem = tf.keras.Model(core.input, core.get_layer("Conv2d_1a_3x3_Activation").output)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, 160, 160, 3))
    got = stem(x.astype(np.float32)).numpy()
    conv = _conv_valid(x, values[f"{S}/Conv2d_1a_3x3/weights"].astype(np.float64), 2)
    want = np.maximum(_batch_norm(conv, values, f"{S}/Conv2d_1a_3x3"), 0.0)
    assert got.shape == (2, 79, 79, 32)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_head_and_preprocessing(checkpoint, loaded):
    _, values = checkpoint
    model, _ = loaded
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, (2, 160, 160, 3)).astype(np.float32)
    embedding, features = facenet.embed(model, images)
    assert embedding.shape == (2, 512) and features.shape == (2, 1792)
    # Head: embedding = l2normalize(BN(features @ W)), from the checkpoint arrays.
    pre = features.numpy().astype(np.float64) @ values[f"{S}/Bottleneck/weights"]
    pre = _batch_norm(pre, values, f"{S}/Bottleneck")
    want = pre / np.linalg.norm(pre, axis=1, keepdims=True)
    np.testing.assert_allclose(embedding.numpy(), want, rtol=1e-4, atol=1e-5)
    # Preprocessing: the core sees (x - 127.5) / 128.
    core = model.get_layer(facenet.CORE_NAME)
    core_features, _ = core((images - 127.5) / 128.0, training=False)
    np.testing.assert_allclose(features.numpy(), core_features.numpy(), rtol=1e-5, atol=1e-5)


def test_resizes_other_sizes(loaded):
    model, _ = loaded
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (1, 200, 180, 3)).astype(np.float32)
    resized = tf.image.resize(images, [160, 160], method="bilinear").numpy()
    got = facenet.embed(model, images).embedding.numpy()
    want = facenet.embed(model, resized).embedding.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_frozen_by_default(loaded):
    model, _ = loaded
    assert model.trainable_weights == []


def test_missing_checkpoint_prefix(loaded, tmp_path):
    model, _ = loaded
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        facenet_checkpoint.load_sandberg_checkpoint(model, str(tmp_path / "nope.ckpt"))


def test_checkpoint_missing_variables_names_them(loaded, tmp_path):
    model, _ = loaded
    before = [w.numpy() for w in model.weights[:3]]
    values = {f"{S}/Conv2d_1a_3x3/weights": np.zeros((3, 3, 3, 32), np.float32)}
    prefix = _write_checkpoint(str(tmp_path / "partial.ckpt"), values)
    with pytest.raises(facenet_checkpoint.CheckpointMismatchError,
                       match=r"missing: .*InceptionResnetV1/Conv2d_1a_3x3/BatchNorm/beta"):
        facenet_checkpoint.load_sandberg_checkpoint(model, prefix)
    for weight, value in zip(model.weights[:3], before):  # nothing was assigned
        np.testing.assert_array_equal(weight.numpy(), value)


def test_wrong_shape_and_unused_variables(checkpoint, loaded, tmp_path):
    _, values = checkpoint
    model, _ = loaded
    bad = dict(values)
    bad[f"{S}/Bottleneck/weights"] = np.zeros((1792, 128), np.float32)
    prefix = _write_checkpoint(str(tmp_path / "bad.ckpt"), bad)
    with pytest.raises(facenet_checkpoint.CheckpointMismatchError, match="Bottleneck/weights"):
        facenet_checkpoint.load_sandberg_checkpoint(model, prefix)
    extra = dict(values)
    extra[f"{S}/Conv2d_1a_3x3/BatchNorm/gamma"] = np.ones(32, np.float32)
    prefix = _write_checkpoint(str(tmp_path / "extra.ckpt"), extra)
    with pytest.raises(facenet_checkpoint.CheckpointMismatchError, match="gamma"):
        facenet_checkpoint.load_sandberg_checkpoint(model, prefix)


def test_convert_cli_writes_weights_that_build_facenet_loads(checkpoint, loaded, tmp_path):
    prefix, _ = checkpoint
    model, _ = loaded
    out = tmp_path / "facenet.weights.h5"
    result = subprocess.run(
        [sys.executable, "-m", "face_gcn.cli.convert_facenet", "--checkpoint", prefix,
         "--out", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    reloaded = facenet.build_facenet(weights=str(out))
    for a, b in zip(model.weights, reloaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    bad = subprocess.run(
        [sys.executable, "-m", "face_gcn.cli.convert_facenet", "--checkpoint",
         str(tmp_path / "absent.ckpt"), "--out", str(tmp_path / "x.weights.h5")],
        capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 1 and "absent.ckpt" in bad.stderr
    assert not os.path.exists(tmp_path / "x.weights.h5")
