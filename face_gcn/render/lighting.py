"""Deng et al.'s spherical-harmonics (9 bands per channel) Lambertian lighting.

Shading of a unit normal n = (x, y, z) for one colour channel is sum_k gamma_k Y_k(n) with
the basis (Deng's Illumination_layer, ordering and signs included; the constants fold in the
Lambertian kernel a_l and the SH normalisation c_l):
  Y0 = a0 c0                       Y1 = -a1 c1 y          Y2 = a1 c1 z
  Y3 = -a1 c1 x                    Y4 = a2 c2 x y         Y5 = -a2 c2 y z
  Y6 = a2 c2 (3 z^2 - 1) / (2 sqrt3)                      Y7 = -a2 c2 x z
  Y8 = a2 c2 (x^2 - y^2) / 2
a0 = pi, a1 = 2 pi / sqrt3, a2 = 2 pi / sqrt8, c0 = 1 / sqrt(4 pi), c1 = sqrt3 / sqrt(4 pi),
c2 = 3 sqrt5 / sqrt(12 pi).

gamma [B, 27] is channel-major (R's nine coefficients, then G's, then B's), and Deng adds an
ambient 0.8 to the first coefficient of every channel before shading. Normals must be in the
same (posed) frame as the light: Deng rotates them with the face pose first.
"""

from __future__ import annotations

import math

import tensorflow as tf

NUM_SH_BANDS = 9
NUM_CHANNELS = 3
DENG_AMBIENT_OFFSET = 0.8   # added to gamma[c, 0] for every channel c

A0 = math.pi
A1 = 2.0 * math.pi / math.sqrt(3.0)
A2 = 2.0 * math.pi / math.sqrt(8.0)
C0 = 1.0 / math.sqrt(4.0 * math.pi)
C1 = math.sqrt(3.0) / math.sqrt(4.0 * math.pi)
C2 = 3.0 * math.sqrt(5.0) / math.sqrt(12.0 * math.pi)


def _normals_tensor(normals) -> tf.Tensor:
    normals = tf.convert_to_tensor(normals)
    if not normals.dtype.is_floating:
        raise ValueError(f"normals must be floating point, got {normals.dtype.name}")
    if normals.shape.rank is not None and (normals.shape.rank == 0 or
                                           normals.shape[-1] not in (None, 3)):
        raise ValueError(f"normals must have shape [..., 3], got {normals.shape}")
    return normals


def _basis_values(normals) -> list:
    """The 9 basis values of unit normals [..., 3], each [...]."""
    x, y, z = tf.unstack(normals, axis=-1)
    k1, k2 = A1 * C1, A2 * C2
    return [
        tf.fill(tf.shape(x), tf.constant(A0 * C0, normals.dtype)),
        -k1 * y,
        k1 * z,
        -k1 * x,
        k2 * x * y,
        -k2 * y * z,
        k2 * 0.5 / math.sqrt(3.0) * (3.0 * tf.square(z) - 1.0),
        -k2 * x * z,
        k2 * 0.5 * (tf.square(x) - tf.square(y)),
    ]


def sh_basis(normals) -> tf.Tensor:
    """Deng's 9 SH basis values (Lambertian kernel folded in) of unit normals.

    Args:
      normals: [..., 3] unit vectors.
    Returns:
      [..., 9].
    """
    return tf.stack(_basis_values(_normals_tensor(normals)), axis=-1)


def gamma_per_channel(gamma, ambient_offset: float = DENG_AMBIENT_OFFSET) -> tf.Tensor:
    """[B, 27] channel-major gamma -> [B, 3, 9] with ambient_offset added to band 0."""
    gamma = tf.convert_to_tensor(gamma)
    if not gamma.dtype.is_floating:
        raise ValueError(f"gamma must be floating point, got {gamma.dtype.name}")
    if gamma.shape.rank is not None and (gamma.shape.rank != 2 or
                                         gamma.shape[-1] not in (None, 27)):
        raise ValueError(f"gamma must have shape [B, 27], got {gamma.shape}")
    per_channel = tf.reshape(gamma, [-1, NUM_CHANNELS, NUM_SH_BANDS])
    offset = tf.constant([ambient_offset] + [0.0] * (NUM_SH_BANDS - 1), gamma.dtype)
    return per_channel + offset


def sh_shading(normals, gamma, ambient_offset: float = DENG_AMBIENT_OFFSET) -> tf.Tensor:
    """Per-vertex RGB irradiance (shading) under SH lighting.

    Args:
      normals: [B, V, 3] unit normals in the lighting frame.
      gamma: [B, 27] channel-major SH coefficients (Deng's block of the 257 vector).
      ambient_offset: added to each channel's first coefficient (Deng: 0.8).
    Returns:
      [B, V, 3] shading, multiply by albedo for the colour.
    """
    normals = _normals_tensor(normals)
    if normals.shape.rank is not None and normals.shape.rank != 3:
        raise ValueError(f"normals must have shape [B, V, 3], got {normals.shape}")
    gamma = tf.convert_to_tensor(gamma)
    if gamma.dtype.is_floating and gamma.dtype != normals.dtype:
        gamma = tf.cast(gamma, normals.dtype)
    coefficients = gamma_per_channel(gamma, ambient_offset)        # [B, 3, 9]
    # the basis as 9 planes [B, 9, V]: stacking on a last axis of 9, and a batched matmul with inner
    # sizes of 9 and 3, took 1.4x the time at BFM size
    basis = tf.stack(_basis_values(normals), axis=1)
    return tf.einsum("bkv,bck->bvc", basis, coefficients)


def illuminate(albedo, normals, gamma, ambient_offset: float = DENG_AMBIENT_OFFSET) -> tf.Tensor:
    """Lit vertex colours, albedo * sh_shading (Deng's face_color).

    Args:
      albedo: [B, V, 3] linear RGB (ours in [0, 1]; Deng's was 0-255, the same gamma applies).
      normals: [B, V, 3] unit normals in the lighting frame.
      gamma: [B, 27].
    Returns:
      [B, V, 3] linear RGB (not clipped).
    """
    normals = _normals_tensor(normals)
    albedo = tf.convert_to_tensor(albedo)
    if albedo.dtype != normals.dtype:
        albedo = tf.cast(albedo, normals.dtype)
    if albedo.shape.rank is not None and (albedo.shape.rank != 3 or
                                          albedo.shape[-1] not in (None, 3)):
        raise ValueError(f"albedo must have shape [B, V, 3], got {albedo.shape}")
    return albedo * sh_shading(normals, gamma, ambient_offset)


def remove_shading(colors, normals, gamma, min_shading: float = 1e-3) -> tf.Tensor:
    """Albedo that ``illuminate`` would light to ``colors``: colors / sh_shading, clipped to [0, 1].

    Args:
      colors: [B, V, 3] lit colours in [0, 1] (e.g. photo colours sampled at the vertices).
      normals: [B, V, 3] unit normals; gamma: [B, 27] the light.
      min_shading: shading below it is raised to it before dividing (grazing or dark vertices).
    Returns:
      [B, V, 3] in [0, 1].
    """
    normals = _normals_tensor(normals)
    colors = tf.cast(tf.convert_to_tensor(colors), normals.dtype)
    shading = sh_shading(normals, gamma)
    return tf.clip_by_value(colors / tf.maximum(shading, min_shading), 0.0, 1.0)
