"""Analysis-by-synthesis fitting of the morphable model to one aligned photo.

The 257 coefficients (identity, expression, albedo, angles, SH gamma, translation; Deng's
layout) are optimised with Adam through the differentiable renderer
(face_gcn.render.face_renderer.render_coefficients). The objective is

  w_lm L_landmark + w_pix L_pix + w_id L_id + w_reg L_reg + w_refl L_refl + w_gamma L_gamma

with L_landmark on the 5 detected points (68 when given; pixels squared at the crop size),
L_pix the masked per-pixel colour distance (colours in [0, 1]) over render coverage x face mask,
L_id = 1 - cos of FaceNet embeddings (only with a FaceNet model), and Deng's priors.

Schedule (coarse to fine), each stage a fresh Adam with per-block step sizes (0 = frozen):
  1. pose: angles + translation from the landmarks only (no rasterization);
  2. shape: identity + expression (+ pose, + light) with landmarks, L_pix and priors,
     optionally at a reduced resolution (``low_resolution``);
  3. appearance: albedo + light (+ everything else at smaller steps) at full resolution.

Inputs follow the file conventions: images [S, S, 3] float in [0, 1], face masks [S, S] in
[0, 1], landmarks in pixel-index coordinates (pixel centre at (j, i)), as prepare-data stores.
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
from face_gcn.render import camera, face_renderer

BLOCKS = tuple(coeff_lib.BLOCK_SIZES)  # id, exp, tex, angles, gamma, translation
LOSS_NAMES = ("landmark", "photometric", "identity", "regularisation", "reflectance", "gamma")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of the schedule.

    steps: Adam steps. learning_rates: Adam step size per block name (missing = frozen).
    image_size: render size of this stage (0: the photo's size). render: False fits the
    landmarks only (no rasterization, photometric and identity terms off).
    """

    name: str
    steps: int
    learning_rates: Mapping[str, float]
    image_size: int = 0
    render: bool = True


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


class FitResult(NamedTuple):
    coefficients: np.ndarray   # [257] float32
    losses: dict               # stage name -> {loss name: final weighted value, "total": ...}
    seconds: float             # wall time of the optimisation


def _learning_rate_vector(rates: Mapping[str, float]) -> np.ndarray:
    vector = np.zeros(coeff_lib.NUM_COEFFICIENTS, np.float32)
    for name, rate in rates.items():
        vector[coeff_lib.BLOCK_SLICES[name]] = rate
    return vector


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2  # pylint: disable=import-outside-toplevel
    if image.shape[0] == size:
        return image
    interpolation = cv2.INTER_AREA if size < image.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


class CoarseFitter:
    """Fits one photo at a time; the compiled steps are reused across photos of one size.

    Args:
      model: MorphableModel (80/64/80 components).
      image_size: side S of the square aligned crops it will fit.
      config: FitConfig (default: default_config()).
      facenet: optional Keras model from face_gcn.nets.facenet.build_facenet (adds L_id).
      backend: rasterizer backend.
    """

    def __init__(self, model, image_size: int = camera.DENG_IMAGE_SIZE, config: FitConfig | None = None,
                 facenet=None, backend: str = "auto"):
        if image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {image_size}")
        self.model = model
        self.image_size = int(image_size)
        self.config = config or default_config()
        if not self.config.stages:
            self.config = dataclasses.replace(self.config, stages=default_stages())
        self.facenet = facenet
        self.backend = backend
        self._coefficients = tf.Variable(tf.zeros([1, coeff_lib.NUM_COEFFICIENTS]), name="coefficients")
        self._m = tf.Variable(tf.zeros([coeff_lib.NUM_COEFFICIENTS]), trainable=False)
        self._v = tf.Variable(tf.zeros([coeff_lib.NUM_COEFFICIENTS]), trainable=False)
        self._t = tf.Variable(0.0, trainable=False)
        self._skin = tf.constant(model.skin_mask, tf.float32)
        self._weights = {name: float(self.config.weights.get(name, 0.0)) for name in LOSS_NAMES}
        self._steps = {}

    # -- losses -------------------------------------------------------------------------------

    def _landmark_term(self, predicted_full, target):
        """predicted_full: [1, 68, 2] continuous full-size pixels; target [1, K, 2] continuous."""
        if target.shape[1] == 68:
            return coarse_losses.landmark_loss(predicted_full, target, coarse_losses.DENG_68_WEIGHTS)
        return coarse_losses.landmark_loss(coarse_losses.five_from_68(predicted_full), target,
                                           coarse_losses.DENG_5_WEIGHTS)

    def _priors(self, coefficients):
        blocks = coeff_lib.split_coefficients(coefficients)
        return {"regularisation": coarse_losses.coefficient_regularisation(blocks.id, blocks.exp, blocks.tex),
                "gamma": coarse_losses.gamma_loss(blocks.gamma)}

    def _terms(self, image, mask, target, embedding, size: int, render: bool):
        coefficients = self._coefficients
        terms = self._priors(coefficients)
        if not render:
            blocks = coeff_lib.split_coefficients(coefficients)
            shape = formation.shape_from_model(self.model, blocks.id, blocks.exp)
            posed = camera.rigid_transform(shape, blocks.angles, blocks.translation)
            focal, center = face_renderer.camera_for_size(self.image_size)
            landmarks = camera.project_landmarks(posed, formation.model_tensors(self.model).landmark_indices,
                                                 focal=focal, center=center, image_height=self.image_size)
            terms["landmark"] = self._landmark_term(landmarks, target)
            return terms
        out = face_renderer.render_coefficients(self.model, coefficients, image_size=size,
                                                backend=self.backend)
        # continuous pixel coordinates scale exactly with the image size
        terms["landmark"] = self._landmark_term(out.landmarks * (self.image_size / size), target)
        terms["photometric"] = photometric.pixel_loss(image, out.image, out.alpha * mask)
        terms["reflectance"] = coarse_losses.reflectance_loss(out.albedo, self._skin)
        if embedding is not None and self.facenet is not None:
            from face_gcn.nets import facenet as facenet_lib  # pylint: disable=import-outside-toplevel
            alpha = out.alpha[..., None]
            composite = out.image * alpha + image * (1.0 - alpha)
            rendered = facenet_lib.embed(self.facenet, composite * 255.0).embedding
            terms["identity"] = identity_losses.identity_loss(embedding, rendered)
        return terms

    def _step_function(self, size: int, render: bool, num_landmarks: int, with_identity: bool):
        key = (size, render, num_landmarks, with_identity)
        if key in self._steps:
            return self._steps[key]
        weights = self._weights

        @tf.function(reduce_retracing=True)
        def step(image, mask, target, embedding, rates):
            with tf.GradientTape() as tape:
                terms = self._terms(image, mask, target, embedding if with_identity else None, size, render)
                weighted = {name: weights[name] * value for name, value in terms.items()}
                total = tf.add_n(list(weighted.values()))
            gradient = tf.reshape(tape.gradient(total, self._coefficients), [-1])
            gradient = tf.where(tf.math.is_finite(gradient), gradient, tf.zeros_like(gradient))
            beta1, beta2, epsilon = 0.9, 0.999, 1e-8
            self._t.assign_add(1.0)
            self._m.assign(beta1 * self._m + (1.0 - beta1) * gradient)
            self._v.assign(beta2 * self._v + (1.0 - beta2) * tf.square(gradient))
            m_hat = self._m / (1.0 - beta1 ** self._t)
            v_hat = self._v / (1.0 - beta2 ** self._t)
            self._coefficients.assign_sub(tf.reshape(rates * m_hat / (tf.sqrt(v_hat) + epsilon), [1, -1]))
            weighted["total"] = total
            return weighted

        self._steps[key] = step
        return step

    # -- public -------------------------------------------------------------------------------

    def fit(self, image, mask, landmarks, initial=None) -> FitResult:
        """Fits one aligned photo.

        Args:
          image: [S, S, 3] float in [0, 1] (or uint8 0-255), S = image_size.
          mask: [S, S] face-region mask in [0, 1] (or uint8 0/1 or 0/255).
          landmarks: [5, 2] or [68, 2] pixel indices (x right, y down, centre of pixel (i, j) at (j, i)).
          initial: optional [257] starting coefficients (default zeros: mean face, frontal,
            ambient light).
        Returns:
          FitResult.
        """
        image, mask, landmarks = _check_inputs(image, mask, landmarks, self.image_size)
        start = time.perf_counter()
        init = np.zeros(coeff_lib.NUM_COEFFICIENTS, np.float32) if initial is None \
            else np.asarray(initial, np.float32).reshape(-1)
        if init.shape != (coeff_lib.NUM_COEFFICIENTS,):
            raise ValueError(f"initial must be [{coeff_lib.NUM_COEFFICIENTS}], got {init.shape}")
        self._coefficients.assign(init[None])
        with_identity = self.facenet is not None and self._weights["identity"] > 0
        embedding = tf.zeros([1, 1])
        if with_identity:
            from face_gcn.nets import facenet as facenet_lib  # pylint: disable=import-outside-toplevel
            embedding = facenet_lib.embed(self.facenet, tf.constant(image[None] * 255.0)).embedding
        # landmarks in the renderer's continuous coordinates
        target = tf.constant((landmarks + 0.5)[None], tf.float32)
        losses = {}
        for stage in self.config.stages:
            if stage.steps == 0:
                continue
            size = int(stage.image_size or self.image_size)
            scaled_image = tf.constant(_resize(image, size)[None])
            scaled_mask = tf.constant(np.clip(_resize(mask, size), 0.0, 1.0)[None])
            rates = tf.constant(_learning_rate_vector(stage.learning_rates))
            step = self._step_function(size, stage.render, int(landmarks.shape[0]), with_identity)
            self._m.assign(tf.zeros_like(self._m))
            self._v.assign(tf.zeros_like(self._v))
            self._t.assign(0.0)
            for _ in range(stage.steps):
                values = step(scaled_image, scaled_mask, target, embedding, rates)
            losses[stage.name] = {name: float(value) for name, value in values.items()}
        coefficients = self._coefficients.numpy()[0].copy()
        if not np.all(np.isfinite(coefficients)):
            raise FloatingPointError("the fit diverged (non-finite coefficients)")
        return FitResult(coefficients, losses, time.perf_counter() - start)


def _check_inputs(image, mask, landmarks, size: int):
    image = np.asarray(image)
    if image.shape != (size, size, 3):
        raise ValueError(f"image must be [{size}, {size}, 3], got {image.shape}")
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    mask = np.asarray(mask)
    if mask.shape != (size, size):
        raise ValueError(f"mask must be [{size}, {size}], got {mask.shape}")
    mask = mask.astype(np.float32)
    if mask.max(initial=0.0) > 1.0:
        mask = mask / 255.0
    landmarks = np.asarray(landmarks, np.float32)
    if landmarks.shape not in ((5, 2), (68, 2)) or not np.all(np.isfinite(landmarks)):
        raise ValueError(f"landmarks must be a finite [5, 2] or [68, 2] array, got {landmarks.shape}")
    return image, mask, landmarks


def fit_coefficients(model, image, mask, landmarks, config: FitConfig | None = None, facenet=None,
                     initial=None, backend: str = "auto") -> FitResult:
    """One-off convenience wrapper: CoarseFitter(model, S, config, facenet).fit(...)."""
    size = int(np.asarray(image).shape[0])
    return CoarseFitter(model, size, config, facenet, backend).fit(image, mask, landmarks, initial)
