"""Coefficients to image: the full forward model of a face under Deng's camera.

257 coefficients -> shape and albedo (Eq. 1) -> pose -> vertex normals -> SH-lit vertex
colours -> deferred rasterization. One pure function, differentiable end to end (through the
rasterizer's barycentrics), used by the demo, the coarse stage and the fitting.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from face_gcn.mesh import normals as normals_lib
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import formation
from face_gcn.render import camera, deferred, lighting


class FaceRender(NamedTuple):
    """Everything the forward model computes for a batch of B faces (V vertices)."""

    shape: tf.Tensor          # [B, V, 3] model space (identity + expression), model units
    posed: tf.Tensor          # [B, V, 3] world space after rotation and translation
    albedo: tf.Tensor         # [B, V, 3] linear RGB in [0, 1] (not clipped)
    normals: tf.Tensor        # [B, V, 3] unit vertex normals, world space
    colors: tf.Tensor         # [B, V, 3] albedo lit by the SH light
    landmarks: tf.Tensor      # [B, 68, 2] pixels, rows pointing down, centres at i + 0.5
    image: tf.Tensor          # [B, H, W, 3] rendered colours, 0 where no face
    alpha: tf.Tensor          # [B, H, W] 1 where the face covers the pixel
    fragments: deferred.Fragments  # the rasterization behind image: other colourings reuse it (shade_posed)


def camera_for_size(image_size: int) -> tuple[float, float]:
    """Deng's focal length and principal point scaled to a square image of ``image_size``."""
    scale = image_size / camera.DENG_IMAGE_SIZE
    return camera.DENG_FOCAL * scale, 0.5 * image_size


def render_coefficients(model, coefficients, image_size: int = camera.DENG_IMAGE_SIZE,
                        backend: str = "auto") -> FaceRender:
    """Renders faces from Deng-layout coefficient vectors.

    Args:
      model: a MorphableModel (80 identity, 64 expression, 80 albedo components).
      coefficients: [B, 257] float.
      image_size: side of the square render in pixels; the camera keeps Deng's field of view.
      backend: rasterizer backend, "auto", "op" or "fallback".
    Returns:
      FaceRender.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    blocks = coeff_lib.split_coefficients(tf.convert_to_tensor(coefficients, tf.float32))
    tensors = formation.model_tensors(model)
    shape = formation.shape_from_model(model, blocks.id, blocks.exp)
    albedo = formation.albedo_from_model(model, blocks.tex)
    posed = camera.rigid_transform(shape, blocks.angles, blocks.translation)
    normals = normals_lib.vertex_normals(posed, tensors.triangles, tensors.vertex_triangles)
    colors = lighting.illuminate(albedo, normals, blocks.gamma)
    focal, center = camera_for_size(image_size)
    landmarks = camera.project_landmarks(posed, tensors.landmark_indices, focal=focal,
                                         center=center, image_height=image_size)
    fragments = rasterize_posed(posed, tensors.triangles, image_size, backend=backend)
    image, alpha = deferred.shade_fragments(fragments, tensors.triangles, colors)
    return FaceRender(shape=shape, posed=posed, albedo=albedo, normals=normals, colors=colors,
                      landmarks=landmarks, image=image, alpha=alpha, fragments=fragments)


def rasterize_posed(posed, triangles, image_size: int = camera.DENG_IMAGE_SIZE,
                    backend: str = "auto") -> deferred.Fragments:
    """Fragments of world-space meshes [B, V, 3] through Deng's camera at image_size x image_size."""
    focal, center = camera_for_size(image_size)
    clip = camera.deng_clip_space(posed, focal=focal, center=center, image_width=image_size,
                                  image_height=image_size)
    return deferred.rasterize_fragments(clip, triangles, image_size, image_size, backend=backend)


def render_posed(posed, triangles, colors, image_size: int = camera.DENG_IMAGE_SIZE,
                 backend: str = "auto"):
    """Renders world-space meshes with per-vertex colours through Deng's camera.

    Args:
      posed: [B, V, 3] world-space vertices (camera at z = 10).
      triangles: [T, 3] int32.
      colors: [B, V, C] per-vertex values (e.g. lit refined colours).
      image_size: side of the square render; the camera keeps Deng's field of view.
    Returns:
      image [B, S, S, C] (0 where no face), alpha [B, S, S] coverage in {0, 1}.
    """
    focal, center = camera_for_size(image_size)
    clip = camera.deng_clip_space(posed, focal=focal, center=center, image_width=image_size,
                                  image_height=image_size)
    return deferred.render_vertex_colors(clip, triangles, colors, image_size, image_size,
                                         backend=backend)
