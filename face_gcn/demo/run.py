"""The main job on a fresh machine: the whole method on the built-in demo model, no downloads.

1. build the demo morphable model (cached) and render a synthetic training set and a held-out set
   whose albedo carries detail the 3DMM cannot represent (ground truth kept);
2. coarse stage: train a compact regressor (a stand-in for Deng's released network) with Deng's
   losses plus supervision from the synthetic coefficients; the coarse stage is that regressor
   followed by a short batched fit (coarse.fit_steps) to the 68 landmarks and the pixels, run once
   per training face into a coarse cache (data/train_coarse);
3. the paper's stage: train the texture GCNs (Eq. 4-8) on the fixed coarse stage (experiments/demo.yaml);
4. write the model directory, load it back and reconstruct the held-out faces;
5. metrics (masked PSNR / SSIM of render vs input, albedo error vs ground truth; coarse vs refined),
   DIR/metrics.json and DIR/report.html.

Layout of DIR: data/{train,heldout}, coarse/ (train-coarse workdir), texture/ (train workdir, with
texture/model the trained model), heldout/ (per-image PNGs and meshes, evaluate-compatible:
heldout/coarse/NAME.render.png, heldout/refined/NAME.render.png, NAME.input.png, NAME.mask.png),
metrics.json, report.html.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np
import tensorflow as tf

from face_gcn import fileio
from face_gcn.data import pipeline
from face_gcn.demo import defaults, report
from face_gcn.evaluation import albedo as albedo_lib, metrics as metrics_lib
from face_gcn.mesh import io as mesh_io
from face_gcn.mesh import normals as normals_lib
from face_gcn.morphable import coefficients as coeff_lib, configured, formation
from face_gcn.nets import recognition, regressor as regressor_lib
from face_gcn.reconstruction import coarse_cache, forward, model_dir
from face_gcn.render import camera, face_renderer, lighting
from face_gcn.synthesis import dataset as synthetic
from face_gcn.train import coarse, texture

# experiments/demo.yaml holds the same values (tests/demo/test_run.py checks it).
TEXTURE_OVERRIDES = {
    "data.crop_size": defaults.IMAGE_SIZE, "data.batch_size": 8, "nets.backbone": "compact",
    "loss.schedule": "paper", "train.steps": defaults.TEXTURE_STEPS, "train.epoch_steps": 40,
    "train.learning_rate": 1e-3, "train.decay_steps": 1000,
    "train.decay_rate": 0.5, "train.critic_steps": 1, "train.checkpoint_every": 500, "train.summary_every": 50,
    # not the paper's: Refiner skips at every level carry full-resolution detail, and the Refiner reads
    # the photo with the coarse shading divided out; the coarse stage is regress-then-fit against the
    # synthetic set's true 68 landmarks (a 68-point detector's stand-in), read from a coarse cache
    # (which cannot be augmented)
    "nets.refiner_skip_levels": 4, "nets.refiner_photo": "shading_removed",
    # our other named improvements on the authors' networks: exact-lmax Laplacians, a Combiner that
    # starts at mid-grey and reads the Decoder's and Refiner's features, boundary-preserving
    # decimation, a layer-norm critic with a per-sample penalty
    "nets.lmax": "exact", "nets.combiner_init": "zeros", "nets.decimation": "boundary_preserving",
    "nets.critic_normalization": "layer", "loss.penalty_mix": "per_sample", "nets.combiner_input": "features",
    "coarse.fit_steps": defaults.FIT_STEPS, "coarse.landmarks": "ground_truth68",
    "data.augment": False,
    # the optimisers the demo was measured with (Keras' Adam epsilon, continuous decay, no clipping,
    # WGAN-GP's critic betas, the critic from step 0); the schema's defaults are the authors'
    "train.adam_epsilon": 1e-7, "train.decay_staircase": False, "train.clip_norm": 0.0,
    "train.critic_betas": [0.5, 0.9], "train.critic_start": "always", "nets.mask_erosion": "none",
}
# The demo's named improvements over the authors' settings, and the settings it keeps as it was
# measured (each key's texture.SCHEMA default is the authors' value): tools/bench_ablations.py
# resets both for its "authors" row.
IMPROVEMENT_KEYS = ("nets.refiner_skip_levels", "nets.refiner_photo", "nets.lmax", "nets.combiner_init",
                    "nets.decimation", "nets.critic_normalization", "loss.penalty_mix", "nets.combiner_input")
AS_MEASURED_KEYS = ("train.adam_epsilon", "train.decay_staircase", "train.clip_norm", "train.critic_betas",
                    "train.critic_start", "nets.mask_erosion")
COARSE_OVERRIDES = {
    # the stand-in regressor learns from the synthetic coefficients; Deng's identity term (a second
    # ResNet per step) is left out of it. The texture stage keeps L_id (dlib's descriptor).
    "data.batch_size": 8, "nets.backbone": "compact", "loss.coefficients": 1.0, "nets.recognizer": "none",
    "train.steps": defaults.COARSE_STEPS, "train.learning_rate": 1e-3, "train.decay_steps": 3000, "train.decay_rate": 0.5,
    "train.checkpoint_every": 1000, "train.summary_every": 50,
}


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo run; the defaults finish in under 15 minutes on 2 CPU cores."""

    num_train: int = defaults.NUM_TRAIN
    num_heldout: int = defaults.NUM_HELDOUT
    image_size: int = defaults.IMAGE_SIZE
    coarse_steps: int = defaults.COARSE_STEPS
    texture_steps: int = defaults.TEXTURE_STEPS
    fit_steps: int = defaults.FIT_STEPS
    detail_scale: float = defaults.DETAIL_SCALE
    seed: int = 0
    report_images: int = 8

    def __post_init__(self):
        if self.image_size % 32 or self.image_size < 64:
            raise ValueError(f"image_size must be a multiple of 32 and >= 64 (the critic pools 5 times), "
                             f"got {self.image_size}")
        for name in ("num_train", "num_heldout", "coarse_steps", "texture_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.fit_steps < 0 or self.detail_scale < 0:
            raise ValueError(f"fit_steps and detail_scale must be >= 0, got {self.fit_steps}, {self.detail_scale}")


def _overrides(mapping: dict) -> list[str]:
    return [f"{key}={value}" for key, value in mapping.items()]


def _summary_every(steps: int, overrides: dict) -> int:
    """The configured summary interval, shortened so that a short run still draws a curve (>= 10 points)."""
    return max(1, min(overrides["train.summary_every"], steps // 10))


def texture_config(data: str, regressor: str, settings: DemoSettings = DemoSettings(), extra=()) -> dict:
    """The demo's texture config; ``extra``: further "key=value" overrides (experiments on top of it)."""
    overrides = _overrides(TEXTURE_OVERRIDES) + [
        f"data.train={data}", f"nets.regressor={regressor}", f"data.crop_size={settings.image_size}",
        f"train.steps={settings.texture_steps}", f"data.seed={settings.seed}", f"coarse.fit_steps={settings.fit_steps}",
        f"train.summary_every={_summary_every(settings.texture_steps, TEXTURE_OVERRIDES)}"] + list(extra)
    return texture.build_config(None, overrides)


def coarse_config(data: str, settings: DemoSettings = DemoSettings()) -> dict:
    overrides = _overrides(COARSE_OVERRIDES) + [
        f"data.train={data}", f"data.crop_size={settings.image_size}", f"train.steps={settings.coarse_steps}",
        f"data.seed={settings.seed}", f"train.summary_every={_summary_every(settings.coarse_steps, COARSE_OVERRIDES)}"]
    return coarse.build_config(None, overrides)


FRONTAL_LIGHT_Z = 0.2  # SH gamma of the frontal views: Deng's ambient plus a mild light along the view axis


def frontal_albedo_views(morphable, coefficients, albedos: dict, image_size: int) -> tuple[dict, np.ndarray]:
    """Albedos [V, 3] shown on one face's coarse geometry, facing the camera under one fixed light.

    coefficients: [257] (identity and expression give the geometry; pose and light are replaced).
    Returns ({name: [S, S, 3] render in [0, 1]}, coverage [S, S]).
    """
    blocks = coeff_lib.split_coefficients(tf.constant(coefficients[None], tf.float32))
    shape = formation.shape_from_model(morphable, blocks.id, blocks.exp)
    tensors = formation.model_tensors(morphable)
    normals = normals_lib.vertex_normals(shape, tensors.triangles, tensors.vertex_triangles)
    gamma = np.zeros((1, 27), np.float32)
    gamma[0, [2, 11, 20]] = FRONTAL_LIGHT_Z
    posed = camera.rigid_transform(shape, tf.zeros([1, 3]), tf.zeros([1, 3]))
    views, coverage = {}, None
    for name, albedo in albedos.items():
        lit = lighting.illuminate(tf.constant(np.asarray(albedo, np.float32)[None]), normals, gamma)
        image, alpha = face_renderer.render_posed(posed, tensors.triangles, lit, image_size)
        views[name], coverage = np.clip(image.numpy()[0], 0.0, 1.0), alpha.numpy()[0]
    return views, coverage


def evaluate_heldout(nets: forward.FaceGCN, heldout_dir: str, out_dir: str, keep_images: int = 8,
                     batch_size: int = 8, coarse_coefficients: str = "regressor",
                     landmarks: str = "ground_truth68") -> dict:
    """Reconstructs the held-out set and scores coarse vs refined. Returns per-image metric arrays.

    Besides the metrics.json keys: albedo_error_photo (T_p / shading through the coarse stage, at
    visible front vertices: what a texture fitted to the photo tends to) and
    albedo_error_photo_true_coefficients (the same through the ground-truth coefficients).
    coarse_coefficients: "regressor" (the method: the regressor, then nets.fit_steps of the fit) or
    "ground_truth" (the held-out set's coefficients as a perfect coarse stage, see
    nets.coarse_coefficients of the texture config). landmarks: those the fit uses (coarse.landmarks).
    Per face also: coarse_angle_error_deg / regressor_angle_error_deg (RMS over the three Euler angles
    against the truth, degrees, through the coarse stage and through the regressor alone) and
    coarse_light_error / regressor_light_error (RMS over the 27 SH coefficients). With a recognition
    network in ``nets``: identity_cosine_coarse / identity_cosine_refined, the cosine of its embeddings
    of the input and of the render pasted over it (as the report's PNGs), and the returned
    "embeddings" {"input", "coarse", "refined": [N, D]} (for metrics.identity_emd).
    """
    if coarse_coefficients not in texture.COARSE_SOURCES:
        raise ValueError(f"coarse_coefficients must be one of {texture.COARSE_SOURCES}, got {coarse_coefficients!r}")
    truth = synthetic.load_ground_truth(heldout_dir)
    front = np.asarray(nets.morphable.front_mask, bool)
    triangles = nets.morphable.triangles
    dataset = pipeline.make_dataset(heldout_dir, nets.image_size, batch_size, training=False)
    scores = {key: [] for key in ("psnr_coarse", "psnr_refined", "ssim_coarse", "ssim_refined",
                                  "albedo_error_coarse", "albedo_error_refined", "albedo_error_photo",
                                  "albedo_error_photo_true_coefficients", "coarse_angle_error_deg",
                                  "regressor_angle_error_deg", "coarse_light_error", "regressor_light_error")}
    if nets.recognizer is not None:
        scores.update(identity_cosine_coarse=[], identity_cosine_refined=[])
    embeddings = {"input": [], "coarse": [], "refined": []}
    names, index = [], 0
    for sub in ("coarse", "refined", "albedo"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    for batch in dataset:
        rows = slice(index, index + int(batch["image"].shape[0]))
        true_albedo, true_coefficients = truth["albedo"][rows], truth["coefficients"][rows]
        given = true_coefficients if coarse_coefficients == "ground_truth" else None
        inputs = {"coefficients": given} if given is not None else texture.coarse_inputs(batch, landmarks=landmarks)
        result = forward.reconstruct(nets, batch["image"], face_mask=batch["mask"], **inputs)
        regressed = regressor_lib.regress(nets.regressor, batch["image"]).coefficients.numpy()
        for tag, coefficients in (("coarse", result.coefficients.numpy()), ("regressor", regressed)):
            angles, light = coeff_lib.BLOCK_SLICES["angles"], coeff_lib.BLOCK_SLICES["gamma"]
            scores[f"{tag}_angle_error_deg"] += list(np.rad2deg(np.sqrt(np.mean(
                (coefficients[:, angles] - true_coefficients[:, angles]) ** 2, axis=1))))
            scores[f"{tag}_light_error"] += list(np.sqrt(np.mean(
                (coefficients[:, light] - true_coefficients[:, light]) ** 2, axis=1)))
        photo = batch["image"].numpy() / 255.0
        face_mask = batch["mask"].numpy()[..., 0]
        alpha = result.coarse.alpha.numpy()
        mask = (face_mask > 0.5) & (alpha > 0.5)
        coarse_albedo = np.clip(result.coarse.albedo.numpy(), 0.0, 1.0)
        refined_albedo = result.refined_albedo.numpy()
        renders = {"coarse": np.clip(result.coarse.image.numpy(), 0.0, 1.0),
                   "refined": np.clip(result.refined_image.numpy(), 0.0, 1.0)}
        for tag, render in renders.items():
            scores[f"psnr_{tag}"] += list(metrics_lib.masked_psnr(photo, render, mask))
            scores[f"ssim_{tag}"] += list(metrics_lib.masked_ssim(photo, render, mask))
        if nets.recognizer is not None:
            pasted = {tag: render * alpha[..., None] + photo * (1.0 - alpha[..., None]) for tag, render in renders.items()}
            embedded = {tag: recognition.embed(nets.recognizer, image * 255.0).embedding.numpy()
                        for tag, image in (("input", photo), *pasted.items())}
            for tag, embedding in embedded.items():
                embeddings[tag].append(embedding)
            for tag in renders:
                scores[f"identity_cosine_{tag}"] += list(metrics_lib.cosine_similarity(embedded["input"], embedded[tag]))
        scores["albedo_error_coarse"] += list(albedo_lib.albedo_error(coarse_albedo, true_albedo, front))
        scores["albedo_error_refined"] += list(albedo_lib.albedo_error(refined_albedo, true_albedo, front))
        # The forward pass already sampled T_p through its coarse stage; the true coefficients need their own
        # render unless they are that coarse stage.
        through_coarse = albedo_lib.read_back(result.samples, result.coarse.normals,
                                              coeff_lib.split_coefficients(result.coefficients).gamma)
        through_truth = through_coarse if given is not None else \
            albedo_lib.photo_albedo(nets.morphable, true_coefficients, photo, face_mask)
        for key, read in (("albedo_error_photo", through_coarse),
                          ("albedo_error_photo_true_coefficients", through_truth)):
            scores[key] += list(albedo_lib.albedo_error(read.quotient, true_albedo, read.visible & front[None]))
        posed = result.coarse.posed.numpy()
        refined_colors = np.clip(result.refined_colors.numpy(), 0.0, 1.0)
        for b in range(len(photo)):
            name = f"heldout_{index + b:04d}"
            names.append(name)
            if index + b >= keep_images:
                continue
            fileio.write_png(os.path.join(out_dir, f"{name}.input.png"), photo[b])
            fileio.write_png(os.path.join(out_dir, f"{name}.mask.png"), mask[b].astype(np.float32)[..., None]
                             .repeat(3, -1))
            for tag, render in renders.items():
                fileio.write_png(os.path.join(out_dir, tag, f"{name}.render.png"),
                                 render[b] * alpha[b, ..., None] + photo[b] * (1 - alpha[b, ..., None]))
            views, coverage = frontal_albedo_views(nets.morphable, true_coefficients[b], {
                "true": true_albedo[b], "coarse": coarse_albedo[b], "refined": np.clip(refined_albedo[b], 0, 1)},
                nets.image_size)
            for tag, view in views.items():
                fileio.write_png(os.path.join(out_dir, "albedo", f"{name}.{tag}.png"),
                                 view * coverage[..., None] + (1.0 - coverage[..., None]))
            mesh_io.write_ply(os.path.join(out_dir, f"{name}_refined.ply"), posed[b], triangles,
                              np.clip(refined_albedo[b], 0, 1))
            mesh_io.write_ply(os.path.join(out_dir, f"{name}_coarse.ply"), posed[b], triangles, coarse_albedo[b])
            mesh_io.write_obj(os.path.join(out_dir, f"{name}_refined.obj"), posed[b], triangles, refined_colors[b])
        index += len(photo)
    result = {"names": names, **{k: np.asarray(v, np.float64) for k, v in scores.items()}}
    if nets.recognizer is not None:
        result["embeddings"] = {tag: np.concatenate(parts) for tag, parts in embeddings.items()}
    return result


def run_demo(workdir: str, settings: DemoSettings = DemoSettings(), log=logging.info) -> dict:
    """Runs every stage into ``workdir``; returns the metrics written to workdir/metrics.json."""
    started = time.perf_counter()
    timings = {}
    os.makedirs(workdir, exist_ok=True)
    stage_started = time.perf_counter()
    morphable = configured.load_demo()
    train_dir, heldout_dir = os.path.join(workdir, "data", "train"), os.path.join(workdir, "data", "heldout")
    config = synthetic.SyntheticConfig(image_size=settings.image_size, detail_scale=settings.detail_scale)
    for path, count, split in ((train_dir, settings.num_train, "train"), (heldout_dir, settings.num_heldout, "heldout")):
        if not os.path.isfile(os.path.join(path, synthetic.MANIFEST_FILE)):
            log(f"rendering {count} synthetic {split} faces into {path}")
            synthetic.write_dataset(path, morphable, count, settings.seed, split=split, config=config, progress=True)
    timings["data"] = time.perf_counter() - stage_started

    stage_started = time.perf_counter()
    coarse_dir = os.path.join(workdir, "coarse")
    log(f"coarse stage: {settings.coarse_steps} steps")
    coarse_summary = coarse.train_coarse(coarse_config(train_dir, settings), coarse_dir, log=log)
    timings["coarse"] = time.perf_counter() - stage_started

    stage_started = time.perf_counter()
    texture_dir = os.path.join(workdir, "texture")
    log(f"texture stage (the paper's method): {settings.texture_steps} steps")
    regressor = os.path.join(coarse_dir, coarse.REGRESSOR_FILE)
    cache_dir = os.path.join(workdir, "data", "train_coarse")
    config = texture_config(cache_dir, regressor, settings)
    if coarse_cache.read_manifest(cache_dir) is None:
        log(f"coarse cache: regressor + {settings.fit_steps} fit steps for {settings.num_train} faces")
        texture.prepare_coarse(config, train_dir, cache_dir, progress=True, log=log)
    timings["coarse_cache"] = time.perf_counter() - stage_started
    stage_started = time.perf_counter()
    texture_summary = texture.train_texture(config, texture_dir, log=log)
    timings["texture"] = time.perf_counter() - stage_started

    stage_started = time.perf_counter()
    nets = model_dir.load_model_dir(os.path.join(texture_dir, texture.MODEL_SUBDIR))
    scores = evaluate_heldout(nets, heldout_dir, os.path.join(workdir, "heldout"), settings.report_images,
                              landmarks=config["coarse"]["landmarks"])
    timings["evaluate"] = time.perf_counter() - stage_started

    summary = {key: float(np.nanmean(values)) for key, values in scores.items() if key not in ("names", "embeddings")}
    if "embeddings" in scores:
        summary["recognizer"] = recognition.kind_of(nets.recognizer)
        for tag in ("coarse", "refined"):
            # every held-out face is another identity: same pairs are i == j
            inputs = scores["embeddings"]["input"]
            summary[f"identity_emd_{tag}"] = metrics_lib.identity_emd(inputs, scores["embeddings"][tag],
                                                                      np.arange(len(inputs)))
    for tag in ("coarse", "regressor"):  # RMS over faces and angles
        summary[f"{tag}_angle_rmse_deg"] = float(np.sqrt(np.mean(scores[f"{tag}_angle_error_deg"] ** 2)))
    result = {**summary, "n_images": len(scores["names"]), "seconds": round(time.perf_counter() - started, 1),
              "stage_seconds": {k: round(v, 1) for k, v in timings.items()},
              "coarse_steps_per_second": coarse_summary.get("steps_per_second"),
              "texture_steps_per_second": texture_summary["steps_per_second"],
              "settings": dataclasses.asdict(settings), "model_dir": os.path.join("texture", texture.MODEL_SUBDIR)}
    fileio.write_json(os.path.join(workdir, "metrics.json"), result)
    report.write_report(workdir, result, scores, curves={"coarse": report.read_scalars(coarse_dir),
                                                          "texture": report.read_scalars(texture_dir)})
    return result
