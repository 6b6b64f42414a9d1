"""Deng et al.'s coarse-stage losses as pure functions (landmarks, coefficient prior, reflectance, gamma),
plus a supervised coefficient loss for synthetic faces whose coefficients are known.

The skin-masked photometric term is ``face_gcn.losses.photometric.pixel_loss``.
"""

from __future__ import annotations

import tensorflow as tf

from face_gcn.data import landmarks68 as ibug
from face_gcn.morphable import coefficients as coeff_lib

# Deng's landmark weights as in his losses.py: ones(28), 20*ones(3), ones(29), 20*ones(8), i.e. 20 on the
# nose-bridge end and tip points 28-30 and on the inner mouth 60-67 (0-based), 1 elsewhere.
DENG_68_WEIGHTS = tuple(20.0 if (28 <= i <= 30 or 60 <= i <= 67) else 1.0 for i in range(68))

# Per-block weights of coefficient_loss: about the reciprocal of each block's variance under
# face_gcn.morphable.sampling's prior (identity std 1, expression 0.7, albedo 1, angles up to
# 15/30/10 degrees, light about 0.15, translation up to 0.15 units), so that predicting all zeros
# costs about 1 per block and pose, light and position are not drowned by the 224 shape and albedo
# numbers.
COEFFICIENT_BLOCK_WEIGHTS = {"id": 1.0, "exp": 2.0, "tex": 1.0, "angles": 25.0, "gamma": 40.0,
                             "translation": 200.0}
# Five-point weights in the same spirit: the nose tip carries weight 20.
DENG_5_WEIGHTS = (1.0, 1.0, 20.0, 1.0, 1.0)


def five_from_68(landmarks68) -> tf.Tensor:
    """[B, 68, 2] iBUG-68 points -> [B, 5, 2]: left eye centre, right eye centre, nose tip, mouth corners."""
    landmarks68 = tf.convert_to_tensor(landmarks68)
    if landmarks68.shape.rank != 3 or landmarks68.shape[1] != 68 or landmarks68.shape[2] != 2:
        raise ValueError(f"landmarks68 must be [B, 68, 2], got {landmarks68.shape}")
    left = tf.reduce_mean(tf.gather(landmarks68, ibug.IMAGE_LEFT_EYE, axis=1), axis=1)
    right = tf.reduce_mean(tf.gather(landmarks68, ibug.IMAGE_RIGHT_EYE, axis=1), axis=1)
    rest = tf.gather(landmarks68, [ibug.NOSE_TIP, ibug.MOUTH_LEFT, ibug.MOUTH_RIGHT], axis=1)
    return tf.concat([left[:, None], right[:, None], rest], axis=1)


def landmark_errors(predicted, target, weights=None) -> tf.Tensor:
    """Per example: sum_k w_k ||p_bk - q_bk||^2 / K, pixels squared.

    Args:
      predicted: [B, K, 2] projected model landmarks (crop pixels).
      target: [B, K, 2] detected landmarks (same units).
      weights: optional [K] per-landmark weights (default 1).
    Returns: [B].
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
    return tf.reduce_mean(squared, axis=1)


def landmark_loss(predicted, target, weights=None, example_weights=None) -> tf.Tensor:
    """sum_{b,k} w_k ||p_bk - q_bk||^2 / (B K), pixels squared (the mean of landmark_errors).

    With ``example_weights`` g: sum_{b,k} g_b w_k ||p_bk - q_bk||^2 / (K sum_b g_b), and 0 when
    sum_b g_b = 0 (e.g. no example of the batch has ground-truth landmarks).

    Args: as landmark_errors, plus example_weights: optional [B] per-example weights >= 0
      (e.g. has_ground_truth).
    Returns: scalar.
    """
    errors = landmark_errors(predicted, target, weights)
    if example_weights is None:
        return tf.reduce_mean(errors)
    return _example_mean(errors, example_weights)


def _example_mean(per_example, example_weights) -> tf.Tensor:
    """sum_b g_b x_b / sum_b g_b for x [B], g [B]; 0 when sum g = 0 (gradient finite)."""
    weights = tf.cast(tf.convert_to_tensor(example_weights), per_example.dtype)
    if weights.shape.rank != 1 or weights.shape[0] != per_example.shape[0]:
        raise ValueError(f"example_weights must be [{per_example.shape[0]}], got {weights.shape}")
    total = tf.reduce_sum(weights)
    return tf.reduce_sum(weights * per_example) / tf.maximum(total, 1e-12)


def coefficient_loss(predicted, target, example_weights=None, block_weights=None) -> tf.Tensor:
    """Supervised coefficient error: sum_blocks beta_k * mean_{b, i in block k} (p_bi - t_bi)^2.

    The mean runs over the examples (weighted by ``example_weights`` g when given, e.g.
    has_ground_truth: sum_b g_b mean_i(...) / sum_b g_b, and 0 when sum g = 0) and over the block's
    entries, so every block counts by its weight beta_k, not by its length.

    Args:
      predicted: [B, 257] Deng-layout coefficients.
      target: [B, 257] ground truth.
      example_weights: optional [B] weights >= 0.
      block_weights: {block name: beta} for id, exp, tex, angles, gamma, translation (default
        COEFFICIENT_BLOCK_WEIGHTS; missing names weigh 0).
    Returns: scalar.
    """
    predicted = tf.convert_to_tensor(predicted, tf.float32)
    target = tf.cast(tf.convert_to_tensor(target), tf.float32)
    if predicted.shape.rank != 2 or predicted.shape[-1] != coeff_lib.NUM_COEFFICIENTS \
            or predicted.shape != target.shape:
        raise ValueError(f"predicted and target must be equal [B, {coeff_lib.NUM_COEFFICIENTS}], got "
                         f"{predicted.shape}, {target.shape}")
    block_weights = COEFFICIENT_BLOCK_WEIGHTS if block_weights is None else block_weights
    unknown = set(block_weights) - set(coeff_lib.BLOCK_SIZES)
    if unknown:
        raise ValueError(f"unknown coefficient blocks {sorted(unknown)}; known: {list(coeff_lib.BLOCK_SIZES)}")
    squared = tf.square(predicted - target)
    per_example = tf.add_n([float(block_weights.get(name, 0.0))
                            * tf.reduce_mean(squared[:, block], axis=1)
                            for name, block in coeff_lib.BLOCK_SLICES.items()])  # [B]
    if example_weights is None:
        return tf.reduce_mean(per_example)
    return _example_mean(per_example, example_weights)


def coefficient_priors(identity, expression, texture, expression_weight=0.8,
                       texture_weight=0.017) -> tf.Tensor:
    """Per example: ||id_b||^2 + 0.8 ||exp_b||^2 + 0.017 ||tex_b||^2.

    Args: identity [B, Ni], expression [B, Ne], texture [B, Nt] coefficients. Returns: [B].
    """
    terms = []
    for name, value, weight in (("identity", identity, 1.0), ("expression", expression, expression_weight),
                                ("texture", texture, texture_weight)):
        value = tf.convert_to_tensor(value)
        if value.shape.rank != 2:
            raise ValueError(f"{name} coefficients must be [B, N], got {value.shape}")
        terms.append(weight * tf.reduce_sum(tf.square(value), axis=1))
    return tf.add_n(terms)


def coefficient_regularisation(identity, expression, texture, expression_weight=0.8,
                               texture_weight=0.017) -> tf.Tensor:
    """mean_b of coefficient_priors: mean_b (||id_b||^2 + 0.8 ||exp_b||^2 + 0.017 ||tex_b||^2). Scalar."""
    return tf.reduce_mean(coefficient_priors(identity, expression, texture, expression_weight, texture_weight))


def reflectance_variances(albedo, skin_mask) -> tf.Tensor:
    """Per example: albedo variance over skin vertices, sum_{v in S} ||a_bv - mean_S(a_b)||^2 / |S|.

    Args:
      albedo: [B, V, 3] per-vertex albedo (any consistent unit, e.g. [0, 255]).
      skin_mask: [V] 0/1 (or weights) marking skin vertices.
    Returns: [B].
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
    return tf.reduce_sum(deviation, axis=1) / count


def reflectance_loss(albedo, skin_mask) -> tf.Tensor:
    """mean_b of reflectance_variances: sum_{b,v in S} ||a_bv - mean_S(a_b)||^2 / (B |S|). Scalar."""
    return tf.reduce_mean(reflectance_variances(albedo, skin_mask))


def gamma_deviations(gamma) -> tf.Tensor:
    """Per example monochrome-lighting prior: mean over channel c, k of (g_bck - mean_c g_bck)^2.

    Args: gamma: [B, 27] SH coefficients, 9 per colour channel in R, G, B order ([B, 3, 9]). Returns: [B].
    """
    gamma = tf.convert_to_tensor(gamma)
    if gamma.shape.rank != 2 or gamma.shape[-1] != 27:
        raise ValueError(f"gamma must be [B, 27], got {gamma.shape}")
    per_channel = tf.reshape(gamma, [-1, 3, 9])
    deviation = tf.square(per_channel - tf.reduce_mean(per_channel, axis=1, keepdims=True))
    return tf.reduce_mean(deviation, axis=[1, 2])


def gamma_loss(gamma) -> tf.Tensor:
    """mean_b of gamma_deviations: mean over b, channel, k of (g_bck - mean_c g_bck)^2. Scalar."""
    return tf.reduce_mean(gamma_deviations(gamma))
