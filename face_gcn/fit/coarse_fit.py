"""Analysis-by-synthesis fitting of the morphable model to aligned photos, a batch at a time.

The 257 coefficients (identity, expression, albedo, angles, SH gamma, translation; Deng's
layout) of every face of a batch are optimised with Adam through the differentiable renderer
(face_gcn.render.face_renderer.render_coefficients). The objective of face b is

  w_lm L_landmark + w_pix L_pix + w_id L_id + w_reg L_reg + w_refl L_refl + w_gamma L_gamma

with L_landmark on the 5 detected points (68 when given; pixels squared in units of a 224-px
crop, so the weights hold at any crop size), L_pix the masked per-pixel colour distance (colours
in [0, 1]) over render coverage x face mask, L_id = 1 - cos of the recognition network's
embeddings (only with one: nets.recognition), and Deng's priors. Every term is normalised per face
and the batch objective is their sum, so (Adam being element-wise) a face's fit does not depend on
the rest of its batch.

``fit_batch`` is the whole optimisation as TensorFlow ops (one tf.while_loop per stage), so it
runs inside a tf.function, a training step or an exported graph. Schedules, each stage a fresh
Adam with per-block step sizes (0 = frozen):
  default_stages (a photo from the mean face; `face-gcn fit`):
    1. pose: angles + translation from the landmarks only (no rasterization);
    2. shape: identity + expression (+ pose, + light) with landmarks, L_pix and priors,
       optionally at a reduced resolution (``low_resolution``);
    3. appearance: albedo + light (+ everything else at smaller steps) at full resolution.
  refinement_stages (regress, then fit: the coarse stage of the trained method, coarse.fit_steps):
    1. landmarks: pose (with 68 points also identity and expression) from the landmarks alone,
       starting at the regressor's coefficients (no rasterization: 68 vertices are formed);
    2. joint: the SH light solved in closed form (solve_light: linear least squares over the
       visible skin vertices), then every block at once, rendered at full resolution;
    3. light: the light solved again for the final geometry and albedo.

Inputs follow the file conventions: images in [0, 1], face masks in [0, 1], landmarks in
pixel-index coordinates (pixel centre at (j, i)), as prepare-data stores.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Mapping, NamedTuple

import numpy as np
import tensorflow as tf

from face_gcn.losses import coarse as coarse_losses
from face_gcn.losses import identity as identity_losses
from face_gcn.losses import photometric
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import formation
from face_gcn.nets import recognition
from face_gcn.render import camera, face_renderer, lighting, vertex_sampling

BLOCKS = tuple(coeff_lib.BLOCK_SIZES)  # id, exp, tex, angles, gamma, translation
LOSS_NAMES = ("landmark", "photometric", "identity", "regularisation", "reflectance", "gamma")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of the schedule.

    steps: Adam steps. learning_rates: Adam step size per block name (missing = frozen).
    image_size: render size of this stage (0: the photo's size). render: False fits the
    landmarks only (no rasterization, photometric and identity terms off). solve_light: the stage
    starts by solving the SH light in closed form for the current geometry and albedo
    (solve_light); a stage may consist of that alone (0 steps).
    """

    name: str
    steps: int
    learning_rates: Mapping[str, float]
    image_size: int = 0
    render: bool = True
    solve_light: bool = False


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Loss weights and the schedule. Colours in [0, 1], landmarks in crop pixels."""

    weights: Mapping[str, float] = dataclasses.field(default_factory=lambda: {
        "landmark": 2e-3, "photometric": 1.0, "identity": 0.1, "regularisation": 2e-4,
        "reflectance": 0.05, "gamma": 0.1})
    stages: tuple = ()

    def __post_init__(self):
        unknown = set(self.weights) - set(LOSS_NAMES)
        if unknown:
            raise ValueError(f"unknown loss weights {sorted(unknown)}; known: {LOSS_NAMES}")
        for stage in self.stages:
            bad = set(stage.learning_rates) - set(BLOCKS)
            if bad:
                raise ValueError(f"stage {stage.name}: unknown blocks {sorted(bad)}; known: {BLOCKS}")
            if stage.steps < 0:
                raise ValueError(f"stage {stage.name}: steps must be >= 0, got {stage.steps}")


def default_stages(pose_steps: int = 60, shape_steps: int = 100, appearance_steps: int = 140,
                   low_resolution: int = 112) -> tuple:
    """The default coarse-to-fine schedule (module docstring); low_resolution 0 keeps full size."""
    return (
        Stage("pose", pose_steps, {"angles": 0.02, "translation": 0.02}, render=False),
        Stage("shape", shape_steps, {"id": 0.05, "exp": 0.05, "angles": 0.005, "translation": 0.005,
                                     "gamma": 0.02}, image_size=low_resolution),
        Stage("appearance", appearance_steps, {"tex": 0.05, "gamma": 0.02, "id": 0.01, "exp": 0.01,
                                               "angles": 0.002, "translation": 0.002}),
    )


def default_config(**stage_steps) -> FitConfig:
    """FitConfig with the default weights and default_stages(**stage_steps)."""
    return FitConfig(stages=default_stages(**stage_steps))


LANDMARK_STAGE_STEPS = 1000  # landmark-only steps form 68 vertices: ~1/300 of a rendered step each


def refinement_stages(steps: int, num_landmarks: int = 5) -> tuple:
    """Regress-then-fit: LANDMARK_STAGE_STEPS landmark-only steps (pose; with 68 landmarks also
    identity and expression, which 68 points constrain and 5 do not), the light solved in closed
    form, ``steps`` rendered Adam steps on every block, and the light solved again for the final
    geometry and albedo. Starts from the regressor's coefficients. 0 steps: no stage (the
    regressor alone).

    Measured on the demo's 32 held-out faces at 96 px from its regressor (pose RMSE 8.4 degrees,
    light RMSE 0.130), 68 landmarks, 40 steps: pose RMSE / light RMSE / albedo read back through
    the fit (T_p / shading): 500 landmark steps, no light solve 1.52 deg / 0.072 / 0.079; 1000
    landmark steps 1.44 / 0.072 / 0.080; with the two light solves 1.46 / 0.061 / 0.077
    (tools/bench_fit.py measures the cost).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if num_landmarks not in (5, 68):
        raise ValueError(f"num_landmarks must be 5 or 68, got {num_landmarks}")
    if steps == 0:
        return ()
    landmark_rates = {"angles": 0.02, "translation": 0.02}
    if num_landmarks == 68:
        landmark_rates.update({"id": 0.03, "exp": 0.03})
    return (
        Stage("landmarks", LANDMARK_STAGE_STEPS, landmark_rates, render=False),
        Stage("joint", steps, {"id": 0.05, "exp": 0.05, "tex": 0.05, "gamma": 0.05, "angles": 0.003,
                               "translation": 0.003}, solve_light=True),
        Stage("light", 0, {}, solve_light=True),
    )


def refinement_config(steps: int, num_landmarks: int = 5) -> FitConfig:
    """FitConfig with the default weights and refinement_stages(steps, num_landmarks)."""
    return FitConfig(stages=refinement_stages(steps, num_landmarks))


class FitResult(NamedTuple):
    coefficients: np.ndarray   # [257] float32
    losses: dict               # stage name -> {loss name: final weighted value, "total": ...}
    seconds: float             # wall time of the optimisation


class BatchFitResult(NamedTuple):
    coefficients: np.ndarray   # [B, 257] float32
    losses: dict               # stage name -> {loss name: [B] final weighted values, "total": [B]}
    seconds: float             # wall time of the optimisation (the whole batch)


# Landmark errors are measured in pixels of a crop of this size (Deng's), whatever the crop size.
LANDMARK_UNIT_SIZE = camera.DENG_IMAGE_SIZE
_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPSILON = 0.9, 0.999, 1e-8


def _learning_rate_vector(rates: Mapping[str, float]) -> np.ndarray:
    vector = np.zeros(coeff_lib.NUM_COEFFICIENTS, np.float32)
    for name, rate in rates.items():
        vector[coeff_lib.BLOCK_SLICES[name]] = rate
    return vector


def _landmark_errors(predicted, target):
    """predicted [B, 68, 2], target [B, K, 2] (K = 5 or 68), both in the same pixels -> [B]."""
    if target.shape[1] == 68:
        return coarse_losses.landmark_errors(predicted, target, coarse_losses.DENG_68_WEIGHTS)
    return coarse_losses.landmark_errors(coarse_losses.five_from_68(predicted), target, coarse_losses.DENG_5_WEIGHTS)


def stage_terms(model, coefficients, images, masks, target, stage_size: int, render: bool,
                embeddings=None, recognizer=None, backend: str = "auto") -> dict:
    """Unweighted per-face terms of the objective (module docstring) for one stage.

    Args:
      model: MorphableModel.
      coefficients: [B, 257].
      images: [B, s, s, 3] in [0, 1] at the stage's render size s = stage_size (unused if not render).
      masks: [B, s, s] face-region masks in [0, 1].
      target: [B, K, 2] landmarks, continuous pixels of a LANDMARK_UNIT_SIZE crop.
      render: False: landmarks and priors only (no rasterization).
      embeddings: [B, D] the recognizer's embeddings of the photos (adds "identity" with ``recognizer``).
    Returns:
      {term name: [B]}.
    """
    blocks = coeff_lib.split_coefficients(coefficients)
    terms = {"regularisation": coarse_losses.coefficient_priors(blocks.id, blocks.exp, blocks.tex),
             "gamma": coarse_losses.gamma_deviations(blocks.gamma)}
    scale = LANDMARK_UNIT_SIZE / stage_size
    if not render:
        points = formation.landmark_shape_from_model(model, blocks.id, blocks.exp)  # [B, 68, 3]
        posed = camera.rigid_transform(points, blocks.angles, blocks.translation)
        focal, center = face_renderer.camera_for_size(stage_size)
        landmarks = camera.project_landmarks(posed, tf.range(68), focal=focal, center=center,
                                             image_height=stage_size)
        terms["landmark"] = _landmark_errors(landmarks * scale, target)
        return terms
    out = face_renderer.render_coefficients(model, coefficients, image_size=stage_size, backend=backend)
    terms["landmark"] = _landmark_errors(out.landmarks * scale, target)
    terms["photometric"] = photometric.pixel_errors(images, out.image, out.alpha * masks)
    terms["reflectance"] = coarse_losses.reflectance_variances(out.albedo, model.skin_mask)
    if embeddings is not None and recognizer is not None:
        alpha = out.alpha[..., None]
        composite = out.image * alpha + images * (1.0 - alpha)
        rendered = recognition.embed(recognizer, composite * 255.0).embedding
        terms["identity"] = identity_losses.identity_distances(embeddings, rendered)
    return terms


LIGHT_RIDGE = 1e-3  # ridge weight (per unit of mean skin-vertex error) toward the current light


def solve_light(model, coefficients, images, masks, backend: str = "auto"):
    """The SH light that best relights the current albedo to the photo: per face and channel, a
    ridge-regularised linear least squares over the visible skin vertices.

    The shading is linear in gamma (lighting.sh_shading: basis . (gamma_c + offset e_0)), so with
    geometry and albedo held, min_g sum_v w_v (a_vc basis_v . (g_c + offset e_0) - T_p,vc)^2 / sum_v w_v
    + LIGHT_RIDGE |g_c - g_c,now|^2 has a closed form (w: visibility x skin mask; a face with no
    such vertex keeps its light).

    Args:
      model: MorphableModel; coefficients: [B, 257]; images: [B, S, S, 3] in [0, 1];
      masks: [B, S, S] face-region masks in [0, 1].
    Returns:
      [B, 257]: ``coefficients`` with the gamma block replaced.
    """
    coefficients = tf.convert_to_tensor(coefficients, tf.float32)
    images = tf.convert_to_tensor(images, tf.float32)
    size = int(images.shape[1])
    out = face_renderer.render_coefficients(model, coefficients, image_size=size, backend=backend)
    tensors = formation.model_tensors(model)
    focal, center = face_renderer.camera_for_size(size)
    samples = vertex_sampling.sample_vertex_colors(images, out.posed, out.normals, tensors.triangles,
                                                   face_mask=masks, focal=focal,
                                                   center=center, backend=backend, fragments=out.fragments)
    weight = samples.visibility * tf.constant(np.asarray(model.skin_mask, np.float32))  # [B, V]
    basis = lighting.sh_basis(out.normals)  # [B, V, 9]
    albedo = tf.transpose(out.albedo, [0, 2, 1])[..., None]  # [B, 3, V, 1]
    design = albedo * basis[:, None]  # [B, 3, V, 9]
    offset = tf.one_hot(0, 9) * lighting.DENG_AMBIENT_OFFSET
    target = tf.transpose(samples.colors, [0, 2, 1]) - tf.linalg.matvec(design, offset)  # [B, 3, V]
    weighted = design * weight[:, None, :, None]
    count = tf.maximum(tf.reduce_sum(weight, axis=1), 1.0)[:, None, None, None]  # [B, 1, 1, 1]
    current = tf.reshape(coeff_lib.split_coefficients(coefficients).gamma, [-1, 3, 9])
    normal = tf.matmul(weighted, design, transpose_a=True) / count + LIGHT_RIDGE * tf.eye(9)
    right = tf.linalg.matvec(weighted, target, transpose_a=True) / count[..., 0] + LIGHT_RIDGE * current
    gamma = tf.linalg.solve(normal, right[..., None])[..., 0]  # [B, 3, 9]
    start, stop = coeff_lib.BLOCK_SLICES["gamma"].start, coeff_lib.BLOCK_SLICES["gamma"].stop
    return tf.concat([coefficients[:, :start], tf.reshape(gamma, [-1, 27]), coefficients[:, stop:]], axis=1)


def _adam_stage(objective, coefficients, rates, steps: int, names):
    """``steps`` Adam steps (fresh moments) on [B, 257] coefficients; objective(c) -> {name: [B]}
    weighted terms. Returns (coefficients, {name: [B] terms of the last step, "total": [B]})."""
    rates = tf.constant(rates)

    def body(step, c, m, v, _):
        with tf.GradientTape() as tape:
            tape.watch(c)
            terms = objective(c)
            per_face = tf.add_n(list(terms.values()))
            total = tf.reduce_sum(per_face)  # faces independent: each one's gradient is its own
        gradient = tape.gradient(total, c)
        gradient = tf.where(tf.math.is_finite(gradient), gradient, tf.zeros_like(gradient))
        m = _ADAM_BETA1 * m + (1.0 - _ADAM_BETA1) * gradient
        v = _ADAM_BETA2 * v + (1.0 - _ADAM_BETA2) * tf.square(gradient)
        t = tf.cast(step + 1, tf.float32)
        m_hat = m / (1.0 - _ADAM_BETA1 ** t)
        v_hat = v / (1.0 - _ADAM_BETA2 ** t)
        c = c - rates * m_hat / (tf.sqrt(v_hat) + _ADAM_EPSILON)
        return step + 1, c, m, v, {**{n: terms[n] for n in names}, "total": per_face}

    zeros = tf.zeros_like(coefficients[:, 0])
    initial = {**{n: zeros for n in names}, "total": zeros}
    _, coefficients, _, _, last = tf.while_loop(
        lambda step, *_: step < steps, body,
        (tf.constant(0), coefficients, tf.zeros_like(coefficients), tf.zeros_like(coefficients), initial),
        maximum_iterations=steps)
    return coefficients, last


def fit_batch(model, images, masks, landmarks, initial, config: FitConfig, recognizer=None,
              backend: str = "auto"):
    """The whole fit as TensorFlow ops (usable inside tf.function, training steps and exports).

    Args:
      model: MorphableModel (80/64/80 components).
      images: [B, S, S, 3] float in [0, 1].
      masks: [B, S, S] face-region masks in [0, 1].
      landmarks: [B, K, 2] pixel indices of the S-crop (K = 5 or 68; x right, y down).
      initial: [B, 257] starting coefficients (zeros: mean face, frontal, ambient light).
      config: FitConfig; stages with 0 steps are skipped.
      recognizer: optional frozen recognition network (nets.recognition; adds L_id where the config weighs it).
    Returns:
      (coefficients [B, 257], {stage name: {term: [B] final weighted values, "total": [B]}}).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    masks = tf.convert_to_tensor(masks, tf.float32)
    landmarks = tf.convert_to_tensor(landmarks, tf.float32)
    coefficients = tf.convert_to_tensor(initial, tf.float32)
    size = images.shape[1]
    if images.shape.rank != 4 or images.shape[2] != size or images.shape[3] != 3 or size is None:
        raise ValueError(f"images must be [B, S, S, 3], got {images.shape}")
    if masks.shape.rank != 3 or tuple(masks.shape[1:]) != (size, size):
        raise ValueError(f"masks must be [B, {size}, {size}], got {masks.shape}")
    if landmarks.shape.rank != 3 or landmarks.shape[1] not in (5, 68) or landmarks.shape[2] != 2:
        raise ValueError(f"landmarks must be [B, 5, 2] or [B, 68, 2], got {landmarks.shape}")
    if coefficients.shape.rank != 2 or coefficients.shape[1] != coeff_lib.NUM_COEFFICIENTS:
        raise ValueError(f"initial must be [B, {coeff_lib.NUM_COEFFICIENTS}], got {coefficients.shape}")
    weights = {name: float(config.weights.get(name, 0.0)) for name in LOSS_NAMES}
    with_identity = recognizer is not None and weights["identity"] > 0
    embeddings = None
    if with_identity:
        embeddings = recognition.embed(recognizer, images * 255.0).embedding
    target = (landmarks + 0.5) * (LANDMARK_UNIT_SIZE / size)  # continuous pixels, 224-px units
    losses = {}
    for stage in config.stages:
        if stage.steps == 0 and not stage.solve_light:
            continue
        stage_size = int(stage.image_size or size)
        scaled_images, scaled_masks = images, masks
        if (stage.render or stage.solve_light) and stage_size != size:
            scaled_images = tf.image.resize(images, [stage_size, stage_size], method="area")
            scaled_masks = tf.clip_by_value(
                tf.image.resize(masks[..., None], [stage_size, stage_size], method="area")[..., 0], 0.0, 1.0)
        if stage.solve_light:
            coefficients = solve_light(model, coefficients, scaled_images, scaled_masks, backend)
        if stage.steps == 0:
            continue
        names = ["landmark", "regularisation", "gamma"]
        if stage.render:
            names += ["photometric", "reflectance"] + (["identity"] if with_identity else [])
        names = [name for name in names if weights[name] > 0]

        def objective(c, stage=stage, stage_size=stage_size, scaled_images=scaled_images,
                      scaled_masks=scaled_masks, names=tuple(names)):
            terms = stage_terms(model, c, scaled_images, scaled_masks, target, stage_size, stage.render,
                                embeddings, recognizer if with_identity else None, backend)
            return {name: weights[name] * terms[name] for name in names}

        coefficients, losses[stage.name] = _adam_stage(
            objective, coefficients, _learning_rate_vector(stage.learning_rates), stage.steps, names)
    return coefficients, losses


class CoarseFitter:
    """Fits aligned photos of one size, a batch at a time; compiled once per landmark count.

    Args:
      model: MorphableModel (80/64/80 components).
      image_size: side S of the square aligned crops it will fit.
      config: FitConfig (default: default_config()).
      recognizer: optional frozen recognition network (nets.recognition.build; adds L_id).
      backend: rasterizer backend.
    """

    def __init__(self, model, image_size: int = camera.DENG_IMAGE_SIZE, config: FitConfig | None = None,
                 recognizer=None, backend: str = "auto"):
        if image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {image_size}")
        self.model = model
        self.image_size = int(image_size)
        self.config = config or default_config()
        if not self.config.stages:
            self.config = dataclasses.replace(self.config, stages=default_stages())
        self.recognizer = recognizer
        self.backend = backend
        self._compiled = {}

    def _function(self, num_landmarks: int):
        """The compiled fit for K landmarks (any batch size)."""
        if num_landmarks not in self._compiled:
            size = self.image_size
            self._compiled[num_landmarks] = tf.function(
                lambda images, masks, landmarks, initial: fit_batch(
                    self.model, images, masks, landmarks, initial, self.config, self.recognizer, self.backend),
                input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32),
                                 tf.TensorSpec([None, size, size], tf.float32),
                                 tf.TensorSpec([None, num_landmarks, 2], tf.float32),
                                 tf.TensorSpec([None, coeff_lib.NUM_COEFFICIENTS], tf.float32)],
                autograph=False)
        return self._compiled[num_landmarks]

    def fit_batch(self, images, masks, landmarks, initial=None) -> BatchFitResult:
        """Fits B aligned photos together.

        Args:
          images: [B, S, S, 3] float in [0, 1] (or uint8 0-255), S = image_size.
          masks: [B, S, S] face-region masks in [0, 1] (or uint8 0/1 or 0/255).
          landmarks: [B, 5, 2] or [B, 68, 2] pixel indices (x right, y down, centre of pixel (i, j) at (j, i)).
          initial: optional [B, 257] starting coefficients (default zeros: mean face, frontal,
            ambient light), e.g. a regressor's.
        Returns:
          BatchFitResult.
        """
        images, masks, landmarks = _check_inputs(images, masks, landmarks, self.image_size)
        count = images.shape[0]
        init = np.zeros((count, coeff_lib.NUM_COEFFICIENTS), np.float32) if initial is None \
            else np.asarray(initial, np.float32)
        if init.shape != (count, coeff_lib.NUM_COEFFICIENTS):
            raise ValueError(f"initial must be [{count}, {coeff_lib.NUM_COEFFICIENTS}], got {init.shape}")
        start = time.perf_counter()
        fit = self._function(landmarks.shape[1])
        coefficients, losses = fit(tf.constant(images), tf.constant(masks), tf.constant(landmarks), tf.constant(init))
        coefficients = coefficients.numpy()
        seconds = time.perf_counter() - start
        if not np.all(np.isfinite(coefficients)):
            raise FloatingPointError("the fit diverged (non-finite coefficients)")
        losses = {stage: {name: value.numpy() for name, value in values.items()} for stage, values in losses.items()}
        return BatchFitResult(coefficients, losses, seconds)

    def fit(self, image, mask, landmarks, initial=None) -> FitResult:
        """Fits one aligned photo: fit_batch of a batch of one ([S, S, 3], [S, S], [K, 2], [257])."""
        image, mask, landmarks = (np.asarray(image), np.asarray(mask), np.asarray(landmarks))
        _check_inputs(image[None], mask[None], landmarks[None], self.image_size)
        if initial is not None:
            initial = np.asarray(initial, np.float32).reshape(1, -1)
        result = self.fit_batch(image[None], mask[None], landmarks[None], initial)
        losses = {stage: {name: float(value[0]) for name, value in values.items()}
                  for stage, values in result.losses.items()}
        return FitResult(result.coefficients[0].copy(), losses, result.seconds)


def _check_inputs(images, masks, landmarks, size: int):
    """Batched inputs -> float32 images in [0, 1] [B, S, S, 3], masks [B, S, S], landmarks [B, K, 2]."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (size, size, 3) or images.shape[0] < 1:
        raise ValueError(f"image must be [{size}, {size}, 3] (batch: [B, {size}, {size}, 3]), got {images.shape}")
    images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)
    masks = np.asarray(masks)
    if masks.shape != images.shape[:3]:
        raise ValueError(f"mask must be [{size}, {size}] (batch: [B, {size}, {size}]), got {masks.shape}")
    masks = masks.astype(np.float32)
    if masks.max(initial=0.0) > 1.0:
        masks = masks / 255.0
    landmarks = np.asarray(landmarks, np.float32)
    if landmarks.ndim != 3 or landmarks.shape[0] != images.shape[0] or landmarks.shape[1:] not in ((5, 2), (68, 2)) \
            or not np.all(np.isfinite(landmarks)):
        raise ValueError(f"landmarks must be a finite [5, 2] or [68, 2] array per image, got {landmarks.shape}")
    return images, masks, landmarks


def fit_coefficients(model, image, mask, landmarks, config: FitConfig | None = None, recognizer=None,
                     initial=None, backend: str = "auto") -> FitResult:
    """One-off convenience wrapper: CoarseFitter(model, S, config, recognizer).fit(...)."""
    size = int(np.asarray(image).shape[0])
    return CoarseFitter(model, size, config, recognizer, backend).fit(image, mask, landmarks, initial)
