"""face_gcn.evaluation.recognizers: a SavedModel and an ONNX graph the tests build, compared
with the same computation done in process / in NumPy."""

import importlib.util
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.evaluation import recognizers

HAS_ONNX = (importlib.util.find_spec("onnx") is not None
            and importlib.util.find_spec("onnxruntime") is not None)


def _images(seed=0, batch=3, size=16):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)


class _Net(tf.Module):
    """conv 3x3 -> relu -> global mean -> dense: a tiny recognizer with several signatures."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(1)
        self.kernel = tf.Variable(rng.normal(0, 0.5, (3, 3, 3, 4)).astype(np.float32))
        self.dense = tf.Variable(rng.normal(0, 0.5, (4, 6)).astype(np.float32))
        self.grey_kernel = tf.Variable(rng.normal(0, 0.5, (3, 3, 1, 4)).astype(np.float32))

    def forward(self, x, kernel=None):
        y = tf.nn.relu(tf.nn.conv2d(x, self.kernel if kernel is None else kernel, 1, "SAME"))
        return tf.reduce_mean(y, axis=[1, 2]) @ self.dense

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32)])
    def serve(self, images):
        return {"embedding": self.forward(images)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def two_outputs(self, images):
        e = self.forward(images)
        return {"embedding": e, "doubled": 2 * e}

    @tf.function(input_signature=[tf.TensorSpec([None, 12, 12, 1], tf.float32)])
    def grey(self, images):
        return {"embedding": self.forward(images, self.grey_kernel)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    net = _Net()
    path = str(tmp_path_factory.mktemp("recognizer") / "savedmodel")
    tf.saved_model.save(net, path, signatures={"serving_default": net.serve,
                                               "two": net.two_outputs, "grey": net.grey})
    return net, path


def test_savedmodel_matches_in_process_model(saved):
    net, path = saved
    images = _images()
    recognizer = recognizers.load_recognizer(path, batch_size=2)  # kind guessed, 2 batches
    assert isinstance(recognizer, recognizers.SavedModelRecognizer)
    assert recognizer.input_size == (16, 16)
    expected = net.forward(((images.astype(np.float32) - 127.5) / 128.0)).numpy()
    got = recognizer.embed(images)
    assert got.shape == (3, 6) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # float input in [0, 255] gives the same embeddings as uint8
    np.testing.assert_allclose(recognizer.embed(images.astype(np.float64)), got, rtol=1e-6)


@pytest.mark.parametrize("preprocessing, scale", [("unit", lambda x: x / 255.0),
                                                  ("raw", lambda x: x)])
def test_savedmodel_preprocessing_and_bgr(saved, preprocessing, scale):
    net, path = saved
    images = _images(seed=2)
    recognizer = recognizers.SavedModelRecognizer(path, preprocessing=preprocessing,
                                                  channel_order="bgr")
    expected = net.forward(scale(images[..., ::-1].astype(np.float32))).numpy()
    np.testing.assert_allclose(recognizer.embed(images), expected, rtol=1e-5, atol=1e-5)


def test_savedmodel_resizes_to_the_signature_size(saved):
    net, path = saved
    images = _images(seed=3, size=32)
    recognizer = recognizers.SavedModelRecognizer(path)
    # 32 -> 16 bilinear with half-pixel centres is the mean of each 2x2 block
    halved = images.astype(np.float64).reshape(3, 16, 2, 16, 2, 3).mean(axis=(2, 4))
    expected = net.forward(((halved - 127.5) / 128.0).astype(np.float32)).numpy()
    np.testing.assert_allclose(recognizer.embed(images), expected, rtol=1e-5, atol=1e-5)


def test_savedmodel_named_signature_output_and_size(saved):
    net, path = saved
    images = _images(seed=4)
    with pytest.raises(recognizers.RecognizerError, match="several outputs"):
        recognizers.SavedModelRecognizer(path, signature="two")
    recognizer = recognizers.SavedModelRecognizer(path, signature="two", output="doubled",
                                                  input_size=16)
    expected = 2 * net.forward(((images.astype(np.float32) - 127.5) / 128.0)).numpy()
    np.testing.assert_allclose(recognizer.embed(images), expected, rtol=1e-5, atol=1e-5)
    # no static size and none given: images go in at their own size
    assert recognizers.SavedModelRecognizer(path, signature="two",
                                            output="embedding").input_size is None


def test_savedmodel_grey_input(saved):
    net, path = saved
    images = _images(seed=5, size=12)
    recognizer = recognizers.SavedModelRecognizer(path, signature="grey", preprocessing="unit")
    grey = (0.299 * images[..., 0] + 0.587 * images[..., 1] + 0.114 * images[..., 2]) / 255.0
    expected = net.forward(grey[..., None].astype(np.float32), net.grey_kernel).numpy()
    np.testing.assert_allclose(recognizer.embed(images), expected, rtol=1e-5, atol=1e-5)


def test_savedmodel_errors(saved, tmp_path):
    _, path = saved
    with pytest.raises(recognizers.RecognizerError, match="not found"):
        recognizers.SavedModelRecognizer(str(tmp_path / "missing"))
    with pytest.raises(recognizers.RecognizerError, match="no signature 'nope'.*serving_default"):
        recognizers.SavedModelRecognizer(path, signature="nope")
    with pytest.raises(recognizers.RecognizerError, match="no output"):
        recognizers.SavedModelRecognizer(path, output="logits")
    with pytest.raises(ValueError, match="preprocessing"):
        recognizers.SavedModelRecognizer(path, preprocessing="imagenet")
    with pytest.raises(ValueError, match="channel_order"):
        recognizers.SavedModelRecognizer(path, channel_order="gbr")
    recognizer = recognizers.SavedModelRecognizer(path)
    with pytest.raises(ValueError, match="\\[B, H, W, 3\\]"):
        recognizer.embed(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        recognizer.embed(np.zeros((1, 16, 16, 3), np.int32))
    with pytest.raises(ValueError, match="non-empty"):
        recognizer.embed(np.zeros((0, 16, 16, 3), np.uint8))


def test_guess_kind_and_bad_kind(saved, tmp_path):
    _, path = saved
    assert recognizers.guess_kind(path) == "savedmodel"
    assert recognizers.guess_kind("x/model.onnx") == "onnx"
    assert recognizers.guess_kind("x/facenet.weights.h5") == "facenet"
    with pytest.raises(recognizers.RecognizerError, match="cannot tell"):
        recognizers.guess_kind(str(tmp_path))
    with pytest.raises(recognizers.RecognizerError, match="kind must be"):
        recognizers.load_recognizer(path, kind="torch")
    with pytest.raises(recognizers.RecognizerError, match="no options"):
        recognizers.load_recognizer("w.h5", kind="facenet", input_size=112)


def _onnx_model(path, layout, channels=3, size=8, dim=5):
    """GlobalAveragePool -> Flatten -> MatMul W: embedding = mean over pixels of x @ W."""
    import onnx  # pylint: disable=import-outside-toplevel
    from onnx import TensorProto, helper, numpy_helper  # pylint: disable=import-outside-toplevel
    weights = np.random.default_rng(7).normal(size=(channels, dim)).astype(np.float32)
    nodes = []
    if layout == "nhwc":
        in_shape = ["batch", size, size, channels]
        nodes.append(helper.make_node("Transpose", ["images"], ["nchw"], perm=[0, 3, 1, 2]))
        source = "nchw"
    else:
        in_shape = ["batch", channels, size, size]
        source = "images"
    nodes += [helper.make_node("GlobalAveragePool", [source], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
              helper.make_node("MatMul", ["flat", "W"], ["embedding"])]
    graph = helper.make_graph(
        nodes, "tiny_recognizer",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        initializer=[numpy_helper.from_array(weights, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return weights


@pytest.mark.skipif(not HAS_ONNX, reason="onnx and onnxruntime are not installed")
@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_onnx_matches_numpy(tmp_path, layout):
    path = str(tmp_path / "tiny.onnx")
    weights = _onnx_model(path, layout)
    recognizer = recognizers.load_recognizer(path, preprocessing="unit", batch_size=2)
    assert isinstance(recognizer, recognizers.OnnxRecognizer)
    assert recognizer.layout == layout and recognizer.input_size == (8, 8)
    images = _images(seed=8, batch=3, size=8)
    expected = (images.astype(np.float64) / 255.0).mean(axis=(1, 2)) @ weights
    np.testing.assert_allclose(recognizer.embed(images), expected, rtol=1e-5, atol=1e-6)
    # 16 -> 8 resize (2x2 block means) keeps the global mean
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(recognizer.embed(big), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not HAS_ONNX, reason="onnx and onnxruntime are not installed")
def test_onnx_grey_and_errors(tmp_path):
    path = str(tmp_path / "grey.onnx")
    weights = _onnx_model(path, "nchw", channels=1, size=6)
    recognizer = recognizers.OnnxRecognizer(path, preprocessing="raw")
    images = _images(seed=9, batch=2, size=6)
    grey = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(recognizer.embed(images), grey.mean(axis=(1, 2))[:, None]
                               @ weights, rtol=1e-5)
    with pytest.raises(recognizers.RecognizerError, match="no output"):
        recognizers.OnnxRecognizer(path, output="logits")
    with pytest.raises(recognizers.RecognizerError, match="not found"):
        recognizers.OnnxRecognizer(str(tmp_path / "missing.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(recognizers.RecognizerError, match="could not load"):
        recognizers.OnnxRecognizer(str(bad))


def test_onnx_missing_package_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(recognizers.RecognizerError, match="onnxruntime"):
        recognizers.OnnxRecognizer(str(tmp_path / "x.onnx"))


def test_facenet_recognizer_loads_converted_weights(tmp_path):
    from face_gcn.nets import facenet  # pylint: disable=import-outside-toplevel
    model = facenet.build_facenet()  # random initial weights, unlike a fresh build's
    path = str(tmp_path / "facenet.weights.h5")
    model.save_weights(path)
    recognizer = recognizers.load_recognizer(path)
    assert isinstance(recognizer, recognizers.FaceNetRecognizer)
    images = _images(seed=10, batch=2, size=40)
    got = recognizer.embed(images)
    expected = facenet.embed(model, images).embedding.numpy()
    assert got.shape == (2, 512)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    os.remove(path)
    with pytest.raises(recognizers.RecognizerError, match="not found"):
        recognizers.FaceNetRecognizer(path)
