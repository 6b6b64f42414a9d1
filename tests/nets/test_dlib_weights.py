"""dlib's dlib_face_recognition_resnet_model_v1.dat read into the Keras rebuild: random weights written in
dlib's serialization format (a writer here, from dlib's serialize.h / dnn/core.h / dnn/layers.h / dnn/loss.h /
dnn/input.h / cuda/tensor.h) against the float64 NumPy forward pass with dlib's / 256, damaged files, and the
real packaged network against the real dlib."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from face_gcn.nets import dlib_weights, face_descriptor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _face_descriptor_reference as reference  # noqa: E402

# ---------------------------------------------------------------------------------------------
# A writer of dlib's format (serialize.h, float_details.h, cuda/tensor.h)


def _int(value: int) -> bytes:
    """pack_int: a control byte (0x80 when negative | byte count), then the magnitude, little-endian."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def _float(value: float, digits: int = 53) -> bytes:
    """float_details: int64 mantissa = frexp's fraction * 2**digits (low zero bytes shifted off), then
    int16 exponent; written mantissa first (serialize(float_details))."""
    fraction, exponent = math.frexp(value)
    mantissa, exponent = int(fraction * (1 << digits)), exponent - digits
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa >>= 8
        exponent += 8
    return _int(mantissa) + _int(exponent)


def _string(text: str) -> bytes:
    return _int(len(text)) + text.encode()


def _bool(value: bool) -> bytes:
    return b"1" if value else b"0"


def _tensor(values: np.ndarray, shape=None) -> bytes:
    """resizable_tensor: version 2, (n, k, nr, nc), then little-endian float32 values."""
    shape = shape if shape is not None else (values.size, 1, 1, 1)
    return _int(2) + b"".join(map(_int, shape)) + np.asarray(values, "<f4").tobytes()


def _alias(shape) -> bytes:
    return _int(1) + b"".join(map(_int, shape))


_EMPTY = _tensor(np.zeros(0), (0, 0, 0, 0))

# ---------------------------------------------------------------------------------------------
# Layers (dnn/layers.h), newest versions; (kind, serialized layer) in forward order


def _con(filters_hwio: np.ndarray, bias: np.ndarray, stride: int) -> bytes:
    """con_6: params (filters [num_filters, k, nr, nc], then biases), window, aliases, multipliers."""
    size, _, cin, cout = filters_hwio.shape
    padding = 0 if stride != 1 else size // 2
    params = np.concatenate([filters_hwio.transpose(3, 2, 0, 1).ravel(), bias])
    return (_string("con_6") + _tensor(params) + _int(cout) + b"".join(map(_int, (size, size, stride, stride)))
            + _int(padding) + _int(padding) + _alias((cout, cin, size, size)) + _alias((1, cout, 1, 1))
            + _float(1.0) + _float(1.0) + _float(1.0) + _float(0.0) + _bool(True) + _bool(False))


def _affine(gamma: np.ndarray, beta: np.ndarray) -> bytes:
    shape = (1, gamma.size, 1, 1)
    return (_string("affine_2") + _tensor(np.concatenate([gamma, beta])) + _alias(shape) + _alias(shape)
            + _int(0) + _bool(False))


def _pool(kind: str, size: int, stride: int) -> bytes:
    return _string(f"{kind}_2") + b"".join(map(_int, (size, size, stride, stride, 0, 0)))


def _fc(weights: np.ndarray) -> bytes:
    inputs, outputs = weights.shape
    return (_string("fc_3") + _int(outputs) + _int(inputs) + _tensor(weights, (inputs, outputs, 1, 1))
            + _alias((inputs, outputs, 1, 1)) + _alias((0, 0, 0, 0)) + _int(1)
            + _float(1.0) + _float(1.0) + _float(1.0) + _float(0.0) + _bool(True))


def _relu() -> bytes:
    return _string("relu_2") + _bool(False)


class _Net:
    """dlib's anet_type (examples/dnn_face_recognition_ex.cpp) built bottom-up as a list of layers,
    each (kind, serialized layer or None for tag / skip)."""

    def __init__(self, w):
        self.w, self.layers = w, []

    def unit(self, prefix, stride):  # affine<con<...>>
        self.layers += [("con", _con(self.w[f"{prefix}/conv/filters"], self.w[f"{prefix}/conv/bias"], stride)),
                        ("affine", _affine(self.w[f"{prefix}/scale/weights"], self.w[f"{prefix}/scale/biases"]))]

    def block(self, prefix, stride):  # affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
        self.unit(f"{prefix}/conv1", stride)
        self.layers.append(("relu", _relu()))
        self.unit(f"{prefix}/conv2", 1)

    def ares(self, prefix):  # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
        self.layers.append(("tag", None))
        self.block(prefix, 1)
        self.layers += [("add_prev", _string("add_prev_")), ("relu", _relu())]

    def ares_down(self, prefix):  # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
        self.layers.append(("tag", None))
        self.block(prefix, 2)
        self.layers += [("tag", None), ("skip", None), ("avg_pool", _pool("avg_pool", 2, 2)),
                        ("add_prev", _string("add_prev_")), ("relu", _relu())]

    @classmethod
    def anet(cls, w):
        net = cls(w)
        net.unit("conv32_down", 2)
        net.layers += [("relu", _relu()), ("max_pool", _pool("max_pool", 3, 2))]
        for name in ("conv32_1", "conv32_2", "conv32_3"):  # alevel4
            net.ares(name)
        for level in (("conv64_down", "conv64_1", "conv64_2", "conv64_3"), ("conv128_down", "conv128_1", "conv128_2"),
                      ("conv256_down", "conv256_1", "conv256_2"), ("conv256_down_out",)):  # alevel3 .. alevel0
            net.ares_down(level[0])
            for name in level[1:]:
                net.ares(name)
        net.layers += [("avg_pool", _pool("avg_pool", 0, 1)), ("fc", _fc(w["fc"]))]
        return net.layers


def _serialize_subnet(layers) -> bytes:
    """add_layer / add_tag_layer / add_skip_layer (dnn/core.h): version, subnetwork, then the layer and
    its state (bools, x_grad, cached_output, params_grad; innermost: the input layer first, grad_final and
    the sample expansion factor last)."""
    kind, layer = layers[-1]
    if kind in ("tag", "skip"):
        return _int(1) + _serialize_subnet(layers[:-1])
    state = _bool(True) + _bool(True) + _bool(False) + _EMPTY + _EMPTY + _EMPTY
    if len(layers) > 1:
        return _int(2) + _serialize_subnet(layers[:-1]) + layer + state
    input_layer = (_string("input_rgb_image_sized") + b"".join(_float(m, 24) for m in reference.MEAN_RGB)
                   + _int(150) + _int(150))
    return _int(3) + input_layer + layer + state + _int(1)


def write_dlib_model(path, w):
    """w (face-api's names, float32) as dlib's serialized loss_metric network."""
    loss = _int(1) + _string("loss_metric_2") + _float(0.04, 24) + _float(0.6, 24)
    path.write_bytes(loss + _serialize_subnet(_Net.anet(w)))
    return path


# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(path of a .dat with random weights, the weights as float32)."""
    rng = np.random.default_rng(5)
    w = {name: value.astype(np.float32) for name, value in reference.random_face_api_weights(rng).items()}
    return write_dlib_model(tmp_path_factory.mktemp("dlib") / "random.dat", w), w


def test_reads_every_tensor_in_face_apis_layout(synthetic):
    path, w = synthetic
    got = dlib_weights.read_dlib_face_recognition_model(path)
    assert sorted(got) == sorted(w)
    for name, value in w.items():
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_matches_dlibs_forward_pass_on_random_weights(synthetic, tmp_path):
    path, w = synthetic
    out = tmp_path / "random.weights.h5"
    dlib_weights.convert_dlib_model(path, out)
    model = face_descriptor.build_face_descriptor(weights=out)
    assert float(model.get_layer("normalize").divisor.numpy()) == face_descriptor.DLIB_DIVISOR == 256.0
    images = np.random.default_rng(6).integers(0, 256, size=(2, 150, 150, 3)).astype(np.float32)
    w64 = {name: value.astype(np.float64) for name, value in w.items()}
    reference.assert_outputs_match(model(images), *reference.forward(images, w64, divisor=256.0))


def _error(path) -> str:
    with pytest.raises(ValueError) as caught:
        dlib_weights.read_dlib_face_recognition_model(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_damaged_or_other_files_are_refused(synthetic, tmp_path):
    data = synthetic[0].read_bytes()
    cases = {"truncated_half": data[:len(data) // 2], "truncated_tail": data[:-3], "empty": b"",
             "trailing": data + b"\x00", "text": b"not a dlib file\n"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        assert "face recognition network" in _error(tmp_path / name), name
    assert "truncated" in _error(tmp_path / "truncated_tail")
    (tmp_path / "wrong_tag").write_bytes(data.replace(b"max_pool_2", b"avg_pool_2", 1))
    assert "'avg_pool_2', expected 'max_pool_2'" in _error(tmp_path / "wrong_tag")
    (tmp_path / "wrong_loss").write_bytes(data.replace(b"loss_metric_2", b"loss_mmod_12", 1))
    assert "loss_mmod" in _error(tmp_path / "wrong_loss")


def test_cli_converts_a_dlib_model(synthetic, tmp_path):
    path, w = synthetic
    out = tmp_path / "cli.weights.h5"
    command = [sys.executable, "-m", "face_gcn.cli.convert_face_api", "--out", str(out)]
    result = subprocess.run(command + ["--dlib_model", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "117 tensors" in result.stdout and str(path) in result.stdout
    model = face_descriptor.build_face_descriptor(weights=out)
    assert float(model.get_layer("normalize").divisor.numpy()) == 256.0
    np.testing.assert_array_equal(model.get_layer("fc").get_weights()[0], w["fc"])
    # a truncated .dat: one line, exit 1, nothing written; both sources at once: a usage error
    (tmp_path / "short.dat").write_bytes(path.read_bytes()[:1000])
    bad = tmp_path / "bad.weights.h5"
    failed = subprocess.run([sys.executable, "-m", "face_gcn.cli.convert_face_api", "--out", str(bad),
                             "--dlib_model", str(tmp_path / "short.dat")], capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and not bad.exists()
    assert failed.stderr.strip().splitlines()[-1].startswith("face-gcn convert-face-api: error: "), failed.stderr
    both = subprocess.run(command + ["--dlib_model", str(path), "--model", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert both.returncode != 0 and "not both" in both.stderr


# ---------------------------------------------------------------------------------------------
# The real network (face_recognition_models) against the real dlib


@pytest.fixture(scope="session")
def packaged(tmp_path_factory):
    """(the packaged .dat, its converted .weights.h5 in a session cache directory)."""
    source = dlib_weights.packaged_model_path()
    if source is None:
        pytest.skip("face_recognition_models is not installed")
    return source, dlib_weights.packaged_weights(cache_dir=tmp_path_factory.mktemp("dlib_cache"))


def _astronaut_chips(dlib, source) -> np.ndarray:
    """150 x 150 uint8 RGB chips of the face in skimage's astronaut (dlib's detector finds it at
    x 175..265, y 76..166): dlib's aligned chip (get_face_chip on the 5-point landmarks that
    face_recognition_models also carries) and its mirror, plain crops centred and shifted, and a
    wider crop scaled down."""
    skimage_data = pytest.importorskip("skimage.data")
    transform = pytest.importorskip("skimage.transform")
    photo = skimage_data.astronaut()
    crops = [photo[y:y + 150, x:x + 150] for y, x in ((46, 145), (38, 137), (56, 152))]
    wide = transform.resize(photo[16:226, 115:325], (150, 150), anti_aliasing=True, preserve_range=True)
    crops.append(np.round(wide).astype(np.uint8))
    landmarks = os.path.join(os.path.dirname(source), "shape_predictor_5_face_landmarks.dat")
    if os.path.isfile(landmarks):
        face = dlib.shape_predictor(landmarks)(photo, dlib.rectangle(175, 76, 265, 166))
        chip = dlib.get_face_chip(photo, face, size=150)
        crops += [chip, chip[:, ::-1]]
    return np.ascontiguousarray(np.stack(crops))


def test_packaged_network_matches_dlib(packaged):
    dlib = pytest.importorskip("dlib")
    source, weights = packaged
    chips = _astronaut_chips(dlib, source)
    recognizer = dlib.face_recognition_model_v1(source)
    expected = np.array([np.array(recognizer.compute_face_descriptor(chip)) for chip in chips])
    got = face_descriptor.build_face_descriptor(weights=weights)(chips.astype(np.float32))
    descriptor = got["descriptor"].numpy().astype(np.float64)
    cosine = np.sum(descriptor * expected, 1) / np.linalg.norm(descriptor, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.999, cosine
    # float32 both, the same arithmetic: ~4e-7 apart here; the input / 255 instead of / 256 moves them ~4e-4
    np.testing.assert_allclose(descriptor, expected, atol=5e-5)
    np.testing.assert_allclose(got["embedding"].numpy(), expected / np.linalg.norm(expected, axis=1, keepdims=True),
                               atol=5e-5)


def test_packaged_weights_are_converted_once(packaged, monkeypatch):
    _, weights = packaged
    assert os.path.basename(weights).startswith("dlib_face_descriptor_") and weights.endswith(".weights.h5")
    before = os.stat(weights).st_mtime_ns

    def convert_again(*_):
        raise AssertionError("converted again")

    monkeypatch.setattr(dlib_weights, "convert_dlib_model", convert_again)
    assert dlib_weights.packaged_weights(cache_dir=os.path.dirname(weights)) == weights
    assert os.stat(weights).st_mtime_ns == before
    assert [name for name in os.listdir(os.path.dirname(weights)) if name.startswith(".tmp-")] == []


def test_packaged_weights_without_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(dlib_weights, "packaged_model_path", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install face_recognition_models"):
        dlib_weights.packaged_weights(cache_dir=tmp_path)


def test_packaged_model_path_does_not_import_the_package(monkeypatch):
    monkeypatch.delitem(sys.modules, "face_recognition_models", raising=False)
    path = dlib_weights.packaged_model_path()
    assert path is None or path.endswith(os.sep + "dlib_face_recognition_resnet_model_v1.dat")
    assert "face_recognition_models" not in sys.modules
