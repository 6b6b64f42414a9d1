"""The paper's training stage: texture GCNs on top of a fixed coarse regressor (Lin et al. 2020, Eq. 4-8).

L = s1 (L_pix(I, R') + s2 L_id(I, R') + s3 L_adv) + s4 (L_vert(T, T') + L_vert(T_p, T~'))
    + loss.fc_l2 sum_FC (||W||^2 + ||b||^2) / 2   (the authors' weight decay of the GCNs' FC layers)

Units: images, renders and colours are linear RGB in [0, 1] in every term. R' is composited over
the photo (render where it covers the face mask, photo elsewhere; ``loss.composite``) for L_id
and the critic, which sees [-1, 1].
The critic is trained with WGAN-GP (penalty 10), ``train.critic_steps`` updates per generator step
(DESIGN: 5), each on a fresh batch. s1/s4 follow ``loss.schedule`` over epochs of the training set.
Ablation rows of Table 2 switch terms off (loss.identity / adversarial / vertex) or swap the
Refiner (nets.refiner: gcn | fc | uv_cnn).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from face_gcn.data import mask_morphology, pipeline, tfrecords
from face_gcn.graph import hierarchy as hierarchy_lib
from face_gcn.losses import adversarial, authors, identity as identity_losses, photometric, schedule, vertex
from face_gcn.morphable import configured, symmetry
from face_gcn.nets import baselines, discriminator, gcn, recognition
from face_gcn.nets import regressor as regressor_lib
from face_gcn.reconstruction import coarse_cache, forward, model_dir
from face_gcn.train import config as config_lib
from face_gcn.train.loop import Objective, TrainLoop, exponential_decay, image_grid, select_strategy

REFINERS = ("gcn", "fc", "uv_cnn")
COMPOSITES = ("face", "render")
IDENTITY_FEATURES = ("features", "embedding")  # fields of recognition.RecognitionOutputs
MODEL_SUBDIR = "model"

# Defaults = the paper / authors' code (DESIGN.md); YAML files and --set overrides change only these keys.
SCHEMA = {
    "model": {"path": ""},  # empty: the built-in demo model
    "data": {"train": "", "crop_size": 224, "batch_size": 4, "seed": 0, "shuffle_buffer": 256,
             "augment": True},
    "nets": {
        "regressor": "",          # trained regressor: .keras (train-coarse) or .weights.h5 (with backbone)
        "backbone": "resnet50",   # only used to build the regressor for a .weights.h5 file
        # The frozen face-recognition network of L_id and of the image embedding (nets.recognition):
        # "auto" (FaceNet when facenet_weights is given, the paper's; else dlib's descriptor, whose weights
        # the face_recognition_models package carries), "facenet", "face_descriptor" or "none" (L_id off,
        # the embedding is the regressor's features alone).
        "recognizer": "auto",
        "facenet_weights": "",    # Keras weights from `face-gcn convert-facenet`
        "face_descriptor_weights": "",  # empty: the packaged dlib weights (converted once, cached)
        "refiner": "gcn",
        # The texture GCNs (face_gcn.nets.gcn): "normal" (authors' default) or "resnet" (their
        # residual-block model). Empty widths: the variant's (gcn.DECODER_WIDTHS / REFINER_WIDTHS).
        "gcn_variant": "normal",
        "decoder_widths": [],
        "refiner_widths": [],
        "refiner_latent": gcn.REFINER_LATENT,
        # Up-steps of the Refiner that concatenate the encoder's features: 2 (authors), or up to the
        # number of levels (4: full-resolution skips, ours).
        "refiner_skip_levels": 2,
        # Laplacian rescaling: "fixed" (lmax = 2, L~ = L - I, authors) or "exact" (ours).
        "lmax": "fixed",
        # Combiner's initial kernel: "he_normal" (authors) or "zeros" (ours: starts mid-grey, unsaturated).
        "combiner_init": "he_normal",
        # What the Combiner reads: "colors" (the Decoder's and Refiner's 3-channel maps, authors) or
        # "features" (ours: their last 16 + 16 feature channels; normal variant only).
        "combiner_input": "colors",
        # Mesh decimation: "coma" (CoMA's quadrics) or "boundary_preserving" (ours: the open rim of
        # the face keeps its shape down the hierarchy).
        "decimation": "coma",
        # What the Refiner reads of the photo: "colors" (T_p, the paper) or "shading_removed" (T_p
        # divided by the coarse stage's SH shading; forward.FaceGCN.refiner_photo).
        "refiner_photo": "colors",
        # The face mask T_p's visibility reads: "authors" (dilated 5x5 once, eroded 9x9 twice at 224 px,
        # as their code; footprints scale with the crop) or "none" (the mask as given). Saved in the model.
        "mask_erosion": "authors",
        "chebyshev_order": 6,
        "hierarchy_factors": [4, 4, 4, 4],
        "critic_normalization": "batch",  # "batch" (authors), "layer" or "none" (nets.discriminator)
        "uv_resolution": 128,
        # "regressor" (the method), or "ground_truth": the synthetic set's coefficients as a perfect
        # coarse stage, for experiments that separate texture quality from coarse-stage error.
        "coarse_coefficients": "regressor",
    },
    # The coarse stage: the regressor, then fit_steps rendered steps of the batched fit
    # (face_gcn.fit.coarse_fit.refinement_stages; 0 = the regressor alone, as the paper) against the
    # landmarks: "detected" (the records' MTCNN 5), "ground_truth68" (a synthetic set's true 68) or
    # "detected68" (dlib's 68 that prepare-data --landmarks68 stored; through a coarse cache, which fits faces
    # without them to their 5; a training batch without a cache needs them on every face). A coarse
    # cache (face-gcn prepare-coarse) as data.train supplies both precomputed; its values must match.
    "coarse": {"fit_steps": 0, "landmarks": "detected"},
    # objective: "paper" (Eq. 4-8) or "authors" (their code's data_loss: L1 vertex terms in [-1, 1] units, a
    # 0.3 fill-in of hidden vertices by the lit 3DMM colours, 0.5 albedo symmetry, 0.01 skin variance; L_pix
    # logged only; L_adv x s3 outside s1; face_gcn.losses.authors)
    "loss": {"objective": "paper", "schedule": "authors", "identity": True, "adversarial": True, "vertex": True,
             "s2": schedule.S2_IDENTITY, "s3": schedule.S3_ADVERSARIAL,
             # the recognizer's output L_id compares: "features" (FaceNet's 1792-d AvgPool, the authors'; dlib's
             # 256-d pool) or "embedding" (FaceNet's 512-d, dlib's 128-d descriptor; unit length)
             "identity_features": "features",
             # where R' is pasted over the photo for L_id and the critic: "face" (render coverage x face
             # mask, the authors') or "render" (all of the render's coverage)
             "composite": "face",
             # WGAN-GP interpolation weight: "per_batch" (one draw per batch, the authors') or "per_sample"
             "penalty_mix": "per_batch",
             # weight of sum (||W||^2 + ||b||^2) / 2 over the GCNs' FC layers (authors: 5e-4), added unscaled
             "fc_l2": 5e-4,
             # what an epoch of the s1/s4 schedule counts: "generator_steps" (authors: epoch_steps generator
             # steps) or "batches" (data passes: a step with critic_steps batches counts critic_steps)
             "epoch_unit": "generator_steps"},
    # Optimisers as the authors' code: Adam(0.9, 0.999, eps 1e-8) for the GCNs and the critic alike, the
    # learning rate x decay_rate once per epoch (decay_steps 0 = one epoch; staircase), gradients clipped
    # to clip_norm per variable (0: none), the critic trained only from the first step with s1 > 0
    # (critic_start "s1_positive"; "always": from step 0).
    "train": {"steps": 1000, "epoch_steps": 0, "learning_rate": 1e-4, "decay_steps": 0, "decay_rate": 0.98,
              "decay_staircase": True, "adam_epsilon": 1e-8, "clip_norm": 5.0,
              "critic_steps": 5, "critic_learning_rate": 1e-4, "critic_betas": [0.9, 0.999],
              "critic_start": "s1_positive", "checkpoint_every": 500, "summary_every": 50,
              "mirrored": False, "mixed_precision": False},
}
EPOCH_UNITS = ("generator_steps", "batches")
OBJECTIVES = ("paper", "authors")
CRITIC_STARTS = ("s1_positive", "always")


@dataclasses.dataclass(frozen=True)
class TextureTraining:
    """Everything a texture training run is made of (returned for tests and the demo)."""

    nets: forward.FaceGCN
    critic: keras.Model | None
    loop: TrainLoop
    epoch_steps: int
    s1: tf.Variable  # the schedule's current weights (loop.on_step_start sets them)
    s4: tf.Variable


def precision_policy(requested: bool, num_gpus: int) -> str:
    """Keras dtype policy for the CNNs: mixed_float16 only when asked and a GPU exists."""
    return "mixed_float16" if requested and num_gpus > 0 else "float32"


def config_morphable(config: dict):
    """The config's morphable model: model.path, or the built-in demo model when empty."""
    return configured.load_configured(config["model"]["path"]) if config["model"]["path"] else configured.load_demo()


def load_regressor(nets_config: dict, image_size: int, log=logging.info) -> keras.Model:
    """The fixed coarse regressor of the config (a .keras model or a weights file; none: untrained)."""
    path = nets_config["regressor"]
    if path.endswith(".keras"):
        regressor = regressor_lib.load_regressor(path)
    else:
        kwargs = {} if nets_config["backbone"] == "resnet50" else {"backbone": nets_config["backbone"]}
        if not path:
            log("no trained regressor given (nets.regressor): the coarse stage is the mean face")
        regressor = regressor_lib.build_regressor((image_size, image_size, 3), weights=path or None, **kwargs)
    if tuple(regressor.input.shape[1:]) != (image_size, image_size, 3):
        raise ValueError(f"regressor takes {tuple(regressor.input.shape[1:])} images, data.crop_size is {image_size}")
    regressor.trainable = False
    return regressor


def load_recognizer(nets_config: dict, log=logging.info) -> keras.Model | None:
    """The config's frozen recognition network (nets.recognizer; None for "none")."""
    recognizer = recognition.load(nets_config["recognizer"], nets_config["facenet_weights"],
                                  nets_config["face_descriptor_weights"])
    if recognizer is not None:
        log(f"identity network: {forward.describe_recognizer(recognizer)} "
            f"({recognition.feature_size(recognizer)}-d features in the image embedding)")
    return recognizer


def gcn_config(nets_config: dict, embedding_size: int) -> gcn.GCNConfig:
    """The GCNConfig of a config's nets section (empty widths: the variant's)."""
    return gcn.GCNConfig(embedding_size=embedding_size, variant=nets_config["gcn_variant"],
                         decoder_widths=tuple(nets_config["decoder_widths"]) or None,
                         refiner_widths=tuple(nets_config["refiner_widths"]) or None,
                         refiner_latent=nets_config["refiner_latent"],
                         refiner_skip_levels=nets_config["refiner_skip_levels"], K=nets_config["chebyshev_order"],
                         lmax=nets_config["lmax"], combiner_init=nets_config["combiner_init"],
                         combiner_input=nets_config["combiner_input"])


def build_texture_gcn(morphable, nets_config: dict, embedding_size: int) -> keras.Model:
    """Decoder + Refiner (GCN, or a Table 2 baseline) + Combiner for the morphable model's mesh."""
    check_section("nets", nets_config)
    config = gcn_config(nets_config, embedding_size)
    hierarchy = hierarchy_lib.load_or_build_hierarchy(
        morphable.mean_shape, morphable.triangles, tuple(nets_config["hierarchy_factors"]),
        boundary_weight=hierarchy_lib.decimation_boundary_weight(nets_config["decimation"]))
    # The baselines end like the GCN Refiner: a 3-channel colour map (bias + ELU) for the Combiner.
    refiner = None
    if nets_config["refiner"] == "fc":
        refiner = baselines.fully_connected_refiner(morphable.num_vertices, channels=gcn.COLOR_CHANNELS)
    elif nets_config["refiner"] == "uv_cnn":
        refiner = baselines.uv_cnn_refiner(morphable.mean_shape, morphable.triangles,
                                           resolution=nets_config["uv_resolution"], channels=gcn.COLOR_CHANNELS)
    return gcn.build_texture_gcn(hierarchy, config, refiner=refiner)


COARSE_SOURCES = ("regressor", "ground_truth")
# Every numeric key's range and every closed string key's choices, checked when a config is built
# (config.build_config(SCHEMA, ..., ranges=RANGES, choices=CHOICES)).
RANGES = {
    "data.crop_size": (32, 2048), "data.batch_size": (1, 4096), "data.seed": (0, None),
    "data.shuffle_buffer": (1, None),
    "nets.refiner_latent": (1, None), "nets.refiner_skip_levels": (0, 16), "nets.chebyshev_order": (1, 32),
    "nets.uv_resolution": (8, 2048), "coarse.fit_steps": (0, 100000),
    "loss.s2": (0.0, None), "loss.s3": (0.0, None), "loss.fc_l2": (0.0, None),
    "train.steps": (1, None), "train.epoch_steps": (0, None), "train.learning_rate": (1e-12, 10.0),
    "train.decay_steps": (0, None), "train.decay_rate": (1e-6, 1.0), "train.adam_epsilon": (1e-12, 1.0),
    "train.clip_norm": (0.0, None), "train.critic_steps": (1, 1000), "train.critic_learning_rate": (1e-12, 10.0),
    "train.checkpoint_every": (1, None), "train.summary_every": (1, None),
}
CHOICES = {
    "nets.refiner": REFINERS, "nets.recognizer": recognition.CHOICES, "nets.gcn_variant": gcn.VARIANTS, "nets.lmax": gcn.LMAX_MODES,
    "nets.combiner_input": gcn.COMBINER_INPUTS, "nets.decimation": tuple(hierarchy_lib.DECIMATIONS),
    "nets.refiner_photo": forward.REFINER_PHOTO_INPUTS, "nets.critic_normalization": discriminator.NORMALIZATIONS,
    "nets.mask_erosion": mask_morphology.MASK_EROSIONS, "nets.coarse_coefficients": COARSE_SOURCES,
    "coarse.landmarks": coarse_cache.LANDMARK_SOURCES, "loss.objective": OBJECTIVES,
    "loss.schedule": schedule.SCHEDULES, "loss.identity_features": IDENTITY_FEATURES, "loss.composite": COMPOSITES,
    "loss.penalty_mix": adversarial.PENALTY_MIXES, "loss.epoch_unit": EPOCH_UNITS,
    "train.critic_start": CRITIC_STARTS,
}


def build_config(yaml_path: str | None = None, overrides=()) -> dict:
    """A texture-training config: SCHEMA <- the YAML file <- overrides, ranges and choices checked."""
    return config_lib.build_config(SCHEMA, yaml_path, overrides, ranges=RANGES, choices=CHOICES)


def check_section(section: str, values: dict) -> None:
    """RANGES and CHOICES of one config section, for a function given only that section."""
    inside = lambda limits: {path: limit for path, limit in limits.items() if path.startswith(section + ".")}
    config_lib.check_limits({section: values}, inside(RANGES), inside(CHOICES))


def coarse_inputs(batch, coarse_source: str = "regressor", landmarks: str = "detected") -> dict:
    """The keyword arguments of forward.reconstruct that give a batch its coarse stage: a coarse
    cache's coefficients and embedding, the ground truth (nets.coarse_coefficients=ground_truth), or
    the landmarks the fit needs."""
    if "embedding" in batch:
        return {"coefficients": batch["coarse_coefficients"], "embedding": batch["embedding"]}
    if coarse_source == "ground_truth":
        return {"coefficients": batch["coefficients"]}
    return {"landmarks": coarse_cache.fit_landmarks(batch, landmarks)}


def make_texture_step(nets: forward.FaceGCN, critic, loss_config: dict, s1: tf.Variable, s4: tf.Variable,
                      coarse_source: str = "regressor", landmarks: str = "detected", penalty_rng=None):
    """batch {"image" [B,S,S,3] 0-255, "mask" [B,S,S] 0-1[, "coefficients" [B, 257]]} -> dict of loss
    terms, "total" and "critic". penalty_rng: tf.random.Generator of the gradient penalty's mixes."""
    use_identity = loss_config["identity"] and nets.recognizer is not None
    use_adversarial = loss_config["adversarial"] and critic is not None
    use_vertex = loss_config["vertex"]
    s2, s3 = float(loss_config["s2"]), float(loss_config["s3"])
    check_section("loss", loss_config)
    fc_l2 = float(loss_config["fc_l2"])
    identity_output = loss_config["identity_features"]
    face_composite = loss_config["composite"] == "face"
    authors_objective = loss_config["objective"] == "authors"
    if authors_objective:
        if not use_vertex:
            raise ValueError("loss.objective=authors has its vertex terms built in; loss.vertex=false applies "
                             "to the paper's objective only")
        mirror_pairs = symmetry.model_mirror_pairs(nets.morphable)
        skin = np.asarray(nets.morphable.skin_mask, bool)

    def step_fn(batch):
        images = tf.cast(batch["image"], tf.float32)
        mask = tf.cast(batch["mask"], tf.float32)
        if mask.shape.rank == 4:
            mask = mask[..., 0]
        result = forward.reconstruct(nets, images, face_mask=mask, training=True,
                                     **coarse_inputs(batch, coarse_source, landmarks))
        photo = images / 255.0
        alpha = (result.refined_alpha * mask if face_composite else result.refined_alpha)[..., tf.newaxis]
        composite = result.refined_image * alpha + photo * (1.0 - alpha)
        zero = tf.constant(0.0)
        terms = {"pixel": photometric.pixel_loss(photo, result.refined_image, result.refined_alpha * mask)}
        if use_identity:
            real_id = getattr(recognition.embed(nets.recognizer, images), identity_output)
            render_id = getattr(recognition.embed(nets.recognizer, composite * 255.0), identity_output)
            terms["identity"] = identity_losses.identity_loss(real_id, render_id)
        else:
            terms["identity"] = zero
        losses = {}
        if use_adversarial:
            real, fake = 2.0 * photo - 1.0, 2.0 * composite - 1.0
            terms["adversarial"] = adversarial.generator_loss(critic, fake)
            losses["critic"], critic_parts = adversarial.critic_loss(critic, real, fake, mix=loss_config["penalty_mix"],
                                                                     rng=penalty_rng)
            losses.update({f"critic_{k}": v for k, v in critic_parts.items()})
        else:
            terms["adversarial"] = zero
        if authors_objective:
            visibility = result.samples.visibility
            terms.update(
                refine=authors.refine_l1(result.refined_albedo, result.coarse.albedo),
                project=authors.projected_l1(result.refined_colors, result.samples.colors, visibility),
                fill=authors.fill_l1(result.refined_colors, result.coarse.colors, visibility),
                symmetry=authors.symmetry_loss(result.refined_albedo, mirror_pairs),
                skin_variance=authors.skin_variance(result.refined_albedo, skin))
            losses.update(terms)
            # L_pix is logged only; the generator's critic term is added outside s1, as theirs
            losses["total"] = authors.data_loss(s4, s1, terms["refine"], terms["project"], terms["fill"],
                                                terms["identity"], terms["symmetry"], terms["skin_variance"]) \
                + s3 * terms["adversarial"]
        else:
            if use_vertex:
                terms["vertex_albedo"] = vertex.vertex_loss(result.refined_albedo,
                                                            tf.clip_by_value(result.coarse.albedo, 0.0, 1.0))
                terms["vertex_projected"] = vertex.vertex_loss(result.refined_colors, result.samples.colors,
                                                               result.samples.visibility)
            else:
                terms["vertex_albedo"] = terms["vertex_projected"] = zero
            weights = schedule.LossWeights(s1=s1, s4=s4, s2=s2, s3=s3)
            losses.update(terms)
            losses["total"] = schedule.total_loss(weights, terms["pixel"], terms["identity"], terms["adversarial"],
                                                  terms["vertex_albedo"], terms["vertex_projected"])
        if fc_l2 > 0:  # the authors add it outside the s1/s4 weights
            losses["regularization"] = fc_l2 * gcn.fully_connected_l2(nets.texture_gcn)
            losses["total"] += losses["regularization"]
        losses["s1"], losses["s4"] = tf.identity(s1), tf.identity(s4)
        return losses

    return step_fn


def previews(nets: forward.FaceGCN, coarse_source: str = "regressor", landmarks: str = "detected"):
    """batch -> {"input | coarse | refined": [B, S, 3S, 3]} (renders composited over the photo)."""
    def image_fn(batch):
        images = tf.cast(batch["image"], tf.float32)
        mask = batch["mask"][..., 0] if batch["mask"].shape.rank == 4 else batch["mask"]
        result = forward.reconstruct(nets, images, face_mask=mask, **coarse_inputs(batch, coarse_source, landmarks))
        photo = images / 255.0
        over = lambda render, alpha: render * alpha[..., None] + photo * (1.0 - alpha[..., None])
        return {"input | coarse | refined": image_grid([
            photo, over(result.coarse.image, result.coarse.alpha),
            over(result.refined_image, result.refined_alpha)])}
    return image_fn


def setup_texture_training(config: dict, workdir: str, log=logging.info) -> tuple[TextureTraining, tf.data.Dataset]:
    """Builds the networks, critic, optimizers, loop and dataset of a config (SCHEMA layout)."""
    data, nets_config, train, loss_config = config["data"], config["nets"], config["train"], config["loss"]
    config_lib.check_limits(config, RANGES, CHOICES)  # also for a config dict not made by build_config
    if not data["train"]:
        raise ValueError("data.train must name the training TFRecords (folder or glob)")
    _check_critic_betas(train["critic_betas"])
    coarse_source = nets_config["coarse_coefficients"]
    if coarse_source == "ground_truth" and data["augment"]:
        raise ValueError("nets.coarse_coefficients=ground_truth needs data.augment=false: colour jitter and "
                         "shifts would no longer match the stored coefficients")
    coarse = config["coarse"]
    cache = coarse_cache.read_manifest(data["train"]) if os.path.isdir(data["train"]) else None
    if cache is not None:
        if data["augment"]:
            raise ValueError(f"{data['train']} is a coarse cache: set data.augment=false (an augmented photo no longer "
                             "matches its cached coarse stage)")
        for key in ("fit_steps", "landmarks"):
            if cache[key] != coarse[key]:
                raise ValueError(f"{data['train']} was cached with {key}={cache[key]!r} but the config has "
                                 f"coarse.{key}={coarse[key]!r}")
        if coarse_source == "ground_truth":
            raise ValueError("nets.coarse_coefficients=ground_truth reads the synthetic set itself, not a coarse cache")
        log(f"coarse cache: {cache['num_images']} faces with precomputed coarse coefficients and embeddings")
    size = data["crop_size"]
    files = pipeline.shard_files(data["train"])
    num_records = tfrecords.count_records(files)  # ValueError naming a truncated file, before any network is built
    morphable = config_morphable(config)
    policy = precision_policy(train["mixed_precision"], len(tf.config.list_physical_devices("GPU")))
    if train["mixed_precision"] and policy == "float32":
        log("train.mixed_precision needs a GPU; training in float32")
    epoch_steps = train["epoch_steps"] or max(1, num_records // data["batch_size"])
    decay_steps = train["decay_steps"] or epoch_steps
    keras.utils.set_random_seed(data["seed"])  # initial weights, critic mixes, dropout: reproducible runs
    strategy = select_strategy(train["mirrored"])
    previous_policy = keras.mixed_precision.global_policy()
    with strategy.scope():
        try:
            keras.mixed_precision.set_global_policy(policy)  # CNNs only: the GCNs stay float32
            regressor = load_regressor(nets_config, size, log)
            recognizer = load_recognizer(nets_config, log)
            if recognizer is None and loss_config["identity"]:
                log("nets.recognizer=none: L_id is off and the embedding is the regressor's only")
            critic = None
            if loss_config["adversarial"]:
                critic = discriminator.build_discriminator(size, normalization=nets_config["critic_normalization"])
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
        embedding = forward.embedding_size(regressor.output["features"].shape[-1], recognition.feature_size(recognizer))
        texture_gcn = build_texture_gcn(morphable, nets_config, embedding)
        if cache is not None and cache["embedding_size"] != embedding:
            raise ValueError(f"{data['train']} caches {cache['embedding_size']}-d embeddings; the regressor"
                             f"{forward.describe_recognizer(recognizer, ' and ')} give {embedding}")
        nets = forward.FaceGCN(morphable, regressor, texture_gcn, recognizer, size, fit_steps=coarse["fit_steps"],
                               refiner_photo=nets_config["refiner_photo"], mask_erosion=nets_config["mask_erosion"])

        def optimizer(rate, decay_every, beta_1, beta_2):
            made = keras.optimizers.Adam(
                exponential_decay(rate, decay_every, train["decay_rate"], train["decay_staircase"]),
                beta_1=beta_1, beta_2=beta_2, epsilon=train["adam_epsilon"], clipnorm=train["clip_norm"] or None)
            return keras.optimizers.LossScaleOptimizer(made) if policy != "float32" else made

        generator_optimizer = optimizer(train["learning_rate"], decay_steps, 0.9, 0.999)
        # the critic's optimizer counts critic_steps iterations per generator step; its rate follows the epochs
        critic_optimizer = optimizer(train["critic_learning_rate"], decay_steps * train["critic_steps"],
                                     *train["critic_betas"]) if critic else None
        # the gradient penalty's mixes: a generator whose state is checkpointed, so a resumed run goes on
        # drawing where it stopped (the global seed restarts with every process)
        penalty_rng = tf.random.Generator.from_seed(data["seed"]) if critic else None
        s1 = tf.Variable(0.0, trainable=False, name="s1")
        s4 = tf.Variable(1.0, trainable=False, name="s4")

    batches_per_step = train["critic_steps"] if critic is not None else 1
    steps_per_epoch_unit = batches_per_step if loss_config["epoch_unit"] == "batches" else 1

    def set_weights(step: int):
        weights = schedule.loss_weights(step * steps_per_epoch_unit / epoch_steps, loss_config["schedule"])
        s1.assign(weights.s1)
        s4.assign(weights.s4)

    critic_active = (lambda step: float(s1.numpy()) > 0.0) if train["critic_start"] == "s1_positive" else None
    extra = [Objective("critic", critic.trainable_variables, critic_optimizer,
                       updates_before=train["critic_steps"] - 1, active=critic_active)] if critic is not None else []
    trackables = {"texture_gcn": texture_gcn,
                  **({"critic": critic, "penalty_rng": penalty_rng} if critic is not None else {})}
    loop = TrainLoop(make_texture_step(nets, critic, loss_config, s1, s4, coarse_source, coarse["landmarks"],
                                       penalty_rng=penalty_rng),
                     texture_gcn.trainable_variables,
                     generator_optimizer, workdir, checkpoint_every=train["checkpoint_every"],
                     summary_every=train["summary_every"], trackables=trackables,
                     image_fn=previews(nets, coarse_source, coarse["landmarks"]),
                     path_key="source", strategy=strategy, extra_objectives=extra, on_step_start=set_weights)
    augmentation = pipeline.Augmentation() if data["augment"] else None
    dataset = pipeline.make_dataset(files, size, data["batch_size"], training=True, augmentation=augmentation,
                                    seed=data["seed"], shuffle_buffer=data["shuffle_buffer"], repeat=True,
                                    embedding_size=cache["embedding_size"] if cache is not None else 0)
    if coarse_source == "ground_truth":
        first = next(iter(dataset))
        if float(tf.reduce_min(first["has_ground_truth"])) < 1.0:
            raise ValueError(f"nets.coarse_coefficients=ground_truth needs training data with stored coefficients "
                             f"(face-gcn make-synthetic); {data['train']} has examples without")
    return TextureTraining(nets=nets, critic=critic, loop=loop, epoch_steps=epoch_steps, s1=s1, s4=s4), dataset


def _check_critic_betas(betas) -> None:
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"train.critic_betas must be two numbers in [0, 1), got {betas}")


def train_texture(config: dict, workdir: str, log=logging.info) -> dict:
    """Trains from a config; writes the model directory workdir/model; returns a summary dict."""
    run, dataset = setup_texture_training(config, workdir, log)
    try:
        losses = run.loop.run(dataset, config["train"]["steps"], log=log)
    except tf.errors.DataLossError as error:
        raise ValueError(tfrecords.data_loss_message(pipeline.shard_files(config["data"]["train"]), error)) from None
    summary = {"steps": int(run.loop.step.numpy()), "losses": losses, "steps_per_second": run.loop.steps_per_second,
               "epoch_steps": run.epoch_steps}
    model_dir.save_model_dir(os.path.join(workdir, MODEL_SUBDIR), run.nets, {"config": config, **summary})
    log(f"model written to {os.path.join(workdir, MODEL_SUBDIR)}")
    return summary


def prepare_coarse(config: dict, data: str, out_dir: str, batch_size: int = 16, progress: bool = False,
                   log=logging.info) -> dict:
    """`face-gcn prepare-coarse`: the config's fixed coarse stage (nets.regressor, nets.recognizer,
    coarse.fit_steps, coarse.landmarks, model.path, data.crop_size) run once over ``data`` into a coarse
    cache at ``out_dir`` (face_gcn.reconstruction.coarse_cache). Returns its manifest."""
    nets_config, coarse = config["nets"], config["coarse"]
    morphable = config_morphable(config)
    regressor = load_regressor(nets_config, config["data"]["crop_size"], log)
    recognizer = load_recognizer(nets_config, log)
    manifest = coarse_cache.write_coarse_cache(
        data, out_dir, morphable, regressor, recognizer, fit_steps=coarse["fit_steps"], landmarks=coarse["landmarks"],
        batch_size=batch_size, progress=progress,
        describe={"regressor": nets_config["regressor"], "facenet_weights": nets_config["facenet_weights"],
                  "face_descriptor_weights": nets_config["face_descriptor_weights"]})
    log(f"coarse cache of {manifest['num_images']} faces written to {out_dir} in {manifest['seconds']:.1f} s")
    return manifest
