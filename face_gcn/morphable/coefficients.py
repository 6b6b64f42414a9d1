"""Deng et al.'s 257-number coefficient vector: layout, split and join.

Layout, in order (Deng 2019, R-Net output):
  identity 80 | expression 64 | texture 80 | angles 3 | SH gamma 27 | translation 3.
Angles are x, y, z Euler angles in radians; gamma holds 9 SH coefficients per colour
channel, channel-major (R's nine, then G's, then B's); translation is in model units.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

NUM_ID = 80
NUM_EXP = 64
NUM_TEX = 80
NUM_ANGLES = 3
NUM_GAMMA = 27
NUM_TRANSLATION = 3

# Block names and sizes in layout order (the NamedTuple fields below use the same names).
BLOCK_SIZES = {
    "id": NUM_ID,
    "exp": NUM_EXP,
    "tex": NUM_TEX,
    "angles": NUM_ANGLES,
    "gamma": NUM_GAMMA,
    "translation": NUM_TRANSLATION,
}
NUM_COEFFICIENTS = sum(BLOCK_SIZES.values())  # 257

# [start, stop) of each block in the 257-vector.
BLOCK_SLICES = {}
_start = 0
for _name, _size in BLOCK_SIZES.items():
    BLOCK_SLICES[_name] = slice(_start, _start + _size)
    _start += _size
del _start, _name, _size


class Coefficients(NamedTuple):
    """The six blocks of a coefficient vector, each with the same leading shape [...]."""

    id: tf.Tensor           # [..., 80] identity, in standard deviations
    exp: tf.Tensor          # [..., 64] expression, in standard deviations
    tex: tf.Tensor          # [..., 80] albedo (texture), in standard deviations
    angles: tf.Tensor       # [..., 3] x, y, z Euler angles, radians
    gamma: tf.Tensor        # [..., 27] SH lighting, channel-major (3 x 9)
    translation: tf.Tensor  # [..., 3] model units


def split_coefficients(coeffs) -> Coefficients:
    """Splits [..., 257] coefficient vectors into their six blocks.

    Args:
      coeffs: [..., 257] float tensor (or array), Deng's layout.
    Returns:
      Coefficients with fields shaped [..., 80], [..., 64], [..., 80], [..., 3], [..., 27],
      [..., 3] and the dtype of ``coeffs``.
    Raises:
      ValueError: when the last dimension is not 257 or the rank is 0.
    """
    coeffs = tf.convert_to_tensor(coeffs)
    if not coeffs.dtype.is_floating:
        raise ValueError(f"coefficients must be floating point, got {coeffs.dtype.name}")
    if coeffs.shape.rank == 0:
        raise ValueError("coefficients must have shape [..., 257], got a scalar")
    last = coeffs.shape[-1] if coeffs.shape.rank is not None else None
    if last is not None and last != NUM_COEFFICIENTS:
        raise ValueError(
            f"coefficients must have shape [..., {NUM_COEFFICIENTS}], got {coeffs.shape}")
    blocks = {name: coeffs[..., piece] for name, piece in BLOCK_SLICES.items()}
    return Coefficients(**blocks)


def join_coefficients(id, exp, tex, angles, gamma, translation) -> tf.Tensor:  # pylint: disable=redefined-builtin
    """Concatenates the six blocks into [..., 257] vectors (inverse of split_coefficients).

    Args:
      id: [..., 80]; exp: [..., 64]; tex: [..., 80]; angles: [..., 3]; gamma: [..., 27];
      translation: [..., 3]. All with the same leading shape and float dtype.
    Returns:
      [..., 257] tensor.
    Raises:
      ValueError: naming the block whose last dimension or leading shape is wrong.
    """
    values = dict(id=id, exp=exp, tex=tex, angles=angles, gamma=gamma,
                  translation=translation)
    tensors = []
    leading = None
    for name, size in BLOCK_SIZES.items():
        tensor = tf.convert_to_tensor(values[name])
        if tensor.shape.rank == 0 or (tensor.shape.rank is not None
                                      and tensor.shape[-1] not in (None, size)):
            raise ValueError(f"coefficient block '{name}' must have shape [..., {size}], "
                             f"got {tensor.shape}")
        if leading is None:
            leading = tensor.shape[:-1]
        elif not leading.is_compatible_with(tensor.shape[:-1]):
            raise ValueError(f"coefficient block '{name}' has leading shape {tensor.shape[:-1]}, "
                             f"expected {leading} like the 'id' block")
        tensors.append(tensor)
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1:
        raise ValueError(f"coefficient blocks must share one dtype, got "
                         f"{sorted(d.name for d in dtypes)}")
    return tf.concat(tensors, axis=-1)


def join(blocks: Coefficients) -> tf.Tensor:
    """join_coefficients for a Coefficients tuple."""
    return join_coefficients(*blocks)
