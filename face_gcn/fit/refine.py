"""Test-time texture refinement: a GCN Refiner + Combiner trained on one photo.

Given the coarse fit (geometry, 3DMM albedo T, SH light), the networks of Lin et al. (Sec. 3.3;
face_gcn.nets.gcn) are trained from scratch on this single image so that the per-vertex albedo
gains the photo's detail:

  L = w_pix L_pix(I, R') + w_T L_vert(T, T') + w_p L_vert(T_p, T~')  [+ w_id L_id]

- T' = clip(T + r C, 0, 1), the refined albedo: the Combiner's tanh output C in [-1, 1] is a
  colour residual on the fitted albedo T (r = ``residual_scale``), and its last Chebyshev conv
  starts at zero, so training starts at T (the paper's Combiner outputs the colour itself; with
  one image and a few hundred steps a random start does not converge). T~' = T' * shading, lit
  by the fitted SH light; R' its render (geometry fixed, so the rasterization is computed once).
- L_pix over render coverage x face mask; L_vert(T_p, .) only at visible vertices (T_p and the
  visibility from face_gcn.render.vertex_sampling, face mask included).
- Refiner input: refiner_inputs(T, T_p, vis) (7 channels). Without an image embedding there is
  no Decoder; the Combiner's "decoded" input is a per-vertex stand-in: (2T - 1,
  (2 D - 1) vis, vis) with D = clip(T_p / shading, 0, 1) the photo's de-lit colours.
- Occluded vertices keep the 3DMM albedo: the output is w T' + (1 - w) T with
  w = vis * (A^k vis), A the row-normalised mesh adjacency, k = ``blend_smoothing``: exactly
  0 at invisible vertices and fading in over k rings at the visibility border (no seam).
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple, Sequence

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from face_gcn.graph import hierarchy as hierarchy_lib
from face_gcn.losses import identity as identity_losses
from face_gcn.losses import photometric, vertex
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import formation
from face_gcn.nets import gcn, recognition
from face_gcn.render import camera, deferred, face_renderer, lighting, vertex_sampling


@dataclasses.dataclass(frozen=True)
class RefineConfig:
    """steps / learning_rate: Adam on the GCN weights. widths, latent, K: the Refiner (small
    widths suffice for one image). *_weight: loss weights (module docstring)."""

    steps: int = 150
    learning_rate: float = 3e-3
    refiner_widths: Sequence[int] = (16, 32, 32, 64)
    refiner_latent: int = 64
    K: int = 6
    pixel_weight: float = 1.0
    albedo_weight: float = 0.2
    projection_weight: float = 1.0
    identity_weight: float = 0.1
    blend_smoothing: int = 2
    residual_scale: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if self.steps < 0 or self.learning_rate <= 0 or self.blend_smoothing < 0:
            raise ValueError("steps and blend_smoothing must be >= 0, learning_rate > 0")


class RefineResult(NamedTuple):
    albedo: np.ndarray         # [V, 3] refined albedo in [0, 1], blended by visibility
    colors: np.ndarray         # [V, 3] refined albedo lit by the fitted light
    network_albedo: np.ndarray  # [V, 3] the network's output T' before the blend
    coarse_albedo: np.ndarray  # [V, 3] 3DMM albedo T of the fit
    image_colors: np.ndarray   # [V, 3] T_p sampled from the photo
    visibility: np.ndarray     # [V] {0, 1}
    blend: np.ndarray          # [V] weight w of T' in the output
    losses: dict               # final loss values
    seconds: float


def mesh_hierarchy(model, factors=(4, 4, 4, 4)):
    """The model's CoMA hierarchy (mean shape), cached by face_gcn.graph.hierarchy."""
    return hierarchy_lib.load_or_build_hierarchy(np.asarray(model.mean_shape, np.float64),
                                                 np.asarray(model.triangles, np.int64), factors)


def visibility_blend(visibility, adjacency, rings: int) -> np.ndarray:
    """w = vis * (A^rings vis) with A the row-normalised adjacency; [V] in [0, 1]."""
    visibility = np.asarray(visibility, np.float64).reshape(-1)
    adjacency = sp.csr_matrix(adjacency, dtype=np.float64)
    degree = np.asarray(adjacency.sum(axis=1)).reshape(-1)
    walk = sp.diags(1.0 / np.maximum(degree, 1e-12)) @ adjacency
    smooth = visibility.copy()
    for _ in range(rings):
        smooth = walk @ smooth
    return (visibility * smooth).astype(np.float32)


class TextureRefiner:
    """Builds the Refiner and Combiner once for a model; ``refine`` trains them on one photo
    (weights reset to the same initial values for every photo).

    Args:
      model: MorphableModel. image_size: S of the aligned crops. config: RefineConfig.
      hierarchy: optional MeshHierarchy (default: mesh_hierarchy(model), cached on disk).
      recognizer: optional frozen recognition network (nets.recognition; adds L_id on the render composited
        into the photo).
    """

    def __init__(self, model, image_size: int = camera.DENG_IMAGE_SIZE, config: RefineConfig | None = None,
                 hierarchy=None, recognizer=None, backend: str = "auto"):
        self.model = model
        self.image_size = int(image_size)
        self.config = config or RefineConfig()
        self.backend = backend
        self.recognizer = recognizer
        self.hierarchy = hierarchy or mesh_hierarchy(model)
        if self.hierarchy.num_vertices[0] != model.num_vertices:
            raise ValueError(f"hierarchy has {self.hierarchy.num_vertices[0]} vertices, the model "
                             f"{model.num_vertices}")
        widths = tuple(int(w) for w in self.config.refiner_widths)
        gcn_config = gcn.GCNConfig(refiner_widths=widths, refiner_latent=self.config.refiner_latent,
                                   refiner_skip_levels=len(widths), K=self.config.K, lmax="exact")
        keras.utils.set_random_seed(self.config.seed)
        matrices = gcn.mesh_matrices(self.hierarchy, gcn_config)
        self.refiner = gcn.build_refiner(self.hierarchy, gcn_config, matrices)
        self.combiner = gcn.build_combiner(model.num_vertices, gcn.REFINER_INPUT_CHANNELS,
                                           self.refiner.output.shape[-1], matrices.laplacians[0], gcn_config)
        final = self.combiner.get_layer("cheb")
        for weight in final.trainable_weights:
            weight.assign(tf.zeros_like(weight))
        self._variables = self.refiner.trainable_variables + self.combiner.trainable_variables
        self._initial = [v.numpy() for v in self._variables]
        self.optimizer = keras.optimizers.Adam(self.config.learning_rate)
        self.optimizer.build(self._variables)
        # restored per photo (this includes the learning-rate variable, which must not be zeroed)
        self._optimizer_initial = [v.numpy() for v in self.optimizer.variables]
        self.adjacency = self.hierarchy.adjacency(0)
        self._step = self._make_step()

    def _make_step(self):
        cfg = self.config
        triangles = formation.model_tensors(self.model).triangles
        with_identity = self.recognizer is not None and cfg.identity_weight > 0

        @tf.function(autograph=False)
        def step(image, mask, features, decoded, albedo, shading, image_colors, visibility,
                 barycentrics, triangle_ids, coverage, embedding):
            with tf.GradientTape() as tape:
                residual = self.combiner([decoded, self.refiner(features, training=True)], training=True)
                refined = tf.clip_by_value(albedo + cfg.residual_scale * residual, 0.0, 1.0)
                lit = refined * shading
                render = tf.reverse(deferred.interpolate_attributes(lit, triangles, barycentrics,
                                                                    triangle_ids), axis=[1])
                terms = {
                    "pixel": cfg.pixel_weight * photometric.pixel_loss(image, render, coverage * mask),
                    "albedo": cfg.albedo_weight * vertex.vertex_loss(refined, albedo),
                    "projection": cfg.projection_weight * vertex.vertex_loss(lit, image_colors, visibility),
                }
                if with_identity:
                    alpha = coverage[..., None]
                    composite = (render * alpha + image * (1.0 - alpha)) * 255.0
                    terms["identity"] = cfg.identity_weight * identity_losses.identity_loss(
                        embedding, recognition.embed(self.recognizer, composite).embedding)
                total = tf.add_n(list(terms.values()))
            gradients = tape.gradient(total, self._variables)
            gradients = [tf.clip_by_norm(g, 5.0) for g in gradients]
            self.optimizer.apply_gradients(zip(gradients, self._variables))
            terms["total"] = total
            return terms, refined

        return step

    def _reset(self):
        for variable, value in zip(self._variables, self._initial):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, self._optimizer_initial):
            variable.assign(value)

    def refine(self, image, mask, coefficients) -> RefineResult:
        """Trains on one photo and returns the refined albedo.

        Args:
          image: [S, S, 3] float in [0, 1] (or uint8), the aligned crop the coefficients fit.
          mask: [S, S] face-region mask in [0, 1] (or uint8 0/1, 0/255).
          coefficients: [257] fitted coefficients.
        """
        size = self.image_size
        image = np.asarray(image)
        if image.shape != (size, size, 3):
            raise ValueError(f"image must be [{size}, {size}, 3], got {image.shape}")
        image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
        mask = np.asarray(mask, np.float32)
        if mask.shape != (size, size):
            raise ValueError(f"mask must be [{size}, {size}], got {mask.shape}")
        if mask.max(initial=0.0) > 1.0:
            mask = mask / 255.0
        coefficients = np.asarray(coefficients, np.float32).reshape(1, -1)
        if coefficients.shape[1] != coeff_lib.NUM_COEFFICIENTS:
            raise ValueError(f"coefficients must be [257], got {coefficients.shape[1:]}")
        start = time.perf_counter()
        self._reset()
        fitted = face_renderer.render_coefficients(self.model, coefficients, size, backend=self.backend)
        tensors = formation.model_tensors(self.model)
        images = tf.constant(image[None])
        masks = tf.constant(mask[None])
        samples = vertex_sampling.sample_vertex_colors(
            images, fitted.posed, fitted.normals, tensors.triangles,
            face_mask=masks, focal=face_renderer.camera_for_size(size)[0], backend=self.backend,
            fragments=fitted.fragments)
        gamma = coeff_lib.split_coefficients(coefficients).gamma
        shading = lighting.sh_shading(fitted.normals, gamma)                      # [1, V, 3]
        albedo = tf.clip_by_value(fitted.albedo, 0.0, 1.0)
        vis = samples.visibility
        delit = tf.clip_by_value(samples.colors / tf.maximum(shading, 1e-3), 0.0, 1.0)
        features = gcn.refiner_inputs(albedo, samples.colors, vis)
        decoded = gcn.refiner_inputs(albedo, delit, vis)
        barycentrics, triangle_ids = fitted.fragments.barycentrics, fitted.fragments.triangle_ids
        embedding = tf.zeros([1, 1])
        if self.recognizer is not None and self.config.identity_weight > 0:
            embedding = recognition.embed(self.recognizer, images * 255.0).embedding
        refined, terms = albedo, {}
        for _ in range(self.config.steps):
            terms, refined = self._step(images, masks, features, decoded, albedo, shading, samples.colors,
                                        vis, barycentrics, triangle_ids, fitted.alpha, embedding)
        visibility = vis.numpy()[0]
        blend = visibility_blend(visibility, self.adjacency, self.config.blend_smoothing)
        network = refined.numpy()[0] if self.config.steps else albedo.numpy()[0]
        coarse = albedo.numpy()[0]
        output = blend[:, None] * network + (1.0 - blend[:, None]) * coarse
        colors = output * shading.numpy()[0]
        return RefineResult(albedo=output.astype(np.float32), colors=colors.astype(np.float32),
                            network_albedo=network.astype(np.float32), coarse_albedo=coarse,
                            image_colors=samples.colors.numpy()[0], visibility=visibility,
                            blend=blend, losses={k: float(v) for k, v in terms.items()},
                            seconds=time.perf_counter() - start)


def render_albedo(model, coefficients, albedo, image_size: int = camera.DENG_IMAGE_SIZE,
                  backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Renders the fitted geometry and light with a given per-vertex albedo.

    Args: coefficients [257]; albedo [V, 3] in [0, 1]. Returns (image [S, S, 3] float32 lit
    colours, 0 where no face; alpha [S, S] float32 coverage).
    """
    coefficients = np.asarray(coefficients, np.float32).reshape(1, -1)
    albedo = np.asarray(albedo, np.float32)
    if albedo.shape != (model.num_vertices, 3):
        raise ValueError(f"albedo must be [{model.num_vertices}, 3], got {albedo.shape}")
    fitted = face_renderer.render_coefficients(model, coefficients, image_size, backend=backend)
    gamma = coeff_lib.split_coefficients(coefficients).gamma
    colors = lighting.illuminate(albedo[None], fitted.normals, gamma)
    image, alpha = deferred.shade_fragments(fitted.fragments, formation.model_tensors(model).triangles, colors)
    return image.numpy()[0], alpha.numpy()[0]
