"""Shape and albedo from morphable-model coefficients (paper Eq. 1), batched and differentiable.

  S = S_mean + I_base c_id + E_base c_exp,      T = T_mean + T_base c_tex

Bases are the container's: flattened vertex-major [3V, K] (rows x0, y0, z0, x1, ...), pre-scaled
so coefficients are in standard deviations.

Recentring: Deng's Shape_formation subtracts the centroid of the MEAN shape (a constant, the
same for every face; not the centroid of each formed face) from every formed shape, so that the
regressed rotation turns the face about the mean face's centre and the camera at z = 10 sees it
near the origin. ``form_shape`` does the same by default (``recenter=True``).
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import tensorflow as tf


def _as_float(value, name: str, dtype=None) -> tf.Tensor:
    tensor = tf.convert_to_tensor(value)
    if not tensor.dtype.is_floating:
        raise ValueError(f"{name} must be floating point, got {tensor.dtype.name}")
    if dtype is not None and tensor.dtype != dtype:
        tensor = tf.cast(tensor, dtype)
    return tensor


def _check_rank(tensor: tf.Tensor, rank: int, name: str, pretty: str):
    if tensor.shape.rank is not None and tensor.shape.rank != rank:
        raise ValueError(f"{name} must have shape {pretty}, got {tensor.shape}")


def _check_mean(mean: tf.Tensor, name: str):
    _check_rank(mean, 2, name, "[V, 3]")
    if mean.shape[1] is not None and mean.shape[1] != 3:
        raise ValueError(f"{name} must have shape [V, 3], got {mean.shape}")


def _offsets(basis, coeffs, num_vertices, basis_name, coeffs_name):
    """basis [3V, K] @ coeffs [B, K], reshaped to [B, V, 3] (dtype of coeffs)."""
    basis = _as_float(basis, basis_name, coeffs.dtype)
    _check_rank(basis, 2, basis_name, "[3V, K]")
    _check_rank(coeffs, 2, coeffs_name, "[B, K]")
    if num_vertices is not None and basis.shape[0] is not None \
            and basis.shape[0] != 3 * num_vertices:
        raise ValueError(f"{basis_name} must have 3V = {3 * num_vertices} rows for "
                         f"{num_vertices} vertices, got {basis.shape}")
    if (basis.shape[1] is not None and coeffs.shape[1] is not None
            and basis.shape[1] != coeffs.shape[1]):
        raise ValueError(f"{coeffs_name} has {coeffs.shape[1]} coefficients but {basis_name} "
                         f"has {basis.shape[1]} components")
    flat = tf.matmul(coeffs, basis, transpose_b=True)          # [B, 3V]
    return tf.reshape(flat, [tf.shape(coeffs)[0], -1, 3])      # [B, V, 3]


def form_shape(mean_shape, id_basis, exp_basis, id_coeffs, exp_coeffs,
               recenter: bool = True) -> tf.Tensor:
    """Face shapes from identity and expression coefficients.

    Args:
      mean_shape: [V, 3] model units (BFM / 1e5).
      id_basis: [3V, K_id] vertex-major, scaled by the standard deviations.
      exp_basis: [3V, K_exp] vertex-major, scaled likewise.
      id_coeffs: [B, K_id] in standard deviations; its dtype sets the computation's.
      exp_coeffs: [B, K_exp].
      recenter: subtract the centroid of ``mean_shape`` (Deng's convention, see module doc).
    Returns:
      [B, V, 3] vertex positions in model units.
    """
    id_coeffs = _as_float(id_coeffs, "id_coeffs")
    exp_coeffs = _as_float(exp_coeffs, "exp_coeffs", id_coeffs.dtype)
    mean = _as_float(mean_shape, "mean_shape", id_coeffs.dtype)
    _check_mean(mean, "mean_shape")
    num_vertices = mean.shape[0]
    shape = (mean[tf.newaxis]
             + _offsets(id_basis, id_coeffs, num_vertices, "id_basis", "id_coeffs")
             + _offsets(exp_basis, exp_coeffs, num_vertices, "exp_basis", "exp_coeffs"))
    if recenter:
        shape = shape - tf.reduce_mean(mean, axis=0)
    return shape


def form_albedo(mean_albedo, albedo_basis, tex_coeffs) -> tf.Tensor:
    """Per-vertex albedo from texture coefficients (not clipped).

    Args:
      mean_albedo: [V, 3] linear RGB in [0, 1].
      albedo_basis: [3V, K_tex] vertex-major, scaled by the standard deviations.
      tex_coeffs: [B, K_tex] in standard deviations.
    Returns:
      [B, V, 3] linear RGB; large coefficients can leave [0, 1].
    """
    tex_coeffs = _as_float(tex_coeffs, "tex_coeffs")
    mean = _as_float(mean_albedo, "mean_albedo", tex_coeffs.dtype)
    _check_mean(mean, "mean_albedo")
    return mean[tf.newaxis] + _offsets(albedo_basis, tex_coeffs, mean.shape[0],
                                       "albedo_basis", "tex_coeffs")


class ModelTensors(NamedTuple):
    """A MorphableModel's arrays as float32/int32 constants (see model.py for shapes)."""

    mean_shape: tf.Tensor        # [V, 3]
    id_basis: tf.Tensor          # [3V, K_id]
    exp_basis: tf.Tensor         # [3V, K_exp]
    mean_albedo: tf.Tensor       # [V, 3]
    albedo_basis: tf.Tensor      # [3V, K_tex]
    triangles: tf.Tensor         # [T, 3] int32
    vertex_triangles: tf.Tensor  # [V, P] int32, padded with T
    landmark_indices: tf.Tensor  # [68] int32


_TENSOR_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def model_tensors(model) -> ModelTensors:
    """The model's arrays as TF constants, created once per model object (eagerly, so a
    tf.function tracing this call reuses them instead of embedding fresh copies)."""
    cached = _TENSOR_CACHE.get(model)
    if cached is None:
        with tf.init_scope():
            cached = ModelTensors(
                mean_shape=tf.constant(model.mean_shape, tf.float32),
                id_basis=tf.constant(model.id_basis, tf.float32),
                exp_basis=tf.constant(model.exp_basis, tf.float32),
                mean_albedo=tf.constant(model.mean_albedo, tf.float32),
                albedo_basis=tf.constant(model.albedo_basis, tf.float32),
                triangles=tf.constant(model.triangles, tf.int32),
                vertex_triangles=tf.constant(model.vertex_triangles, tf.int32),
                landmark_indices=tf.constant(model.landmark_indices, tf.int32),
            )
        _TENSOR_CACHE[model] = cached
    return cached


def shape_from_model(model, id_coeffs, exp_coeffs, recenter: bool = True) -> tf.Tensor:
    """form_shape with a MorphableModel's mean and bases. Returns [B, V, 3] float32."""
    tensors = model_tensors(model)
    return form_shape(tensors.mean_shape, tensors.id_basis, tensors.exp_basis,
                      tf.convert_to_tensor(id_coeffs, tf.float32),
                      tf.convert_to_tensor(exp_coeffs, tf.float32), recenter=recenter)


def landmark_shape_from_model(model, id_coeffs, exp_coeffs) -> tf.Tensor:
    """shape_from_model (recentred) at the 68 landmark vertices only: [B, 68, 3] float32, the
    same values for V / 68 times less work (landmark-only fitting)."""
    tensors = model_tensors(model)
    rows = tf.reshape(3 * tensors.landmark_indices[:, None] + tf.range(3)[None], [-1])  # [204]
    shape = form_shape(tf.gather(tensors.mean_shape, tensors.landmark_indices),
                       tf.gather(tensors.id_basis, rows), tf.gather(tensors.exp_basis, rows),
                       tf.convert_to_tensor(id_coeffs, tf.float32),
                       tf.convert_to_tensor(exp_coeffs, tf.float32), recenter=False)
    return shape - tf.reduce_mean(tensors.mean_shape, axis=0)


def albedo_from_model(model, tex_coeffs) -> tf.Tensor:
    """form_albedo with a MorphableModel's mean and basis. Returns [B, V, 3] float32."""
    tensors = model_tensors(model)
    return form_albedo(tensors.mean_albedo, tensors.albedo_basis,
                       tf.convert_to_tensor(tex_coeffs, tf.float32))
