"""TF.js weights manifests, written here byte by byte in the format, read back against their values."""

import json

import numpy as np
import pytest

from face_gcn.nets.tfjs_weights import TfjsWeightsError, read_tfjs_weights


def _write_model(folder, rng):
    """Two groups (the first in two shards) of float32, uint8, uint16, float16 and int32 weights.

    Returns the manifest path and the values each weight must read back as (float64 references)."""
    kernel = rng.normal(size=(3, 3, 2, 4)).astype("<f4")
    q8 = rng.integers(0, 256, size=(5,), dtype=np.uint8)
    q16 = rng.integers(0, 65536, size=(2, 3), dtype="<u2")
    half = rng.normal(size=(7,)).astype("<f2")
    counts = np.array([[1, -2], [3, 2 ** 30]], "<i4")
    scale8, min8, scale16, min16 = 0.01, -1.25, 3e-5, 0.5
    first = kernel.tobytes() + q8.tobytes() + q16.tobytes()
    (folder / "model.bin1").write_bytes(first[:100])
    (folder / "model.bin2").write_bytes(first[100:])
    (folder / "other.bin").write_bytes(half.tobytes() + counts.tobytes())
    manifest = [
        {"paths": ["model.bin1", "model.bin2"], "weights": [
            {"name": "conv/filters", "shape": [3, 3, 2, 4], "dtype": "float32"},
            {"name": "scale/weights", "shape": [5], "dtype": "float32",
             "quantization": {"dtype": "uint8", "scale": scale8, "min": min8}},
            {"name": "fc/weights", "shape": [2, 3], "dtype": "float32",
             "quantization": {"dtype": "uint16", "scale": scale16, "min": min16}}]},
        {"paths": ["other.bin"], "weights": [
            {"name": "fc/bias", "shape": [7], "dtype": "float32", "quantization": {"dtype": "float16"}},
            {"name": "counts", "shape": [2, 2], "dtype": "int32"}]},
    ]
    path = folder / "model-weights_manifest.json"
    path.write_text(json.dumps(manifest))
    expected = {"conv/filters": kernel.astype(np.float64), "scale/weights": q8 * scale8 + min8,
                "fc/weights": q16 * scale16 + min16, "fc/bias": half.astype(np.float64),
                "counts": counts.astype(np.int64)}
    return path, manifest, expected


def test_reads_every_weight_with_its_shape_dtype_and_value(tmp_path):
    path, _, expected = _write_model(tmp_path, np.random.default_rng(0))
    weights = read_tfjs_weights(path)
    assert list(weights) == list(expected)
    for name, reference in expected.items():
        got = weights[name]
        assert got.shape == reference.shape, name
        assert got.dtype == (np.int32 if name == "counts" else np.float32), name
        np.testing.assert_allclose(got, reference, rtol=1e-6, atol=1e-6, err_msg=name)


def _rewrite(path, manifest):
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("change, message", [
    (lambda m, folder: m[0]["paths"].pop(), "hold 100 bytes"),
    (lambda m, folder: (folder / "other.bin").write_bytes(b"\0" * 3), "hold 3 bytes"),
    (lambda m, folder: (folder / "model.bin2").write_bytes(b"\0" * 4096), "more than"),
    (lambda m, folder: m[1]["paths"].__setitem__(0, "../other.bin"), "next to the manifest"),
    (lambda m, folder: m[1]["paths"].__setitem__(0, "gone.bin"), "missing"),
    (lambda m, folder: m[0]["weights"][0].__setitem__("dtype", "complex64"), "dtype 'complex64'"),
    (lambda m, folder: m[0]["weights"][1]["quantization"].__setitem__("dtype", "int4"), "quantization"),
    (lambda m, folder: m[0]["weights"][1]["quantization"].__setitem__("scale", float("nan")), "finite"),
    (lambda m, folder: m[1]["weights"][1].__setitem__("quantization", {"dtype": "uint8", "scale": 1, "min": 0}),
     "quantized int32"),
    (lambda m, folder: m[0]["weights"][0].__setitem__("shape", [3, -3]), "shape"),
    (lambda m, folder: m[1]["weights"][0].__setitem__("name", "conv/filters"), "appears twice"),
])
def test_malformed_models_raise_one_clear_error(tmp_path, change, message):
    path, manifest, _ = _write_model(tmp_path, np.random.default_rng(1))
    change(manifest, tmp_path)
    _rewrite(path, manifest)
    with pytest.raises(TfjsWeightsError, match=message):
        read_tfjs_weights(path)


def test_files_that_are_not_manifests(tmp_path):
    with pytest.raises(TfjsWeightsError, match="no such file"):
        read_tfjs_weights(tmp_path / "absent.json")
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n binary")
    with pytest.raises(TfjsWeightsError, match="not a JSON weights manifest"):
        read_tfjs_weights(garbage)
    garbage.write_text(json.dumps({"format": "graph-model"}))
    with pytest.raises(TfjsWeightsError, match="JSON list of groups"):
        read_tfjs_weights(garbage)
