"""Checks shared by both rasterizer backends (compiled op and pure-TF fallback).

Static checks (Python types, dtypes, ranks and sizes known at trace time) raise TypeError or
ValueError before any work; the value checks (index ranges, NaN/Inf) run inside each backend
and raise tf.errors.InvalidArgumentError.
"""

from __future__ import annotations

import operator

import tensorflow as tf

MAX_IMAGE_SIDE = 8192  # pixels, per side (the compiled op enforces the same bound)


def check_image_size(name: str, value) -> int:
    """``value`` as a Python int if it is an integer in [1, MAX_IMAGE_SIDE].

    Python ints and anything integral that implements ``__index__`` (NumPy integer scalars, 0-D
    integer arrays) are accepted; bools, floats and strings raise TypeError.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None
    if not 1 <= value <= MAX_IMAGE_SIDE:
        raise ValueError(f"{name} must be in [1, {MAX_IMAGE_SIDE}], got {value}")
    return value


def check_static_inputs(clip_vertices, triangles, image_width, image_height):
    """Converts and checks the rasterizer's inputs as far as their static shapes allow.

    Args:
      clip_vertices: [B, V, 4] float32.
      triangles: [T, 3] int32.
      image_width, image_height: ints (Python or NumPy) in [1, MAX_IMAGE_SIDE].
    Returns:
      (clip_vertices, triangles, image_width, image_height) as tensors and Python ints.
    """
    image_width = check_image_size("image_width", image_width)
    image_height = check_image_size("image_height", image_height)
    clip_vertices = tf.convert_to_tensor(clip_vertices)
    triangles = tf.convert_to_tensor(triangles)
    if clip_vertices.dtype != tf.float32:
        raise TypeError(f"clip_vertices must be float32, got {clip_vertices.dtype.name}")
    if triangles.dtype != tf.int32:
        raise TypeError(f"triangles must be int32, got {triangles.dtype.name}")
    if clip_vertices.shape.rank is not None and (
            clip_vertices.shape.rank != 3 or clip_vertices.shape[-1] not in (None, 4)):
        raise ValueError(f"clip_vertices must have shape [B, V, 4], got {clip_vertices.shape}")
    if triangles.shape.rank is not None and (
            triangles.shape.rank != 2 or triangles.shape[-1] not in (None, 3)):
        raise ValueError(f"triangles must have shape [T, 3], got {triangles.shape}")
    return clip_vertices, triangles, image_width, image_height
