"""The coarse stage: regressor -> render_coefficients -> Deng's weighted losses, trained with TrainLoop.

Loss terms (config key ``loss.<name>`` is each term's weight; defaults are Deng's, in Deng's units):
  photometric     skin-masked per-pixel colour distance, colours in [0, 1] (Deng divides by 255)
  landmark        5-point landmark error (data ``landmarks``), weights DENG_5_WEIGHTS
  landmark68      68-point landmark error on examples with ground truth (data ``landmarks68`` where
                  ``has_ground_truth``: synthetic faces), Deng's 68 weights
  identity        1 - cos of the recognition network's embeddings of the input and the render
                  composited over it (nets.recognizer, as texture training's: FaceNet with
                  ``nets.facenet_weights``, else dlib's descriptor; "none" skips the term)
  regularisation  ||id||^2 + 0.8 ||exp||^2 + 0.017 ||tex||^2
  reflectance     skin albedo variance, albedo in [0, 1]
  gamma           monochrome-light prior
  coefficients    supervised, per-block weighted mean squared error of the predicted coefficients
                  against the data's ``coefficients`` on examples with ground truth
                  (losses.coarse.coefficient_loss, COEFFICIENT_BLOCK_WEIGHTS); default weight 0. With a
                  weight > 0 the demo pretrains a stand-in for Deng's released regressor on synthetic data.
Landmark errors are measured in 224-pixel units (pixel differences x 224 / crop_size), the size
Deng's weight 1.6e-3 was set for, so the weights mean the same at any crop size.

Outputs in the workdir: checkpoints/ and events/ (TrainLoop), ``regressor.keras`` (REGRESSOR_FILE:
the whole trained regressor, load with face_gcn.nets.regressor.load_regressor) and
``train_coarse.json`` (SUMMARY_FILE: steps, steps/s, last losses, backbone, crop size).
"""

from __future__ import annotations

import logging
import math
import os

import keras
import tensorflow as tf

from face_gcn import fileio
from face_gcn.data import pipeline, tfrecords
from face_gcn.losses import coarse as coarse_losses
from face_gcn.losses import identity as identity_losses
from face_gcn.losses import photometric
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import configured
from face_gcn.nets import recognition
from face_gcn.nets import regressor as regressor_lib
from face_gcn.render import camera, face_renderer
from face_gcn.train import config as config_lib
from face_gcn.train.loop import TrainLoop, exponential_decay, select_strategy

REGRESSOR_FILE = "regressor.keras"
SUMMARY_FILE = "train_coarse.json"

# Defaults = Deng's weights (DESIGN.md); YAML files and --set overrides may change only these keys.
SCHEMA = {
    "model": {"path": ""},  # empty: the demo model
    "data": {"train": "", "crop_size": 224, "batch_size": 4, "seed": 0, "shuffle_buffer": 64},
    "nets": {"backbone": "resnet50", "regressor_weights": "", "recognizer": "auto", "facenet_weights": "",
             "face_descriptor_weights": ""},
    "loss": {"photometric": 1.92, "landmark": 1.6e-3, "landmark68": 1.6e-3, "identity": 0.2,
             "regularisation": 3e-4, "reflectance": 5.0, "gamma": 10.0, "coefficients": 0.0},
    "train": {"steps": 10, "learning_rate": 1e-4, "decay_steps": 10000, "decay_rate": 0.98,
              "checkpoint_every": 100, "summary_every": 10, "mirrored": False},
}
# Checked when a config is built (config.build_config(SCHEMA, ..., ranges=RANGES, choices=CHOICES)).
RANGES = {
    "data.crop_size": (32, 2048), "data.batch_size": (1, 4096), "data.seed": (0, None),
    "data.shuffle_buffer": (1, None),
    **{f"loss.{name}": (0.0, None) for name in SCHEMA["loss"]},
    "train.steps": (1, None), "train.learning_rate": (1e-12, 10.0), "train.decay_steps": (1, None),
    "train.decay_rate": (1e-6, 1.0), "train.checkpoint_every": (1, None), "train.summary_every": (1, None),
}
CHOICES = {"nets.backbone": regressor_lib.BACKBONES, "nets.recognizer": recognition.CHOICES}


def build_config(yaml_path: str | None = None, overrides=()) -> dict:
    """A coarse-training config: SCHEMA <- the YAML file <- overrides, ranges and choices checked."""
    return config_lib.build_config(SCHEMA, yaml_path, overrides, ranges=RANGES, choices=CHOICES)


def make_coarse_step(model, regressor, weights: dict, image_size: int, recognizer=None):
    """The step function of the coarse stage.

    Args:
      model: MorphableModel.
      regressor: from nets.regressor.build_regressor (run with training=True).
      weights: {term name: weight} (SCHEMA["loss"] keys; a missing key takes SCHEMA's default).
      image_size: S.
      recognizer: optional frozen recognition network (nets.recognition); adds the "identity" term.
    Returns:
      step_fn(batch) -> {term: weighted scalar loss, ..., "total"}, batch a dict with "image"
      [B, S, S, 3] 0-255, "mask" [B, S, S(, 1)] 0-1 or 0-255, "landmarks" [B, 5, 2] pixel indices,
      and optionally "landmarks68" [B, 68, 2] pixel indices, "coefficients" [B, 257] and
      "has_ground_truth" [B] (absent: no example has ground truth).
    """
    skin = tf.constant(model.skin_mask, tf.float32)
    five_weights = tf.constant(coarse_losses.DENG_5_WEIGHTS, tf.float32)
    weights68 = tf.constant(coarse_losses.DENG_68_WEIGHTS, tf.float32)
    to_deng_pixels = float(camera.DENG_IMAGE_SIZE) / float(image_size)

    def step_fn(batch):
        images = tf.cast(batch["image"], tf.float32)
        mask = tf.cast(batch["mask"], tf.float32)
        mask = mask / tf.maximum(tf.reduce_max(mask), 1.0)  # accept 0-255 masks
        if mask.shape.rank == 4:
            mask = mask[..., 0]
        batch_size = tf.shape(images)[0]
        has_truth = tf.cast(batch["has_ground_truth"], tf.float32) if "has_ground_truth" in batch \
            else tf.zeros([batch_size], tf.float32)
        coefficients = regressor_lib.regress(regressor, images, training=True).coefficients
        render = face_renderer.render_coefficients(model, coefficients, image_size=image_size)
        blocks = coeff_lib.split_coefficients(coefficients)
        # Render landmarks have pixel centres at i + 0.5; the data stores pixel indices.
        landmarks68 = (render.landmarks - 0.5) * to_deng_pixels
        terms = {
            "photometric": photometric.pixel_loss(images / 255.0, render.image, render.alpha * mask),
            "landmark": coarse_losses.landmark_loss(
                coarse_losses.five_from_68(landmarks68),
                tf.cast(batch["landmarks"], tf.float32) * to_deng_pixels, five_weights),
            "regularisation": coarse_losses.coefficient_regularisation(blocks.id, blocks.exp, blocks.tex),
            "reflectance": coarse_losses.reflectance_loss(render.albedo, skin),
            "gamma": coarse_losses.gamma_loss(blocks.gamma),
        }
        if "landmarks68" in batch:
            terms["landmark68"] = coarse_losses.landmark_loss(
                landmarks68, tf.cast(batch["landmarks68"], tf.float32) * to_deng_pixels, weights68,
                example_weights=has_truth)
        if "coefficients" in batch:
            terms["coefficients"] = coarse_losses.coefficient_loss(
                coefficients, batch["coefficients"], example_weights=has_truth)
        if recognizer is not None:
            rendered = render.image * 255.0
            alpha = render.alpha[..., None]
            composite = rendered * alpha + images * (1.0 - alpha)
            terms["identity"] = identity_losses.identity_loss(
                recognition.embed(recognizer, images).embedding,
                recognition.embed(recognizer, composite).embedding)
        losses = {name: float(weights.get(name, SCHEMA["loss"][name])) * value for name, value in terms.items()}
        losses["total"] = tf.add_n(list(losses.values()))
        return losses

    return step_fn


def _load_model(path: str):
    return configured.load_configured(path) if path else configured.load_demo()


def train_coarse(config: dict, workdir: str, log=logging.info) -> dict:
    """Builds everything from a config (SCHEMA layout), trains (resuming a run in ``workdir``) and
    saves the regressor.

    Returns:
      {"losses": last step's {term: float} ({} when nothing was left to train),
       "steps": the global step reached, "steps_run": steps run by this call,
       "steps_per_second": wall-clock rate excluding the first (tracing) step, None
       when fewer than 3 steps ran, "regressor": path of REGRESSOR_FILE}; the same is written to
      ``workdir/train_coarse.json``.
    """
    data, train, nets = config["data"], config["train"], config["nets"]
    if not data["train"]:
        raise ValueError("data.train must name the training TFRecords (folder or glob)")
    if nets["backbone"] not in regressor_lib.BACKBONES:
        raise ValueError(f"nets.backbone must be one of {', '.join(regressor_lib.BACKBONES)}, "
                         f"got {nets['backbone']!r}")
    model = _load_model(config["model"]["path"])
    size = data["crop_size"]
    os.makedirs(workdir, exist_ok=True)
    keras.utils.set_random_seed(data["seed"])  # initial weights, critic mixes, dropout: reproducible runs
    strategy = select_strategy(train["mirrored"])
    with strategy.scope():
        regressor = regressor_lib.build_regressor((size, size, 3), weights=nets["regressor_weights"] or None,
                                                  backbone=nets["backbone"])
        recognizer = recognition.load(nets["recognizer"], nets["facenet_weights"], nets["face_descriptor_weights"])
        if recognizer is None:
            log("nets.recognizer=none: the perceptual identity loss is skipped")
        optimizer = keras.optimizers.Adam(exponential_decay(train["learning_rate"], train["decay_steps"],
                                                            train["decay_rate"]))
    files = pipeline.shard_files(data["train"])
    tfrecords.count_records(files)  # ValueError naming a truncated file
    dataset = pipeline.make_dataset(files, size, data["batch_size"], training=True,
                                    seed=data["seed"], shuffle_buffer=data["shuffle_buffer"], repeat=True)
    step_fn = make_coarse_step(model, regressor, config["loss"], size, recognizer)

    def previews(batch):
        coefficients = regressor_lib.regress(regressor, batch["image"]).coefficients
        render = face_renderer.render_coefficients(model, coefficients, image_size=size)
        return {"input": tf.cast(batch["image"], tf.float32) / 255.0, "render": render.image}

    loop = TrainLoop(step_fn, regressor.trainable_variables, optimizer, workdir,
                     checkpoint_every=train["checkpoint_every"], summary_every=train["summary_every"],
                     trackables={"regressor": regressor}, image_fn=previews, path_key="source", strategy=strategy)
    start = loop.restore()
    try:
        losses = loop.run(dataset, train["steps"], resume=False, log=log)
    except tf.errors.DataLossError as error:
        raise ValueError(tfrecords.data_loss_message(files, error)) from None
    steps = int(loop.step.numpy())
    path = os.path.join(workdir, REGRESSOR_FILE)
    with fileio.atomic_path(path) as tmp:
        regressor.save(tmp)
    rate = float(loop.steps_per_second)
    rate = rate if steps - start >= 3 and math.isfinite(rate) else None
    result = {"losses": losses, "steps": steps, "steps_run": steps - start,
              "steps_per_second": rate, "regressor": path}
    fileio.write_json(os.path.join(workdir, SUMMARY_FILE),
                      dict(result, backbone=nets["backbone"], crop_size=size, batch_size=data["batch_size"]))
    if result["steps_per_second"] is not None:
        log(f"train-coarse: {result['steps_per_second']:.3g} steps/s (first step excluded)")
    log(f"train-coarse: regressor saved to {path}")
    return result
