"""One photo batch through the whole method (Lin et al. 2020, Fig. 2).

images -> regressor (coefficients, pool5 features) [-> a short batched fit of the coefficients to
the landmarks and pixels, face_gcn.fit.coarse_fit, when fit_steps > 0] -> coarse render (3DMM
albedo T lit by the SH light) -> T_p (photo colours at visible vertices) -> texture GCN (embedding
+ per-vertex albedo / T_p / visibility) -> refined albedo T' -> lit T~' -> refined render R'.

The regressor stands for Deng's pretrained network and is never trained here: its outputs are
held constant (stop_gradient, batch-norm in inference mode). Colours are linear RGB in [0, 1].
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from typing import NamedTuple

import keras
import tensorflow as tf

from face_gcn.data import mask_morphology
from face_gcn.fit import coarse_fit
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import formation
from face_gcn.morphable.model import MorphableModel
from face_gcn.nets import gcn, inference
from face_gcn.nets import recognition
from face_gcn.nets import regressor as regressor_lib
from face_gcn.render import deferred, face_renderer, lighting, vertex_sampling


REFINER_PHOTO_INPUTS = ("colors", "shading_removed")


@dataclasses.dataclass(frozen=True)
class FaceGCN:
    """The trained parts of the method for one morphable model and crop size.

    regressor: images [B, S, S, 3] (RGB 0-255) -> {"coefficients" [B, 257], "features" [B, F]}.
    texture_gcn: [embedding [B, E], vertex features [B, V, 7]] -> colours [B, V, 3] in [-1, 1].
    recognizer: None, or the frozen face-recognition network (nets.recognition: FaceNet, or dlib's
      descriptor) whose pooled features join the embedding (E = F + 1792 with FaceNet, F + 256 with
      dlib's descriptor).
    fit_steps: rendered steps of the coarse fit after the regressor (coarse_fit.refinement_stages;
      0: the regressor alone, as the paper).
    refiner_photo: what the Refiner reads of the photo (REFINER_PHOTO_INPUTS): "colors", T_p as
      sampled (the paper), or "shading_removed", T_p divided by the coarse stage's SH shading (the
      photo's albedo as the coarse light explains it; the Refiner has no input that tells it the
      shading, so with T_p it must guess it).
    mask_erosion: the face mask as T_p's visibility reads it (mask_morphology.MASK_EROSIONS):
      "none", or "authors" (dilated once, eroded twice, as their code: the rim where hair and
      background bleed in is left out).
    """

    morphable: MorphableModel
    regressor: keras.Model
    texture_gcn: keras.Model
    recognizer: keras.Model | None
    image_size: int
    fit_steps: int = 0
    refiner_photo: str = "colors"
    mask_erosion: str = "none"

    def __post_init__(self):
        if self.fit_steps < 0:
            raise ValueError(f"fit_steps must be >= 0, got {self.fit_steps}")
        if self.refiner_photo not in REFINER_PHOTO_INPUTS:
            raise ValueError(f"refiner_photo must be one of {REFINER_PHOTO_INPUTS}, got {self.refiner_photo!r}")
        if self.mask_erosion not in mask_morphology.MASK_EROSIONS:
            raise ValueError(f"mask_erosion must be one of {mask_morphology.MASK_EROSIONS}, got {self.mask_erosion!r}")
        expected = embedding_size(self.regressor.output["features"].shape[-1], recognition.feature_size(self.recognizer))
        embedding, features = self.texture_gcn.inputs
        if embedding.shape[-1] != expected:
            raise ValueError(f"texture GCN expects a {embedding.shape[-1]}-d embedding, the regressor"
                             f"{describe_recognizer(self.recognizer, ' and ')} give {expected}")
        if features.shape[1] != self.morphable.num_vertices:
            raise ValueError(f"texture GCN is built for {features.shape[1]} vertices, the morphable model has "
                             f"{self.morphable.num_vertices}")
        if tuple(self.regressor.input.shape[1:3]) != (self.image_size, self.image_size):
            raise ValueError(f"regressor input {tuple(self.regressor.input.shape[1:3])} does not match "
                             f"image_size {self.image_size}")


def for_inference(nets: FaceGCN) -> FaceGCN:
    """The same nets with the regressor's and the recognizer's batch norms folded into their convolutions
    (nets.inference.fold_batch_norms: the same outputs up to float32 rounding, about 7% less CNN time at
    224 px on a 2-core CPU). For inference only: the folded copies are frozen and share no weights."""
    return dataclasses.replace(
        nets, regressor=inference.fold_batch_norms(nets.regressor),
        recognizer=None if nets.recognizer is None else inference.fold_batch_norms(nets.recognizer))


def embedding_size(regressor_features: int, recognizer_features: int = 0) -> int:
    """E: the regressor's pool features plus the recognition network's (authors: 2048 + FaceNet's 1792;
    2048 + 256 with dlib's descriptor; 2048 alone without a network)."""
    return int(regressor_features) + int(recognizer_features)


def describe_recognizer(recognizer, prefix: str = "") -> str:
    """prefix + the network's name ("FaceNet", "dlib's face descriptor"); "" for None."""
    return "" if recognizer is None else prefix + recognition.NAMES[recognition.kind_of(recognizer)]


class Reconstruction(NamedTuple):
    coefficients: tf.Tensor     # [B, 257] coarse coefficients (constant w.r.t. training)
    coarse: face_renderer.FaceRender  # the 3DMM reconstruction and its render
    samples: vertex_sampling.VertexSamples  # T_p (colours [B, V, 3] in [0, 1]) and visibility [B, V]
    embedding: tf.Tensor        # [B, E]
    refined_albedo: tf.Tensor   # [B, V, 3] T' in [0, 1]
    refined_colors: tf.Tensor   # [B, V, 3] T~' = T' lit by the coarse SH light
    refined_image: tf.Tensor    # [B, S, S, 3] R', 0 where no face
    refined_alpha: tf.Tensor    # [B, S, S] coverage


def coarse_coefficients(morphable: MorphableModel, images, regressed, fit_steps: int, face_mask=None,
                        landmarks=None, backend: str = "auto") -> tf.Tensor:
    """The coarse stage's coefficients: the regressor's, then ``fit_steps`` of the batched fit
    (coarse_fit.refinement_stages).

    Args:
      images: [B, S, S, 3] float RGB 0-255.
      regressed: [B, 257] the regressor's coefficients (the fit's start).
      fit_steps: rendered fit steps; 0: the regressor's coefficients as they are.
      face_mask: None (the whole crop) or [B, S, S] in [0, 1].
      landmarks: [B, 5 or 68, 2] crop pixel indices; needed when fit_steps > 0.
    Returns:
      [B, 257] float32, constant w.r.t. training (stop_gradient).
    """
    regressed = tf.stop_gradient(tf.cast(regressed, tf.float32))
    if fit_steps == 0:
        return regressed
    if landmarks is None:
        raise ValueError(f"the coarse fit ({fit_steps} steps) needs landmarks; pass fit_steps=0 for the "
                         "regressor alone")
    landmarks = tf.cast(tf.convert_to_tensor(landmarks), tf.float32)
    mask = tf.ones_like(images[..., 0]) if face_mask is None else tf.cast(face_mask, tf.float32)
    fit = _compiled_fit(morphable, int(fit_steps), int(landmarks.shape[1]), backend) if tf.executing_eagerly() \
        else functools.partial(_fit, morphable, int(fit_steps), backend=backend)
    return tf.stop_gradient(fit(images / 255.0, mask, landmarks, regressed))


def _fit(morphable, fit_steps, images, masks, landmarks, initial, backend="auto"):
    config = coarse_fit.refinement_config(fit_steps, int(landmarks.shape[1]))
    return coarse_fit.fit_batch(morphable, images, masks, landmarks, initial, config, backend=backend)[0]


_COMPILED_FITS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _compiled_fit(morphable, fit_steps: int, num_landmarks: int, backend: str):
    """The fit as one tf.function per (model, steps, landmark count, backend), for eager callers: run op
    by op, its while loops would cost seconds per step."""
    functions = _COMPILED_FITS.setdefault(morphable, {})
    key = (fit_steps, num_landmarks, backend)
    if key not in functions:
        functions[key] = tf.function(functools.partial(_fit, morphable, fit_steps, backend=backend),
                                     reduce_retracing=True, autograph=False)
    return functions[key]


def image_embedding(regressed_features, recognizer, images) -> tf.Tensor:
    """[B, E] the texture GCN's embedding: the regressor's pool features [+ the recognition network's],
    float32, constant."""
    features = [tf.cast(regressed_features, tf.float32)]
    if recognizer is not None:
        features.append(tf.cast(recognition.embed(recognizer, images).features, tf.float32))
    return tf.stop_gradient(tf.concat(features, axis=-1))


def reconstruct(nets: FaceGCN, images, face_mask=None, training: bool = False,
                backend: str = "auto", coefficients=None, landmarks=None, fit_steps=None,
                embedding=None) -> Reconstruction:
    """Runs the method on aligned crops.

    Args:
      nets: the trained parts.
      images: [B, S, S, 3] RGB, 0-255 (uint8 or float), S = nets.image_size.
      face_mask: None or [B, S, S] / [B, S, S, 1] in [0, 1]: T_p visibility also requires the
        face region (as the input pipeline gives it; eroded first if nets.mask_erosion says so).
      training: runs the texture GCN in training mode (the regressor and the recognizer never are).
      backend: rasterizer backend ("auto", "op", "fallback"; export uses "fallback").
      coefficients: None (the regressor's, then the fit's), or [B, 257] coarse coefficients to use
        instead: a coarse cache's, or a synthetic set's ground truth for an experiment with a
        perfect coarse stage.
      landmarks: [B, 5 or 68, 2] crop pixel indices, for the coarse fit.
      fit_steps: None: nets.fit_steps; 0: the regressor alone.
      embedding: None (from the regressor and the recognizer), or [B, E] a coarse cache's; then the
        CNNs do not run at all and ``coefficients`` must be given too.
    Returns:
      Reconstruction.
    """
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    size = nets.image_size
    if images.shape.rank != 4 or tuple(images.shape[1:]) != (size, size, 3):
        raise ValueError(f"images must be [B, {size}, {size}, 3], got {images.shape}")
    if face_mask is not None:
        face_mask = tf.cast(tf.convert_to_tensor(face_mask), tf.float32)
        if face_mask.shape.rank == 4 and face_mask.shape[-1] == 1:
            face_mask = face_mask[..., 0]
    if embedding is not None:
        if coefficients is None:
            raise ValueError("a given embedding needs the coarse coefficients too (a coarse cache holds both)")
        embedding = tf.stop_gradient(tf.cast(tf.convert_to_tensor(embedding), tf.float32))
    else:
        regressed = regressor_lib.regress(nets.regressor, images, training=False)
        embedding = image_embedding(regressed.features, nets.recognizer, images)
        if coefficients is None:
            # float32 whatever the CNNs compute in (mixed precision runs them in float16)
            coefficients = coarse_coefficients(nets.morphable, images, regressed.coefficients,
                                               nets.fit_steps if fit_steps is None else int(fit_steps),
                                               face_mask, landmarks, backend)
    coefficients = tf.stop_gradient(tf.cast(tf.convert_to_tensor(coefficients), tf.float32))
    if coefficients.shape.rank != 2 or coefficients.shape[1] != coeff_lib.NUM_COEFFICIENTS \
            or coefficients.shape[0] != images.shape[0]:
        raise ValueError(f"coefficients must be [{images.shape[0]}, {coeff_lib.NUM_COEFFICIENTS}], "
                         f"got {coefficients.shape}")

    coarse = face_renderer.render_coefficients(nets.morphable, coefficients, image_size=size, backend=backend)
    tensors = formation.model_tensors(nets.morphable)
    focal, center = face_renderer.camera_for_size(size)
    visible_region = face_mask
    if face_mask is not None and nets.mask_erosion == "authors":
        visible_region = mask_morphology.erode_face_mask(face_mask)
    samples = vertex_sampling.sample_vertex_colors(
        images / 255.0, coarse.posed, coarse.normals, tensors.triangles,
        face_mask=visible_region, focal=focal, center=center, backend=backend, fragments=coarse.fragments)

    gamma = coeff_lib.split_coefficients(coefficients).gamma
    photo = samples.colors
    if nets.refiner_photo == "shading_removed":
        photo = lighting.remove_shading(samples.colors, coarse.normals, gamma)
    features = gcn.refiner_inputs(tf.clip_by_value(coarse.albedo, 0.0, 1.0), photo, samples.visibility)
    colors = nets.texture_gcn([embedding, features], training=training)
    refined_albedo = 0.5 * (tf.cast(colors, tf.float32) + 1.0)
    refined_colors = lighting.illuminate(refined_albedo, coarse.normals, gamma)
    # one rasterization serves the coarse render, T_p's visibility and the refined render (same geometry)
    image, alpha = deferred.shade_fragments(coarse.fragments, tensors.triangles, refined_colors)
    return Reconstruction(coefficients=coefficients, coarse=coarse, samples=samples, embedding=embedding,
                          refined_albedo=refined_albedo, refined_colors=refined_colors,
                          refined_image=image, refined_alpha=alpha)
