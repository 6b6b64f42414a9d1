"""Reading TensorFlow.js weight files (a weights manifest and its binary shards) into NumPy.

npm packages such as @vladmandic/face-api carry pretrained networks in this format. The manifest
is a JSON list of groups, each {"paths": [shard files], "weights": [{"name", "shape", "dtype",
"quantization"?}]}. A group's shards, concatenated in order, hold its weights one after another,
little-endian, in the listed order. A quantized weight is stored as
  uint8 / uint16: q, with value = q * scale + min (affine; "scale" and "min" in "quantization");
  float16: IEEE half floats,
and restored to float32 (only float32 weights are quantized). Only float32 and int32 are read;
nothing is unpickled or executed, and every size is checked against the shards before reading.

  weights = read_tfjs_weights("model/face_recognition_model-weights_manifest.json")
  weights["conv32_down/conv/filters"]  # float32 [7, 7, 3, 32]
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from face_gcn import fileio

MAX_MANIFEST_BYTES = 4 << 20
MAX_TOTAL_BYTES = 1 << 30  # a recognizer's shards are a few MB; refuse anything near a GiB
_STORED = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}
_QUANTIZED = {"uint8": np.dtype("u1"), "uint16": np.dtype("<u2"), "float16": np.dtype("<f2")}


class TfjsWeightsError(ValueError):
    """A manifest or shard that is not a readable TF.js weights file; the message says why."""


def _spec_error(manifest_path, name, problem):
    return TfjsWeightsError(f"{manifest_path}: weight {name!r}: {problem}")


def _stored_dtype(spec, manifest_path):
    """(dtype the bytes are stored in, quantization dict or None) of one weight spec."""
    name, dtype = spec.get("name"), spec.get("dtype")
    if dtype not in _STORED:
        raise _spec_error(manifest_path, name, f"dtype {dtype!r} is not one of {sorted(_STORED)}")
    quantization = spec.get("quantization")
    if quantization is None:
        return _STORED[dtype], None
    if dtype != "float32":
        raise _spec_error(manifest_path, name, f"quantized {dtype} weights are not supported")
    if not isinstance(quantization, dict) or quantization.get("dtype") not in _QUANTIZED:
        raise _spec_error(manifest_path, name, f"quantization {quantization!r} is not one of {sorted(_QUANTIZED)}")
    if quantization["dtype"] != "float16":
        for key in ("scale", "min"):
            value = quantization.get(key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _spec_error(manifest_path, name, f"quantization {key} {value!r} is not a finite number")
    return _QUANTIZED[quantization["dtype"]], quantization


def _shape(spec, manifest_path):
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise _spec_error(manifest_path, spec.get("name"), f"shape {shape!r} is not a list of sizes")
    return tuple(shape)


def _restore(raw, spec, quantization):
    """Stored values -> the weight's dtype."""
    if quantization is None:
        return raw.astype(_STORED[spec["dtype"]].newbyteorder("="))
    if quantization["dtype"] == "float16":
        return raw.astype(np.float32)
    return raw.astype(np.float32) * np.float32(quantization["scale"]) + np.float32(quantization["min"])


def _read_manifest(manifest_path):
    fileio.refuse_lfs_pointer(manifest_path, "TF.js weights manifest", TfjsWeightsError)
    if not os.path.isfile(manifest_path):
        raise TfjsWeightsError(f"{manifest_path}: no such file")
    if os.path.getsize(manifest_path) > MAX_MANIFEST_BYTES:
        raise TfjsWeightsError(f"{manifest_path}: over {MAX_MANIFEST_BYTES} bytes, not a weights manifest")
    try:
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TfjsWeightsError(f"{manifest_path}: not a JSON weights manifest ({error})") from None
    if not isinstance(manifest, list) or not all(isinstance(group, dict) for group in manifest):
        raise TfjsWeightsError(f"{manifest_path}: a weights manifest is a JSON list of groups")
    return manifest


def read_tfjs_weights(manifest_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every weight of a TF.js weights manifest, by name, restored to float32 / int32.

    Raises:
      TfjsWeightsError: a missing or malformed manifest, a shard missing, outside the manifest's
        folder or of the wrong size, an unknown dtype, a repeated name.
    """
    manifest_path = os.fspath(manifest_path)
    folder = os.path.dirname(os.path.abspath(manifest_path))
    weights: dict[str, np.ndarray] = {}
    total = 0
    for group in _read_manifest(manifest_path):
        paths, specs = group.get("paths"), group.get("weights")
        if not isinstance(paths, list) or not isinstance(specs, list):
            raise TfjsWeightsError(f"{manifest_path}: each group needs a list of paths and a list of weights")
        layout = []
        for spec in specs:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise TfjsWeightsError(f"{manifest_path}: a weight without a name: {spec!r}")
            stored, quantization = _stored_dtype(spec, manifest_path)
            shape = _shape(spec, manifest_path)
            layout.append((spec, shape, stored, quantization, int(np.prod(shape, dtype=np.int64)) * stored.itemsize))
        size = sum(item[-1] for item in layout)
        total += size
        if total > MAX_TOTAL_BYTES:
            raise TfjsWeightsError(f"{manifest_path}: weights over {MAX_TOTAL_BYTES} bytes")
        data = bytearray()
        for relative in paths:
            shard = os.path.abspath(os.path.join(folder, str(relative)))
            if os.path.dirname(shard) != folder:
                raise TfjsWeightsError(f"{manifest_path}: shard {relative!r} is not a file next to the manifest")
            if not os.path.isfile(shard):
                raise TfjsWeightsError(f"{manifest_path}: shard {relative!r} is missing")
            if len(data) + os.path.getsize(shard) > size:
                raise TfjsWeightsError(f"{manifest_path}: the shards hold more than the {size} bytes "
                                       "the group's weights take")
            with open(shard, "rb") as handle:
                data += handle.read()
        if len(data) != size:
            raise TfjsWeightsError(f"{manifest_path}: the shards hold {len(data)} bytes, the group's weights "
                                   f"take {size}")
        offset = 0
        for spec, shape, stored, quantization, nbytes in layout:
            if spec["name"] in weights:
                raise _spec_error(manifest_path, spec["name"], "appears twice")
            raw = np.frombuffer(bytes(data[offset:offset + nbytes]), dtype=stored).reshape(shape)
            weights[spec["name"]] = _restore(raw, spec, quantization)
            offset += nbytes
    return weights
