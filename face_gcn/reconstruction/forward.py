"""One photo batch through the whole method (Lin et al. 2020, Fig. 2).

images -> regressor (coefficients, pool5 features) -> coarse render (3DMM albedo T lit by the
SH light) -> T_p (photo colours at visible vertices) -> texture GCN (embedding + per-vertex
albedo / T_p / visibility) -> refined albedo T' -> lit T~' -> refined render R'.

The regressor stands for Deng's pretrained network and is never trained here: its outputs are
held constant (stop_gradient, batch-norm in inference mode). Colours are linear RGB in [0, 1].
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import keras
import tensorflow as tf

from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import formation
from face_gcn.morphable.model import MorphableModel
from face_gcn.nets import facenet as facenet_lib
from face_gcn.nets import gcn
from face_gcn.nets import regressor as regressor_lib
from face_gcn.render import face_renderer, lighting, vertex_sampling


@dataclasses.dataclass(frozen=True)
class FaceGCN:
    """The trained parts of the method for one morphable model and crop size.

    regressor: images [B, S, S, 3] (RGB 0-255) -> {"coefficients" [B, 257], "features" [B, F]}.
    texture_gcn: [embedding [B, E], vertex features [B, V, 7]] -> colours [B, V, 3] in [-1, 1].
    facenet: None, or the frozen FaceNet whose 1792-d features join the embedding (E = F + 1792).
    """

    morphable: MorphableModel
    regressor: keras.Model
    texture_gcn: keras.Model
    facenet: keras.Model | None
    image_size: int

    def __post_init__(self):
        expected = embedding_size(self.regressor.output["features"].shape[-1], self.facenet is not None)
        embedding, features = self.texture_gcn.inputs
        if embedding.shape[-1] != expected:
            raise ValueError(f"texture GCN expects a {embedding.shape[-1]}-d embedding, the regressor"
                             f"{' and FaceNet' if self.facenet is not None else ''} give {expected}")
        if features.shape[1] != self.morphable.num_vertices:
            raise ValueError(f"texture GCN is built for {features.shape[1]} vertices, the morphable model has "
                             f"{self.morphable.num_vertices}")
        if tuple(self.regressor.input.shape[1:3]) != (self.image_size, self.image_size):
            raise ValueError(f"regressor input {tuple(self.regressor.input.shape[1:3])} does not match "
                             f"image_size {self.image_size}")


def embedding_size(regressor_features: int, use_facenet: bool) -> int:
    """E: regressor pool features, plus FaceNet's 1792 when FaceNet is used (authors: 2048 + 1792)."""
    return int(regressor_features) + (facenet_lib.FEATURE_SIZE if use_facenet else 0)


class Reconstruction(NamedTuple):
    coefficients: tf.Tensor     # [B, 257] coarse coefficients (constant w.r.t. training)
    coarse: face_renderer.FaceRender  # the 3DMM reconstruction and its render
    samples: vertex_sampling.VertexSamples  # T_p (colours [B, V, 3] in [0, 1]) and visibility [B, V]
    embedding: tf.Tensor        # [B, E]
    refined_albedo: tf.Tensor   # [B, V, 3] T' in [0, 1]
    refined_colors: tf.Tensor   # [B, V, 3] T~' = T' lit by the coarse SH light
    refined_image: tf.Tensor    # [B, S, S, 3] R', 0 where no face
    refined_alpha: tf.Tensor    # [B, S, S] coverage


def reconstruct(nets: FaceGCN, images, face_mask=None, training: bool = False,
                backend: str = "auto", coefficients=None) -> Reconstruction:
    """Runs the method on aligned crops.

    Args:
      nets: the trained parts.
      images: [B, S, S, 3] RGB, 0-255 (uint8 or float), S = nets.image_size.
      face_mask: None or [B, S, S] / [B, S, S, 1] in [0, 1]: T_p visibility also requires the
        face region (as the input pipeline gives it).
      training: runs the texture GCN in training mode (the regressor and FaceNet never are).
      backend: rasterizer backend ("auto", "op", "fallback"; export uses "fallback").
      coefficients: None (the regressor's), or [B, 257] coarse coefficients to use instead, e.g. a
        synthetic set's ground truth for an experiment with a perfect coarse stage (the regressor
        still gives the image embedding).
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
    regressed = regressor_lib.regress(nets.regressor, images, training=False)
    if coefficients is None:
        # float32 whatever the CNNs compute in (mixed precision runs them in float16)
        coefficients = tf.stop_gradient(tf.cast(regressed.coefficients, tf.float32))
    else:
        coefficients = tf.stop_gradient(tf.cast(tf.convert_to_tensor(coefficients), tf.float32))
        if coefficients.shape.rank != 2 or coefficients.shape[1] != coeff_lib.NUM_COEFFICIENTS \
                or coefficients.shape[0] != images.shape[0]:
            raise ValueError(f"coefficients must be [{images.shape[0]}, {coeff_lib.NUM_COEFFICIENTS}], "
                             f"got {coefficients.shape}")
    features = [tf.stop_gradient(tf.cast(regressed.features, tf.float32))]
    if nets.facenet is not None:
        features.append(tf.stop_gradient(tf.cast(facenet_lib.embed(nets.facenet, images).features, tf.float32)))
    embedding = tf.concat(features, axis=-1)

    coarse = face_renderer.render_coefficients(nets.morphable, coefficients, image_size=size, backend=backend)
    tensors = formation.model_tensors(nets.morphable)
    focal, center = face_renderer.camera_for_size(size)
    samples = vertex_sampling.sample_vertex_colors(
        images / 255.0, coarse.posed, coarse.normals, tensors.triangles, tensors.vertex_triangles,
        face_mask=face_mask, focal=focal, center=center, backend=backend)

    features = gcn.refiner_inputs(tf.clip_by_value(coarse.albedo, 0.0, 1.0), samples.colors, samples.visibility)
    colors = nets.texture_gcn([embedding, features], training=training)
    refined_albedo = 0.5 * (tf.cast(colors, tf.float32) + 1.0)
    gamma = coeff_lib.split_coefficients(coefficients).gamma
    refined_colors = lighting.illuminate(refined_albedo, coarse.normals, gamma)
    image, alpha = face_renderer.render_posed(coarse.posed, tensors.triangles, refined_colors, size, backend=backend)
    return Reconstruction(coefficients=coefficients, coarse=coarse, samples=samples, embedding=embedding,
                          refined_albedo=refined_albedo, refined_colors=refined_colors,
                          refined_image=image, refined_alpha=alpha)
