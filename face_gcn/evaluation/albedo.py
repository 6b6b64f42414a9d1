"""Albedo read back from a photo through a coarse reconstruction, and its error against a ground truth.

A texture trained to reproduce the photo through the coarse geometry and SH light tends to the
photo's colour at each vertex divided by the coarse shading, T_p / shading. How close that quotient
is to the true albedo bounds what any refined texture can reach with that coarse stage.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from face_gcn.morphable import coefficients as coeff_lib, formation
from face_gcn.render import face_renderer, lighting, vertex_sampling


class PhotoAlbedo(NamedTuple):
    """quotient [B, V, 3] in [0, 1] (T_p / shading, clipped); visible [B, V] bool (the vertex faces
    the camera, is unoccluded, inside the image and the face mask); render: the coarse FaceRender read
    through (None when the caller already had it)."""

    quotient: np.ndarray
    visible: np.ndarray
    render: face_renderer.FaceRender | None = None


def read_back(samples: vertex_sampling.VertexSamples, normals, gamma, min_shading: float = 1e-3) -> PhotoAlbedo:
    """T_p / shading from photo samples already taken through a coarse reconstruction (e.g. a
    forward.Reconstruction's samples and coarse.normals).

    Args:
      samples: T_p colours [B, V, 3] in [0, 1] and visibility [B, V].
      normals: [B, V, 3] unit vertex normals of the coarse shape, posed.
      gamma: [B, 27] the coarse SH light.
      min_shading: shading values below it are raised to it before dividing.
    """
    quotient = lighting.remove_shading(samples.colors, tf.cast(normals, tf.float32), gamma, min_shading)
    return PhotoAlbedo(quotient=quotient.numpy(), visible=np.asarray(samples.visibility) > 0.5)


def photo_albedo(morphable, coefficients, images, face_mask=None, min_shading: float = 1e-3) -> PhotoAlbedo:
    """Renders the coarse reconstruction of ``coefficients``, samples T_p and reads the albedo back.

    Args:
      morphable: MorphableModel (V vertices).
      coefficients: [B, 257] coarse coefficients (Deng's layout) for the S x S crops.
      images: [B, S, S, 3] photos, linear [0, 1].
      face_mask: optional [B, S, S] face-region mask (1 = face).
      min_shading: as in read_back.
    Returns:
      PhotoAlbedo with its render.
    """
    coefficients = tf.convert_to_tensor(coefficients, tf.float32)
    images = tf.convert_to_tensor(images, tf.float32)
    if coefficients.shape.rank != 2 or coefficients.shape[1] != coeff_lib.NUM_COEFFICIENTS:
        raise ValueError(f"coefficients must be [B, {coeff_lib.NUM_COEFFICIENTS}], got {coefficients.shape}")
    if images.shape.rank != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2] \
            or images.shape[0] != coefficients.shape[0]:
        raise ValueError(f"images must be [{coefficients.shape[0]}, S, S, 3], got {images.shape}")
    size = int(images.shape[1])
    render = face_renderer.render_coefficients(morphable, coefficients, image_size=size)
    tensors = formation.model_tensors(morphable)
    focal, center = face_renderer.camera_for_size(size)
    samples = vertex_sampling.sample_vertex_colors(images, render.posed, render.normals, tensors.triangles,
                                                   face_mask=face_mask, focal=focal,
                                                   center=center, fragments=render.fragments)
    gamma = coeff_lib.split_coefficients(coefficients).gamma
    return read_back(samples, render.normals, gamma, min_shading)._replace(render=render)


def albedo_error(albedo, truth, vertex_mask) -> np.ndarray:
    """[B] mean over the masked vertices of the Euclidean RGB distance ||a - t|| (nan where none is masked).

    Args:
      albedo, truth: [B, V, 3].
      vertex_mask: [V] or [B, V] bool.
    """
    albedo = np.asarray(albedo, np.float64)
    truth = np.asarray(truth, np.float64)
    if albedo.ndim != 3 or albedo.shape[-1] != 3 or albedo.shape != truth.shape:
        raise ValueError(f"albedo and truth must be equal [B, V, 3], got {albedo.shape}, {truth.shape}")
    mask = np.broadcast_to(np.asarray(vertex_mask, bool), albedo.shape[:2])
    distance = np.sqrt(((albedo - truth) ** 2).sum(-1))
    counts = mask.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (distance * mask).sum(axis=1) / counts, np.nan)
