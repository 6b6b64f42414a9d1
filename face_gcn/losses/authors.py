"""The texture loss terms of the authors' released code (FuxiCV/3D-Face-GCNs), not the paper's Eq. 4.

Their base_model.py compute_loss (lines 391-463 at their HEAD) combines, with FaceNet
`perception` = 1 - mean cosine (face_gcn.losses.identity_loss; theirs adds 1e-8 to the norms'
product):

  data_loss = ref_lambda * refine
              + ren_lambda * (project + 0.3 * fill + 0.2 * perception + 0.5 * symmetry
                              + 0.01 * skin_variance)

Units: every colour there is in [-1, 1] (c_theirs = 2 c - 1 for our c in [0, 1]); these functions
take our [0, 1] colours and return the authors' values, the mapping done inside, so the constants
above apply unchanged. Shapes: B faces, V vertices, 3 colour channels.

- refined albedo T' (their `gcn_texture`, the GCN's tanh output; ours (tanh + 1) / 2), used as is;
- coarse albedo T (their `pca_texture`), clipped to [0, 1] first;
- lit colours (their `gcn_color` / `pca_color`), clipped to [0, 1] first (their illumination
  clips; ours does not);
- photo colours T_p and visibility vis [B, V] (their `proj_color`, vis = front-facing x eroded
  face mask at the vertex's pixel), vis in {0, 1} for ours, anything in [0, 1] accepted.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

PROJECT_WEIGHT = 1.0
FILL_WEIGHT = 0.3
PERCEPTION_WEIGHT = 0.2
SYMMETRY_WEIGHT = 0.5
SKIN_VARIANCE_WEIGHT = 0.01
SYMMETRY_EPSILON = 1e-16  # the authors' term, added to each squared channel difference


def data_loss(refine_lambda, render_lambda, refine, project, fill, perception, symmetry, variance):
    """The authors' data_loss from its scalar terms (weights as in the module docstring).

    refine_lambda, render_lambda: their ref_lambda / ren_lambda (face_gcn.losses.schedule
    "authors": s4 and s1). Their total adds 5e-4 * the FC layers' L2 (and the GAN term if used).
    """
    rendering = (PROJECT_WEIGHT * project + FILL_WEIGHT * fill + PERCEPTION_WEIGHT * perception
                 + SYMMETRY_WEIGHT * symmetry + SKIN_VARIANCE_WEIGHT * variance)
    return refine_lambda * refine + render_lambda * rendering


def _signed(colors) -> tf.Tensor:
    """[0, 1] -> the authors' [-1, 1]."""
    return 2.0 * colors - 1.0


def _colors(name: str, value) -> tf.Tensor:
    value = tf.convert_to_tensor(value, tf.float32)
    if value.shape.rank != 3 or value.shape[-1] != 3:
        raise ValueError(f"{name} must be [B, V, 3], got {value.shape}")
    return value


def _same_shape(name: str, value, reference: tf.Tensor) -> tf.Tensor:
    value = _colors(name, value)
    if value.shape != reference.shape:
        raise ValueError(f"{name} must have shape {reference.shape}, got {value.shape}")
    return value


def _visibility(visibility, colors: tf.Tensor) -> tf.Tensor:
    """[B, V] -> [B, V, 1] float32, checked against colors [B, V, 3]."""
    visibility = tf.convert_to_tensor(visibility, tf.float32)
    if visibility.shape != colors.shape[:2]:
        raise ValueError(f"visibility must be [B, V] = {colors.shape[:2]}, got {visibility.shape}")
    return visibility[..., tf.newaxis]


def refine_l1(refined_albedo, coarse_albedo) -> tf.Tensor:
    """mean over B*V*3 of |(2 T' - 1) - (2 clip(T, 0, 1) - 1)|: their `refine_loss`.

    Args:
      refined_albedo: [B, V, 3] T' in [0, 1] (not clipped).
      coarse_albedo: [B, V, 3] 3DMM albedo T, any values (clipped to [0, 1] here).
    Returns:
      scalar float32 in [-1, 1] units (twice the [0, 1] mean absolute difference).
    """
    refined = _colors("refined_albedo", refined_albedo)
    coarse = _same_shape("coarse_albedo", coarse_albedo, refined)
    return tf.reduce_mean(tf.abs(_signed(refined) - _signed(tf.clip_by_value(coarse, 0.0, 1.0))))


def projected_l1(refined_lit, photo_colors, visibility) -> tf.Tensor:
    """mean over B*V*3 of |(2 clip(L') - 1) vis - (2 T_p - 1) vis^2|: their `project_loss_image`.

    The photo side carries vis twice, as theirs (`proj_color` is stored multiplied by vis and
    multiplied again in the loss); for a {0, 1} visibility this is vis |2 clip(L') - 2 T_p|.
    Invisible elements count in the mean's denominator with 0.

    Args:
      refined_lit: [B, V, 3] lit refined colours L' (clipped to [0, 1] here).
      photo_colors: [B, V, 3] T_p, colours sampled from the photo in [0, 1] (not clipped).
      visibility: [B, V] in [0, 1].
    Returns:
      scalar float32, [-1, 1] units.
    """
    lit = _colors("refined_lit", refined_lit)
    photo = _same_shape("photo_colors", photo_colors, lit)
    vis = _visibility(visibility, lit)
    predicted = _signed(tf.clip_by_value(lit, 0.0, 1.0)) * vis
    target = _signed(photo) * vis * vis
    return tf.reduce_mean(tf.abs(predicted - target))


def fill_l1(refined_lit, coarse_lit, visibility) -> tf.Tensor:
    """mean over B*V*3 of |(2 clip(L') - 1)(1 - vis) - (2 clip(L) - 1)(1 - vis)|: their `project_loss_pca`.

    Where the photo does not show the face, the lit refined colours follow the lit 3DMM colours.

    Args:
      refined_lit: [B, V, 3] lit refined colours L' (clipped to [0, 1] here).
      coarse_lit: [B, V, 3] lit 3DMM colours L (theirs light the clipped 3DMM albedo; clipped to
        [0, 1] here).
      visibility: [B, V] in [0, 1].
    Returns:
      scalar float32, [-1, 1] units.
    """
    lit = _colors("refined_lit", refined_lit)
    coarse = _same_shape("coarse_lit", coarse_lit, lit)
    hidden = 1.0 - _visibility(visibility, lit)
    predicted = _signed(tf.clip_by_value(lit, 0.0, 1.0)) * hidden
    target = _signed(tf.clip_by_value(coarse, 0.0, 1.0)) * hidden
    return tf.reduce_mean(tf.abs(predicted - target))


def symmetry_loss(refined_albedo, pairs) -> tf.Tensor:
    """mean over B*P of sqrt(sum_c ((2 T'_lc - 1) - (2 T'_rc - 1))^2 + 1e-16)): their `sym_loss`.

    The 1e-16 is added to each channel's square (3e-16 in all), as theirs; it keeps the value
    and gradient finite (gradient 0) for a perfectly symmetric albedo.

    Args:
      refined_albedo: [B, V, 3] T' in [0, 1] (not clipped, not lit).
      pairs: [P, 2] integer (left, right) vertex indices, P >= 1 (face_gcn.morphable.symmetry).
    Returns:
      scalar float32, [-1, 1] units.
    """
    albedo = _colors("refined_albedo", refined_albedo)
    if tf.is_tensor(pairs):
        if pairs.shape.rank != 2 or pairs.shape[1] != 2 or not pairs.dtype.is_integer:
            raise ValueError(f"pairs must be integer [P, 2], got {pairs.dtype.name} {pairs.shape}")
        if pairs.shape[0] == 0:
            raise ValueError("pairs must not be empty")
        index = pairs
    else:
        index = np.asarray(pairs)
        if index.ndim != 2 or index.shape[1] != 2 or index.dtype.kind not in "iu":
            raise ValueError(f"pairs must be integer [P, 2], got {index.dtype} {index.shape}")
        if index.shape[0] == 0:
            raise ValueError("pairs must not be empty")
        num_vertices = albedo.shape[1]
        if index.min() < 0 or (num_vertices is not None and index.max() >= num_vertices):
            raise ValueError(f"pairs must index [0, {num_vertices}), got [{index.min()}, {index.max()}]")
    signed = _signed(albedo)
    difference = tf.gather(signed, index[:, 0], axis=1) - tf.gather(signed, index[:, 1], axis=1)
    return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(difference) + SYMMETRY_EPSILON, axis=-1)))


def skin_variance(refined_albedo, skin_mask) -> tf.Tensor:
    """mean over B and channels of Var_skin(2 T' - 1): their `var_loss`.

    The variance is the biased one (mean squared deviation, tf.nn.moments) over the skin vertices,
    per face and channel; 4 times the variance of our [0, 1] values.

    Args:
      refined_albedo: [B, V, 3] T' in [0, 1] (not clipped, not lit).
      skin_mask: [V] bool, at least one True (MorphableModel.skin_mask).
    Returns:
      scalar float32, [-1, 1] units squared.
    """
    albedo = _colors("refined_albedo", refined_albedo)
    if tf.is_tensor(skin_mask):
        mask = skin_mask
        if mask.dtype != tf.bool:
            raise ValueError(f"skin_mask must be bool, got {mask.dtype.name}")
    else:
        mask = np.asarray(skin_mask)
        if mask.dtype != bool:
            raise ValueError(f"skin_mask must be bool, got {mask.dtype}")
        if not mask.any():
            raise ValueError("skin_mask must select at least one vertex")
    if len(mask.shape) != 1 or mask.shape[0] != albedo.shape[1]:
        raise ValueError(f"skin_mask must be [V] = [{albedo.shape[1]}], got {tuple(mask.shape)}")
    skin = tf.boolean_mask(_signed(albedo), mask, axis=1)
    _, variance = tf.nn.moments(skin, axes=[1])
    return tf.reduce_mean(variance)
