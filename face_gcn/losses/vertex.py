"""L_vert (Eq. 7): per-vertex Euclidean colour distance, optionally weighted."""

from __future__ import annotations

import tensorflow as tf

from face_gcn.losses._norms import safe_divide, safe_norm


def vertex_loss(colors, target_colors, weights=None) -> tf.Tensor:
    """Mean over vertices of ||c_bi - t_bi||_2.

    Unweighted: mean over all B * V vertices. Weighted (e.g. visibility, for T_p):
    sum_{b,i} w_bi d_bi / sum_{b,i} w_bi over the whole batch, so the loss is a weighted mean of
    distances (unit-free in w) and a batch with no visible vertex gives 0.

    Args:
      colors: [B, V, C] predicted colours.
      target_colors: [B, V, C] target colours (T or T_p).
      weights: None or [B, V] >= 0.
    Returns:
      scalar float32.
    """
    colors = tf.convert_to_tensor(colors, tf.float32)
    target_colors = tf.convert_to_tensor(target_colors, tf.float32)
    if colors.shape.rank != 3 or colors.shape != target_colors.shape:
        raise ValueError(f"colors must be equal [B, V, C], got {colors.shape}, {target_colors.shape}")
    distance = safe_norm(colors - target_colors, axis=-1)
    if weights is None:
        return tf.reduce_mean(distance)
    weights = tf.convert_to_tensor(weights, tf.float32)
    if weights.shape != colors.shape[:2]:
        raise ValueError(f"weights must be [B, V] = {colors.shape[:2]}, got {weights.shape}")
    return safe_divide(tf.reduce_sum(weights * distance), tf.reduce_sum(weights))
