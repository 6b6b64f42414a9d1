"""Writes a model directory as a SavedModel for TF Serving, atomically.

    OUT/saved_model.pb, OUT/variables/   the ServingModule (face_gcn.export.serving)
    OUT/face_gcn_export.json             image size, vertex/triangle counts, signatures, outputs,
                                         source model directory, face_gcn version
    OUT/assets/triangles.json            {"triangles": [[a, b, c], ...]} the mesh's vertex indices
                                         (also the SavedModel's function mesh_triangles())

TF Serving reads versioned folders: put OUT at MODEL_BASE/1. The directory is built under a
temporary name beside OUT and renamed into place; an existing OUT is replaced only if it is a
SavedModel (or empty).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from face_gcn import fileio, tf_errors
from face_gcn import version as version_lib
from face_gcn.export import serving
from face_gcn.nets import recognition
from face_gcn.reconstruction import forward, model_dir

INFO_FILE = "face_gcn_export.json"
TRIANGLES_FILE = "assets/triangles.json"
# what an export directory holds (tf.saved_model.save's files and ours): only such a folder is replaced
EXPORT_ENTRIES = {"saved_model.pb", "fingerprint.pb", "variables", "assets", "assets.extra", INFO_FILE}


class ExportError(ValueError):
    """An output path that cannot take the export; the message says why."""


def export_nets(nets: forward.FaceGCN, out_dir: str, source: str | None = None,
                render_outputs: bool = True) -> dict:
    """Saves the serving module of ``nets`` at ``out_dir``; returns the description written.

    render_outputs: False leaves the render and coverage images out of every signature (and out of
    the graph's work).
    """
    out_dir = os.path.abspath(out_dir)
    if not fileio.replaceable_directory(out_dir, "saved_model.pb", entries=EXPORT_ENTRIES):
        raise ExportError(f"{out_dir} exists and is not a face-gcn SavedModel export (or holds other files too); "
                          "refusing to replace it")
    module = serving.ServingModule(nets, render_outputs=render_outputs)
    recognizer = recognition.kind_of(nets.recognizer)
    with fileio.atomic_directory(out_dir) as staging:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        info = {"format": "face-gcn-savedmodel", "version": 1, "face_gcn_version": version_lib.__version__,
                "image_size": module.image_size, "num_vertices": int(nets.morphable.num_vertices),
                "num_triangles": int(len(nets.morphable.triangles)), "uses_facenet": recognizer == "facenet", "recognizer": recognizer,
                "morphable_model": nets.morphable.name, "source_model": source,
                "signatures": {"serving_default": {"images": f"uint8 [B, {module.image_size}, "
                                                             f"{module.image_size}, 3] aligned RGB crops"},
                               "serve_masked": {"images": "as serving_default",
                                                "face_mask": f"float32 [B, {module.image_size}, "
                                                             f"{module.image_size}] face region in [0, 1]"},
                               "serve_encoded": {"encoded": "string [B] JPEG/PNG bytes of square crops"}},
                "outputs": list(module.output_names),
                "triangles": f"{TRIANGLES_FILE} (and the function mesh_triangles()): int32 [T, 3]",
                "rasterizer": "pure TensorFlow (no custom ops)"}
        with open(os.path.join(staging, INFO_FILE), "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2, sort_keys=True)
        os.makedirs(os.path.join(staging, os.path.dirname(TRIANGLES_FILE)), exist_ok=True)
        with open(os.path.join(staging, TRIANGLES_FILE), "w", encoding="utf-8") as handle:
            json.dump({"triangles": nets.morphable.triangles.astype(int).tolist()}, handle, separators=(",", ":"))
    return info


def export_model_dir(model_path: str, out_dir: str, render_outputs: bool = True) -> dict:
    """Loads a model directory (face_gcn.reconstruction.model_dir) and exports it."""
    nets = model_dir.load_model_dir(model_path)
    return export_nets(nets, out_dir, source=os.path.abspath(model_path), render_outputs=render_outputs)


def read_info(path: str) -> dict:
    """The face_gcn_export.json of an exported SavedModel."""
    info_path = os.path.join(path, INFO_FILE)
    if not os.path.isfile(info_path):
        raise ExportError(f"{path} is not a face-gcn SavedModel export (no {INFO_FILE})")
    try:
        with open(info_path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError) as error:
        raise ExportError(f"{info_path} is unreadable ({error})") from None
    if not isinstance(info, dict):
        raise ExportError(f"{info_path} is not a face-gcn export description")
    return info


def load_signature(path: str, name: str = "serving_default"):
    """The concrete function of one signature of an exported SavedModel; ExportError names a damaged
    or foreign SavedModel (a truncated saved_model.pb, missing variables, no such signature)."""
    read_info(path)
    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # pylint: disable=broad-except  (protobuf, NotFoundError, OSError, ValueError)
        raise ExportError(f"{path}: cannot load the SavedModel ({type(error).__name__}: "
                          f"{tf_errors.message_line(error)})") from None
    if name not in loaded.signatures:
        raise ExportError(f"{path}: no signature {name!r} (has {sorted(loaded.signatures)})")
    function = loaded.signatures[name]
    expected = {"serving_default": {"images": tf.uint8}, "serve_masked": {"images": tf.uint8, "face_mask": tf.float32},
                "serve_encoded": {"encoded": tf.string}}.get(name)
    inputs = {key: spec.dtype for key, spec in function.structured_input_signature[1].items()}
    if expected is not None and inputs != expected:
        raise ExportError(f"{path}: signature {name!r} takes {inputs}, a face-gcn export's takes {expected}; "
                          "not a face-gcn SavedModel")
    return function


def directory_size(path: str) -> int:
    """Bytes of all files under path."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)
