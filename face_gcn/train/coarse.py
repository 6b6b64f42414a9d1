"""The coarse stage: regressor -> render_coefficients -> Deng's weighted losses, trained with TrainLoop."""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from face_gcn.data import pipeline
from face_gcn.losses import coarse as coarse_losses
from face_gcn.losses import identity as identity_losses
from face_gcn.losses import photometric
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import configured
from face_gcn.nets import facenet as facenet_lib
from face_gcn.nets import regressor as regressor_lib
from face_gcn.render import face_renderer
from face_gcn.train.loop import TrainLoop, exponential_decay, select_strategy

# Defaults = Deng's weights (DESIGN.md); YAML files and --set overrides may change only these keys.
SCHEMA = {
    "model": {"path": ""},  # empty: the demo model
    "data": {"train": "", "crop_size": 224, "batch_size": 4, "seed": 0, "shuffle_buffer": 64},
    "nets": {"regressor_weights": "", "facenet_weights": ""},
    "loss": {"photometric": 1.92, "landmark": 1.6e-3, "identity": 0.2, "regularisation": 3e-4,
             "reflectance": 5.0, "gamma": 10.0},
    "train": {"steps": 10, "learning_rate": 1e-4, "decay_steps": 10000, "decay_rate": 0.98,
              "checkpoint_every": 100, "summary_every": 10, "mirrored": False},
}


def make_coarse_step(model, regressor, weights: dict, image_size: int, facenet=None):
    """batch {"image" [B,S,S,3] 0-255, "mask" [B,S,S] 0-1 or 0-255, "landmarks" [B,5,2] pixel indices}
    -> dict of weighted-loss terms and "total"."""
    skin = tf.constant(model.skin_mask, tf.float32)
    five_weights = tf.constant(coarse_losses.DENG_5_WEIGHTS, tf.float32)

    def step_fn(batch):
        images = tf.cast(batch["image"], tf.float32)
        mask = tf.cast(batch["mask"], tf.float32)
        mask = mask / tf.maximum(tf.reduce_max(mask), 1.0)  # accept 0-255 masks
        if mask.shape.rank == 4:
            mask = mask[..., 0]
        coefficients = regressor_lib.regress(regressor, images, training=True).coefficients
        render = face_renderer.render_coefficients(model, coefficients, image_size=image_size)
        blocks = coeff_lib.split_coefficients(coefficients)
        rendered = render.image * 255.0
        terms = {
            "photometric": photometric.pixel_loss(images, rendered, render.alpha * mask),
            # Render landmarks have pixel centres at i + 0.5; the data stores pixel indices.
            "landmark": coarse_losses.landmark_loss(coarse_losses.five_from_68(render.landmarks - 0.5),
                                                    tf.cast(batch["landmarks"], tf.float32), five_weights),
            "regularisation": coarse_losses.coefficient_regularisation(blocks.id, blocks.exp, blocks.tex),
            "reflectance": coarse_losses.reflectance_loss(render.albedo * 255.0, skin),
            "gamma": coarse_losses.gamma_loss(blocks.gamma),
        }
        if facenet is not None:
            composite = rendered * render.alpha[..., None] + images * (1.0 - render.alpha[..., None])
            terms["identity"] = identity_losses.identity_loss(facenet_lib.embed(facenet, images).embedding,
                                                              facenet_lib.embed(facenet, composite).embedding)
        losses = {name: weights[name] * value for name, value in terms.items()}
        losses["total"] = tf.add_n(list(losses.values()))
        return losses

    return step_fn


def train_coarse(config: dict, workdir: str, log=logging.info) -> dict:
    """Builds everything from a config (SCHEMA layout) and trains; returns the last losses."""
    data, train = config["data"], config["train"]
    if not data["train"]:
        raise ValueError("data.train must name the training TFRecords (folder or glob)")
    model = configured.load_configured(config["model"]["path"] or None) if config["model"]["path"] \
        else configured.load_demo()
    size = data["crop_size"]
    strategy = select_strategy(train["mirrored"])
    with strategy.scope():
        regressor = regressor_lib.build_regressor((size, size, 3), weights=config["nets"]["regressor_weights"] or None)
        facenet = None
        if config["nets"]["facenet_weights"]:
            facenet = facenet_lib.build_facenet(weights=config["nets"]["facenet_weights"])
        else:
            log("no FaceNet weights given (nets.facenet_weights): the perceptual identity loss is skipped")
        optimizer = keras.optimizers.Adam(exponential_decay(train["learning_rate"], train["decay_steps"],
                                                            train["decay_rate"]))
    dataset = pipeline.make_dataset(pipeline.shard_files(data["train"]), size, data["batch_size"], training=True,
                                    seed=data["seed"], shuffle_buffer=data["shuffle_buffer"], repeat=True)
    step_fn = make_coarse_step(model, regressor, config["loss"], size, facenet)

    def previews(batch):
        coefficients = regressor_lib.regress(regressor, batch["image"]).coefficients
        render = face_renderer.render_coefficients(model, coefficients, image_size=size)
        return {"input": tf.cast(batch["image"], tf.float32) / 255.0, "render": render.image}

    loop = TrainLoop(step_fn, regressor.trainable_variables, optimizer, workdir,
                     checkpoint_every=train["checkpoint_every"], summary_every=train["summary_every"],
                     trackables={"regressor": regressor}, image_fn=previews, path_key="source")
    return loop.run(dataset, train["steps"], log=log)
