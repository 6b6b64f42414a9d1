"""dlib's descriptor network rebuilt from face-api weights, against a float64 NumPy forward pass written
from face-api's source (src/faceRecognitionNet), on random weights saved as a TF.js manifest."""

import json
import os
import sys

import numpy as np
import pytest

from face_gcn.nets import face_descriptor
from face_gcn.nets.tfjs_weights import read_tfjs_weights

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _face_descriptor_reference as reference  # noqa: E402


def _write_manifest(folder, weights):
    """The weights as a face-api manifest: float32, the scale weights uint8-quantized as face-api ships."""
    specs, blobs, restored = [], [], {}
    for name, value in weights.items():
        spec = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if name.endswith("scale/weights"):
            low, step = float(value.min()), float(np.ptp(value)) / 255.0
            quantized = np.round((value - low) / step).astype(np.uint8)
            spec["quantization"] = {"dtype": "uint8", "scale": step, "min": low}
            blobs.append(quantized.tobytes())
            restored[name] = quantized * step + low
        else:
            blobs.append(value.astype("<f4").tobytes())
            restored[name] = value.astype(np.float32).astype(np.float64)
        specs.append(spec)
    (folder / "face_recognition_model.bin").write_bytes(b"".join(blobs))
    path = folder / "face_recognition_model-weights_manifest.json"
    path.write_text(json.dumps([{"paths": ["face_recognition_model.bin"], "weights": specs}]))
    return path, restored


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    rng = np.random.default_rng(0)
    path, restored = _write_manifest(tmp_path_factory.mktemp("face_api"), reference.random_face_api_weights(rng))
    model = face_descriptor.build_face_descriptor()
    face_descriptor.load_face_api_weights(model, read_tfjs_weights(path))
    return model, restored


def test_matches_face_apis_forward_pass(converted):
    model, weights = converted
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 150, 150, 3)).astype(np.float32)
    got = model(images)
    assert set(got) == {"descriptor", "embedding", "features"}
    assert got["descriptor"].shape == got["embedding"].shape == (2, face_descriptor.DESCRIPTOR_SIZE)
    assert got["features"].shape == (2, face_descriptor.FEATURE_SIZE) and got["embedding"].dtype == "float32"
    reference.assert_outputs_match(got, *reference.forward(images, weights, divisor=255.0))


def test_other_sizes_are_resized_like_face_api(converted):
    model, _ = converted
    images = np.random.default_rng(2).uniform(0, 255, size=(1, 75, 75, 3)).astype(np.float32)
    # TF's legacy bilinear resize without half-pixel centres doubles a 75-px image by repeating and
    # averaging neighbours: pixel 2i is source i, pixel 2i + 1 the mean of i and i + 1 (the last repeated)
    rows = np.concatenate([images, images[:, -1:]], axis=1)
    rows = np.stack([rows[:, :-1], 0.5 * (rows[:, :-1] + rows[:, 1:])], axis=2).reshape(1, 150, 75, 3)
    cols = np.concatenate([rows, rows[:, :, -1:]], axis=2)
    doubled = np.stack([cols[:, :, :-1], 0.5 * (cols[:, :, :-1] + cols[:, :, 1:])], axis=3).reshape(1, 150, 150, 3)
    np.testing.assert_allclose(model(images)["descriptor"].numpy(), model(doubled.astype(np.float32))["descriptor"].numpy(),
                               rtol=1e-4, atol=1e-4)


def test_weights_of_another_network_are_refused(converted):
    model, weights = converted
    with pytest.raises(ValueError, match="not face_recognition_model"):
        face_descriptor.load_face_api_weights(model, {"dense0/conv0/filters": np.zeros((3, 3, 3, 32))})
    wrong = dict(weights, fc=np.zeros((128, 128)))
    with pytest.raises(ValueError, match="fc"):
        face_descriptor.load_face_api_weights(model, wrong)
    wrong = dict(weights, **{"conv64_1/conv1/conv/filters": np.zeros((3, 3, 32, 64))})
    with pytest.raises(ValueError, match="conv64_1/conv1"):
        face_descriptor.load_face_api_weights(model, wrong)


def test_convert_cli_writes_weights_that_build_face_descriptor_loads(tmp_path, converted):
    import subprocess

    model, _ = converted
    folder = tmp_path / "model"
    folder.mkdir()
    _write_manifest(folder, reference.random_face_api_weights(np.random.default_rng(0)))  # the fixture's weights
    out = tmp_path / "descriptor.weights.h5"
    command = [sys.executable, "-m", "face_gcn.cli.convert_face_api", "--model", str(folder), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "117 tensors" in result.stdout
    images = np.random.default_rng(3).uniform(0, 255, size=(2, 150, 150, 3)).astype(np.float32)
    loaded = face_descriptor.build_face_descriptor(weights=out)
    assert float(loaded.get_layer("normalize").divisor.numpy()) == face_descriptor.FACE_API_DIVISOR == 255.0
    expected = model(images)["descriptor"].numpy()  # same weights; two instances may sum convolutions in another order
    np.testing.assert_allclose(loaded(images)["descriptor"].numpy(), expected, rtol=1e-5,
                               atol=1e-5 * np.abs(expected).max())
    # a folder without the recognizer's manifest: one line, exit 1, nothing written
    (tmp_path / "empty").mkdir()
    failed = subprocess.run([sys.executable, "-m", "face_gcn.cli.convert_face_api", "--model", str(tmp_path / "empty"),
                             "--out", str(tmp_path / "none.weights.h5")], capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and "no such file" in failed.stderr and not (tmp_path / "none.weights.h5").exists()
    with pytest.raises(ValueError, match="not a face descriptor weights file"):
        face_descriptor.build_face_descriptor(weights=tmp_path / "empty" / ".." / "model" / "face_recognition_model.bin")
