"""Deng et al.'s coarse-stage losses as pure functions (landmarks, coefficient prior, reflectance, gamma).

The skin-masked photometric term is ``face_gcn.losses.photometric.pixel_loss``.
"""

from __future__ import annotations

import tensorflow as tf

# iBUG-68 indices reduced to the 5 landmarks prepare-data stores: eye centres, nose tip, mouth corners.
LEFT_EYE_68 = tuple(range(36, 42))
RIGHT_EYE_68 = tuple(range(42, 48))
NOSE_TIP_68 = 30
MOUTH_LEFT_68 = 48
MOUTH_RIGHT_68 = 54

# Deng's landmark weights: 20 on the nose (27-35) and inner mouth (61-67), 1 elsewhere.
DENG_68_WEIGHTS = tuple(20.0 if (27 <= i <= 35 or 61 <= i <= 67) else 1.0 for i in range(68))
# Five-point weights in the same spirit: the nose tip carries weight 20.
DENG_5_WEIGHTS = (1.0, 1.0, 20.0, 1.0, 1.0)


def five_from_68(landmarks68) -> tf.Tensor:
    """[B, 68, 2] iBUG-68 points -> [B, 5, 2]: left eye centre, right eye centre, nose tip, mouth corners."""
    landmarks68 = tf.convert_to_tensor(landmarks68)
    if landmarks68.shape.rank != 3 or landmarks68.shape[1] != 68 or landmarks68.shape[2] != 2:
        raise ValueError(f"landmarks68 must be [B, 68, 2], got {landmarks68.shape}")
    left = tf.reduce_mean(tf.gather(landmarks68, LEFT_EYE_68, axis=1), axis=1)
    right = tf.reduce_mean(tf.gather(landmarks68, RIGHT_EYE_68, axis=1), axis=1)
    rest = tf.gather(landmarks68, [NOSE_TIP_68, MOUTH_LEFT_68, MOUTH_RIGHT_68], axis=1)
    return tf.concat([left[:, None], right[:, None], rest], axis=1)


def landmark_loss(predicted, target, weights=None) -> tf.Tensor:
    """sum_{b,k} w_k ||p_bk - q_bk||^2 / (B K), pixels squared.

    Args:
      predicted: [B, K, 2] projected model landmarks (crop pixels).
      target: [B, K, 2] detected landmarks (same units).
      weights: optional [K] per-landmark weights (default 1).
    Returns: scalar.
    """
    predicted = tf.convert_to_tensor(predicted)
    target = tf.cast(tf.convert_to_tensor(target), predicted.dtype)
    if predicted.shape.rank != 3 or predicted.shape[-1] != 2 or predicted.shape != target.shape:
        raise ValueError(f"predicted and target must be equal [B, K, 2], got {predicted.shape}, {target.shape}")
    squared = tf.reduce_sum(tf.square(predicted - target), axis=-1)  # [B, K]
    if weights is not None:
        weights = tf.cast(tf.convert_to_tensor(weights), predicted.dtype)
        if weights.shape.rank != 1 or weights.shape[0] != predicted.shape[1]:
            raise ValueError(f"weights must be [{predicted.shape[1]}], got {weights.shape}")
        squared = squared * weights[None, :]
    return tf.reduce_mean(squared)


def coefficient_regularisation(identity, expression, texture, expression_weight=0.8,
                               texture_weight=0.017) -> tf.Tensor:
    """mean_b (||id_b||^2 + 0.8 ||exp_b||^2 + 0.017 ||tex_b||^2).

    Args: identity [B, Ni], expression [B, Ne], texture [B, Nt] coefficients. Returns: scalar.
    """
    terms = []
    for name, value, weight in (("identity", identity, 1.0), ("expression", expression, expression_weight),
                                ("texture", texture, texture_weight)):
        value = tf.convert_to_tensor(value)
        if value.shape.rank != 2:
            raise ValueError(f"{name} coefficients must be [B, N], got {value.shape}")
        terms.append(weight * tf.reduce_sum(tf.square(value), axis=1))
    return tf.reduce_mean(tf.add_n(terms))


def reflectance_loss(albedo, skin_mask) -> tf.Tensor:
    """Albedo variance over skin vertices: sum_{b,v in S} ||a_bv - mean_S(a_b)||^2 / (B |S|).

    Args:
      albedo: [B, V, 3] per-vertex albedo (any consistent unit, e.g. [0, 255]).
      skin_mask: [V] 0/1 (or weights) marking skin vertices.
    Returns: scalar.
    """
    albedo = tf.convert_to_tensor(albedo)
    if albedo.shape.rank != 3 or albedo.shape[-1] != 3:
        raise ValueError(f"albedo must be [B, V, 3], got {albedo.shape}")
    skin = tf.cast(tf.reshape(tf.convert_to_tensor(skin_mask), [-1]), albedo.dtype)
    if skin.shape[0] != albedo.shape[1]:
        raise ValueError(f"skin_mask must be [{albedo.shape[1]}], got {skin.shape}")
    count = tf.maximum(tf.reduce_sum(skin), 1.0)
    mean = tf.reduce_sum(albedo * skin[None, :, None], axis=1, keepdims=True) / count  # [B, 1, 3]
    deviation = tf.reduce_sum(tf.square(albedo - mean), axis=-1) * skin[None, :]  # [B, V]
    return tf.reduce_mean(tf.reduce_sum(deviation, axis=1) / count)


def gamma_loss(gamma) -> tf.Tensor:
    """Monochrome-lighting prior: mean over b, channel, k of (g_bck - mean_c g_bck)^2.

    Args: gamma: [B, 27] SH coefficients, 9 per colour channel in R, G, B order ([B, 3, 9]). Returns: scalar.
    """
    gamma = tf.convert_to_tensor(gamma)
    if gamma.shape.rank != 2 or gamma.shape[-1] != 27:
        raise ValueError(f"gamma must be [B, 27], got {gamma.shape}")
    per_channel = tf.reshape(gamma, [-1, 3, 9])
    return tf.reduce_mean(tf.square(per_channel - tf.reduce_mean(per_channel, axis=1, keepdims=True)))
