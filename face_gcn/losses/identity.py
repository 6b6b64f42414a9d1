"""L_id (Eq. 6): 1 - cosine similarity of face-recognition embeddings."""

from __future__ import annotations

import tensorflow as tf

from face_gcn.losses._norms import safe_divide, safe_norm


def identity_distances(embeddings, render_embeddings) -> tf.Tensor:
    """Per example: 1 - <f_b, f'_b> / (||f_b|| ||f'_b||).

    Args: as identity_loss. Returns: [B] float32 in [0, 2]; a zero embedding counts as cosine 0.
    """
    a = tf.convert_to_tensor(embeddings, tf.float32)
    b = tf.convert_to_tensor(render_embeddings, tf.float32)
    if a.shape.rank != 2 or a.shape != b.shape:
        raise ValueError(f"embeddings must be equal [B, D], got {a.shape}, {b.shape}")
    return 1.0 - safe_divide(tf.reduce_sum(a * b, axis=-1), safe_norm(a) * safe_norm(b))


def identity_loss(embeddings, render_embeddings) -> tf.Tensor:
    """mean_b (1 - <f_b, f'_b> / (||f_b|| ||f'_b||)): the mean of identity_distances.

    Args:
      embeddings: [B, D] F(x) of the input photos.
      render_embeddings: [B, D] F(x') of the renders.
    Returns:
      scalar float32 in [0, 2]; a zero embedding counts as cosine 0 (loss 1).
    """
    return tf.reduce_mean(identity_distances(embeddings, render_embeddings))
