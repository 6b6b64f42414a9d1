"""A coarse cache: the fixed coarse stage run once per training face, for texture training.

The paper's regressor (and FaceNet) are frozen while the texture GCNs train, and so is the
regress-then-fit coarse stage built on them: its coefficients and the image embedding of a face
never change. ``write_coarse_cache`` computes them once and writes TFRecords that carry every
field of the source records plus coarse/coefficients [257] and coarse/embedding [E]
(face_gcn.data.tfrecords), and DIR/coarse_cache.json (MANIFEST_FILE). `face-gcn train` reads such
a folder like any other training set and then never runs the CNNs or the fit per step.
Augmentation is refused on a cache: a shifted or recoloured photo no longer matches its cached
coarse stage (the pipeline checks).
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf

from face_gcn import fileio
from face_gcn.data import pipeline, tfrecords
from face_gcn.morphable.model import MorphableModel
from face_gcn.nets import recognition
from face_gcn.nets import regressor as regressor_lib
from face_gcn.reconstruction import forward

MANIFEST_FILE = "coarse_cache.json"
FORMAT = "face_gcn coarse cache v1"
LANDMARK_SOURCES = ("detected", "ground_truth68", "detected68")


def read_manifest(path: str) -> dict | None:
    """DIR/coarse_cache.json of a folder, or None when ``path`` is no coarse cache (a glob, plain data)."""
    manifest_path = os.path.join(path, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        return None
    manifest = fileio.read_format_json(manifest_path, FORMAT, "manifest")
    size = manifest.get("embedding_size")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"{manifest_path}: embedding_size must be a positive integer, got {size!r}")
    return manifest


def fit_landmarks(batch, source: str):
    """The landmarks the fit uses: "detected" (MTCNN's 5 of every record), "ground_truth68" (a
    synthetic set's true 68, standing for a 68-point detector) or "detected68" (dlib's 68 that
    prepare-data stored; every face of the batch must carry them: a coarse cache, which fits the
    others with their 5, is the way to use them on data where some lack them)."""
    if source not in LANDMARK_SOURCES:
        raise ValueError(f"landmark source must be one of {LANDMARK_SOURCES}, got {source!r}")
    if source == "detected68":
        tf.debugging.assert_equal(tf.reduce_min(batch["has_landmarks68_detected"]), 1.0, message=(
            "landmarks=detected68 needs every face of the batch to carry detected 68 landmarks "
            "(prepare-data with dlib); a coarse cache (prepare-coarse) fits the others with their 5"))
        return batch["landmarks68_detected"]
    return batch["landmarks68" if source == "ground_truth68" else "landmarks"]


def run_coarse_stage(run, batch, source: str):
    """The coarse stage of a batch: run(images, masks, landmarks) -> (coefficients [B, 257], embedding
    [B, E]) as NumPy, and the number of faces fitted with 5 landmarks where ``source`` is "detected68"
    (those without detected 68: the batch is fitted as two groups)."""
    images, masks = batch["image"], batch["mask"][..., 0]
    if source != "detected68":
        coefficients, embedding = run(images, masks, fit_landmarks(batch, source))
        return coefficients.numpy(), embedding.numpy(), 0
    has68 = batch["has_landmarks68_detected"].numpy() > 0.5
    outputs = [None] * len(has68)
    for with68, points in ((True, batch["landmarks68_detected"]), (False, batch["landmarks"])):
        index = np.flatnonzero(has68 == with68)
        if len(index):
            coefficients, embedding = run(tf.gather(images, index), tf.gather(masks, index), tf.gather(points, index))
            for row, i in enumerate(index):
                outputs[i] = (coefficients[row].numpy(), embedding[row].numpy())
    return (np.stack([o[0] for o in outputs]), np.stack([o[1] for o in outputs]), int(np.sum(~has68)))


def coarse_function(morphable: MorphableModel, regressor, recognizer, fit_steps: int, backend: str = "auto"):
    """A tf.function (images [B, S, S, 3] 0-255, masks [B, S, S], landmarks [B, K, 2]) ->
    (coarse coefficients [B, 257], embedding [B, E]): the fixed coarse stage."""

    @tf.function(reduce_retracing=True, autograph=False)
    def run(images, masks, landmarks):
        regressed = regressor_lib.regress(regressor, images, training=False)
        coefficients = forward.coarse_coefficients(morphable, images, regressed.coefficients, fit_steps, masks,
                                                   landmarks, backend)
        return coefficients, forward.image_embedding(regressed.features, recognizer, images)

    return run


def write_coarse_cache(data: str, out_dir: str, morphable: MorphableModel, regressor, recognizer=None,
                       fit_steps: int = 0, landmarks: str = "detected", batch_size: int = 16,
                       backend: str = "auto", progress: bool = False, describe: dict | None = None) -> dict:
    """Runs the coarse stage over every record of ``data`` (folder or glob) into ``out_dir``.

    Writes one shard per source shard (same names, records in the same order) and the manifest:
    format, image_size, embedding_size, fit_steps, landmarks, num_images, shards, seconds, plus
    ``describe`` (e.g. the regressor's path). Returns the manifest.
    """
    if os.path.abspath(out_dir) == os.path.abspath(data):
        raise ValueError("the coarse cache must be written to a folder of its own, not over its data")
    if fit_steps < 0 or batch_size < 1:
        raise ValueError(f"fit_steps must be >= 0 and batch_size >= 1, got {fit_steps}, {batch_size}")
    size = int(regressor.input.shape[1])
    run = coarse_function(morphable, regressor, recognizer, fit_steps, backend)
    files = pipeline.shard_files(data)
    tfrecords.count_records(files)  # ValueError naming a truncated file, before any work
    os.makedirs(out_dir, exist_ok=True)
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm  # pylint: disable=import-outside-toplevel
        bar = tqdm(desc="prepare-coarse", unit="img")
    count, embedding_size, shards, fallbacks = 0, 0, [], 0
    try:
        for path in files:
            raw = tf.data.TFRecordDataset([path]).batch(batch_size)
            parsed = pipeline.make_dataset([path], size, batch_size, training=False)

            def records(raw=raw, parsed=parsed):
                nonlocal count, embedding_size, fallbacks
                for serialized, batch in zip(raw, parsed):
                    if landmarks == "ground_truth68" and float(tf.reduce_min(batch["has_ground_truth"])) < 1.0:
                        raise ValueError(f"{path}: landmarks=ground_truth68 needs every face to carry its 68 "
                                         "landmarks (synthetic data)")
                    coefficients, embedding, fallen_back = run_coarse_stage(run, batch, landmarks)
                    fallbacks += fallen_back
                    if not np.all(np.isfinite(coefficients)):
                        raise FloatingPointError(f"{path}: the coarse fit diverged (non-finite coefficients)")
                    embedding_size = embedding.shape[1]
                    for b, record in enumerate(serialized.numpy()):
                        example = tf.train.Example.FromString(record)
                        feature = example.features.feature
                        feature[tfrecords.COARSE_COEFFICIENTS_KEY].float_list.value[:] = coefficients[b].tolist()
                        feature[tfrecords.EMBEDDING_KEY].float_list.value[:] = embedding[b].tolist()
                        yield example.SerializeToString(deterministic=True)
                    count += len(coefficients)
                    if bar is not None:
                        bar.update(len(coefficients))

            try:
                tfrecords.write_shard(os.path.join(out_dir, os.path.basename(path)), records())
            except tf.errors.DataLossError as error:
                raise ValueError(tfrecords.data_loss_message([path], error)) from None
            shards.append(os.path.basename(path))
    finally:
        if bar is not None:
            bar.close()
    if count == 0:
        raise ValueError(f"{data}: no records to cache")
    manifest = {"format": FORMAT, "image_size": size, "embedding_size": int(embedding_size),
                "fit_steps": int(fit_steps), "landmarks": landmarks, "landmarks_fallback_to_5": fallbacks,
                "recognizer": None if recognizer is None else recognition.kind_of(recognizer),
                "num_images": count, "shards": shards, "source": os.path.abspath(data) if os.path.isdir(data) else data,
                "seconds": round(time.perf_counter() - started, 2), **(describe or {})}
    fileio.write_json(os.path.join(out_dir, MANIFEST_FILE), manifest)
    return manifest
