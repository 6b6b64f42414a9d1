"""The trained-model directory: what `face-gcn train` writes and inference, export and the demo read.

    DIR/face_model.json     format, version, image size, coarse fit steps, file names, training summary
    DIR/morphable.npz       the morphable model the networks were trained for
    DIR/regressor.keras     coefficient regressor (Keras)
    DIR/texture_gcn.keras   Decoder + Refiner + Combiner (Keras; sparse matrices inside)
    DIR/facenet.weights.h5  the recognition network whose features join the embedding, when there
    DIR/face_descriptor.weights.h5   is one (nets.recognition): FaceNet's or dlib's descriptor's weights

A user's Basel Face Model ends up in DIR/morphable.npz of a model trained on it: such a directory is
the user's own artefact and must not be shared where the BFM licence forbids it.
The directory is written under a temporary name and renamed into place, so a reader never sees
half a model.
"""

from __future__ import annotations

import json
import os


from face_gcn import fileio, keras_io
from face_gcn.morphable import model as model_lib
from face_gcn.nets import recognition
from face_gcn.reconstruction.forward import REFINER_PHOTO_INPUTS, FaceGCN

FORMAT = "face-gcn-model"
VERSION = 1
META_FILE = "face_model.json"
FILES = {"morphable": "morphable.npz", "regressor": "regressor.keras", "texture_gcn": "texture_gcn.keras",
         "facenet": "facenet.weights.h5", "face_descriptor": "face_descriptor.weights.h5"}
NETWORKS = ("morphable", "regressor", "texture_gcn")


class ModelDirError(ValueError):
    """A path that is not a usable face-gcn model directory; the message says what is wrong."""


def save_model_dir(path: str, nets: FaceGCN, info: dict | None = None) -> None:
    """Writes ``nets`` to the directory ``path`` (replacing an existing model directory there).

    info: JSON-serialisable extras (e.g. config, steps, losses) stored under "training".
    """
    path = os.path.abspath(path)
    if not fileio.replaceable_directory(path, META_FILE, entries={META_FILE, *FILES.values()}):
        raise ModelDirError(f"{path} exists and is not a face-gcn model directory (or holds other files too); "
                            "refusing to replace it")
    with fileio.atomic_directory(path) as staging:
        model_lib.save(nets.morphable, os.path.join(staging, FILES["morphable"]))
        nets.regressor.save(os.path.join(staging, FILES["regressor"]))
        nets.texture_gcn.save(os.path.join(staging, FILES["texture_gcn"]))
        kind = None if nets.recognizer is None else recognition.kind_of(nets.recognizer)
        if kind is not None:
            nets.recognizer.save_weights(os.path.join(staging, FILES[kind]))
        meta = {"format": FORMAT, "version": VERSION, "image_size": int(nets.image_size),
                "files": {k: FILES[k] for k in NETWORKS + ((kind,) if kind else ())},
                "recognizer": kind, "uses_facenet": kind == "facenet",
                "num_vertices": int(nets.morphable.num_vertices),
                "coarse_fit_steps": int(nets.fit_steps), "refiner_photo": nets.refiner_photo,
                "mask_erosion": nets.mask_erosion, "training": info or {}}
        with open(os.path.join(staging, META_FILE), "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2, sort_keys=True, default=str)


def read_meta(path: str) -> dict:
    """face_model.json of a model directory, validated."""
    meta_path = os.path.join(path, META_FILE)
    if not os.path.isdir(path):
        raise ModelDirError(f"model directory not found: {path}")
    if not os.path.isfile(meta_path):
        raise ModelDirError(f"{path} is not a face-gcn model directory (no {META_FILE})")
    try:
        meta = fileio.read_format_json(meta_path, FORMAT, "description")
    except ValueError as error:
        raise ModelDirError(str(error)) from None
    if meta.get("version") != VERSION:
        raise ModelDirError(f"{meta_path}: format version {meta.get('version')!r}, this face_gcn reads {VERSION}")
    size = meta.get("image_size")
    if not isinstance(size, int) or not 16 <= size <= 2048:
        raise ModelDirError(f"{meta_path}: image_size must be an integer in [16, 2048], got {size!r}")
    steps = meta.get("coarse_fit_steps", 0)
    if not isinstance(steps, int) or not 0 <= steps <= 10000:
        raise ModelDirError(f"{meta_path}: coarse_fit_steps must be an integer in [0, 10000], got {steps!r}")
    files = meta.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ModelDirError(f"{meta_path}: files must map each network to a file name, got {files!r}")
    if not isinstance(meta.get("uses_facenet", False), bool):
        raise ModelDirError(f"{meta_path}: uses_facenet must be true or false, got {meta.get('uses_facenet')!r}")
    if meta.get("recognizer") not in (None,) + recognition.KINDS:
        raise ModelDirError(f"{meta_path}: recognizer must be null or one of {recognition.KINDS}, "
                            f"got {meta.get('recognizer')!r}")
    if meta.get("uses_facenet") and meta.get("recognizer") not in (None, "facenet"):
        raise ModelDirError(f"{meta_path}: uses_facenet is true but the recognizer is {meta['recognizer']!r}")
    if meta.get("refiner_photo", "colors") not in REFINER_PHOTO_INPUTS:
        raise ModelDirError(f"{meta_path}: refiner_photo must be one of {REFINER_PHOTO_INPUTS}, "
                            f"got {meta.get('refiner_photo')!r}")
    return meta


def recognizer_kind(meta: dict) -> str | None:
    """The recognition network a model directory holds: meta's "recognizer", or FaceNet where
    "uses_facenet" says so (directories written before there was a choice have only that)."""
    return meta.get("recognizer") or ("facenet" if meta.get("uses_facenet") else None)


def load_model_dir(path: str) -> FaceGCN:
    """Loads the networks of a model directory; raises ModelDirError naming the bad file."""
    meta = read_meta(path)
    files = meta["files"]
    kind = recognizer_kind(meta)
    for key in NETWORKS + ((kind,) if kind else ()):
        name = files.get(key)
        if not isinstance(name, str) or os.path.basename(name) != name or not os.path.isfile(os.path.join(path, name)):
            raise ModelDirError(f"{path}: missing {key} file ({name!r})")
        fileio.refuse_lfs_pointer(os.path.join(path, name), f"{key} file", ModelDirError)
    try:
        morphable = model_lib.load(os.path.join(path, files["morphable"]))
    except (model_lib.MorphableModelError, OSError, ValueError) as error:
        raise ModelDirError(f"{os.path.join(path, files['morphable'])}: cannot load the morphable model "
                            f"({error})") from None
    loaded = {}
    for key in ("regressor", "texture_gcn"):
        file = os.path.join(path, files[key])
        try:
            loaded[key] = keras_io.load_keras_file(file, key)
        except ValueError as error:
            raise ModelDirError(str(error)) from None
    recognizer = None
    if kind is not None:
        file = os.path.join(path, files[kind])
        try:
            recognizer = recognition.build(kind, weights=file)
        except (OSError, ValueError) as error:  # h5py: OSError for a damaged file; Keras: ValueError for another net
            raise ModelDirError(f"{file}: cannot load the {recognition.NAMES[kind]} weights ({error})") from None
    try:
        return FaceGCN(morphable=morphable, regressor=loaded["regressor"], texture_gcn=loaded["texture_gcn"],
                       recognizer=recognizer, image_size=meta["image_size"],
                       fit_steps=int(meta.get("coarse_fit_steps", 0)),
                       refiner_photo=meta.get("refiner_photo", "colors"),
                       mask_erosion=meta.get("mask_erosion", "none"))
    except ValueError as error:
        raise ModelDirError(f"{path}: inconsistent model ({error})") from None
