"""Euclidean norm with a finite gradient at zero."""

from __future__ import annotations

import tensorflow as tf


def safe_norm(x, axis=-1) -> tf.Tensor:
    """||x||_2 along ``axis``; exact value, gradient 0 (not NaN) where x = 0."""
    squared = tf.reduce_sum(tf.square(x), axis=axis)
    positive = squared > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, tf.ones_like(squared))),
                    tf.zeros_like(squared))


def safe_divide(numerator, denominator) -> tf.Tensor:
    """numerator / denominator, 0 where denominator is 0 (finite gradients either way)."""
    nonzero = tf.not_equal(denominator, 0)
    return tf.where(nonzero, numerator / tf.where(nonzero, denominator, tf.ones_like(denominator)),
                    tf.zeros_like(numerator))
