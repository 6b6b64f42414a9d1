"""L_pix (Eq. 5): masked per-pixel Euclidean colour distance."""

from __future__ import annotations

import tensorflow as tf

from face_gcn.losses._norms import safe_divide, safe_norm


def _checked(images, renders, mask):
    images = tf.convert_to_tensor(images, tf.float32)
    renders = tf.convert_to_tensor(renders, tf.float32)
    mask = tf.convert_to_tensor(mask, tf.float32)
    if images.shape.rank != 4 or renders.shape != images.shape:
        raise ValueError(f"images and renders must be equal [B, H, W, C], got {images.shape}, {renders.shape}")
    if mask.shape != images.shape[:3]:
        raise ValueError(f"mask must be [B, H, W] = {images.shape[:3]}, got {mask.shape}")
    return images, renders, mask


def pixel_loss(images, renders, mask) -> tf.Tensor:
    """sum_{b,i} M_bi ||x_bi - x'_bi||_2 / sum_{b,i} M_bi (not squared), over the whole batch.

    Args:
      images: [B, H, W, C] input photos x.
      renders: [B, H, W, C] renders x' (same units as images).
      mask: [B, H, W] weights M >= 0 (render coverage x face mask).
    Returns:
      scalar float32; 0 (not NaN) when the mask is all zero. Gradient finite where x = x'.
    """
    images, renders, mask = _checked(images, renders, mask)
    distance = safe_norm(images - renders, axis=-1)
    return safe_divide(tf.reduce_sum(mask * distance), tf.reduce_sum(mask))


def pixel_errors(images, renders, mask) -> tf.Tensor:
    """Per example: sum_i M_bi ||x_bi - x'_bi||_2 / sum_i M_bi, 0 where an example's mask is empty.

    Args: as pixel_loss. Returns: [B] float32 (each face normalised by its own mask, so a face's
    value and gradient do not depend on the rest of the batch).
    """
    images, renders, mask = _checked(images, renders, mask)
    distance = safe_norm(images - renders, axis=-1)
    return safe_divide(tf.reduce_sum(mask * distance, axis=[1, 2]), tf.reduce_sum(mask, axis=[1, 2]))
