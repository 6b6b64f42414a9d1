"""Random 257-coefficient vectors for synthetic faces: identity, expression, albedo, pose, light."""

from __future__ import annotations

import numpy as np

from face_gcn.morphable import coefficients as coeff_lib

# Plausible ranges for synthetic photos, in Deng's conventions.
MAX_YAW = np.deg2rad(30.0)        # radians, rotation about y
MAX_PITCH = np.deg2rad(15.0)      # radians, rotation about x
MAX_ROLL = np.deg2rad(10.0)       # radians, rotation about z
MAX_SHIFT = 0.15                  # model units (~1.5 cm), x and y translation


def sample_coefficients(rng: np.random.Generator, batch_size: int, shape_scale: float = 1.0,
                        expression_scale: float = 0.7, albedo_scale: float = 1.0,
                        light_scale: float = 1.0) -> np.ndarray:
    """Draws coefficient vectors with each block in a range a photo would show.

    Args:
      rng: the random generator (the only source of randomness).
      batch_size: B.
      *_scale: standard deviations of the identity / expression / albedo coefficients (which
        are in units of the model's standard deviations) and of the light's non-DC terms.
    Returns:
      [B, 257] float32, Deng's layout.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sizes = coeff_lib.BLOCK_SIZES
    identity = rng.normal(0.0, shape_scale, (batch_size, sizes["id"]))
    expression = rng.normal(0.0, expression_scale, (batch_size, sizes["exp"]))
    albedo = rng.normal(0.0, albedo_scale, (batch_size, sizes["tex"]))
    angles = rng.uniform(-1.0, 1.0, (batch_size, 3)) * [MAX_PITCH, MAX_YAW, MAX_ROLL]
    # Light: a DC term near Deng's 0.8 offset (added later) and mild directional terms,
    # the same hue on every channel plus a small per-channel tint.
    gray = rng.normal(0.0, 0.15 * light_scale, (batch_size, 1, 9))
    gray[:, :, 0] = rng.uniform(-0.1, 0.3, (batch_size, 1))
    tint = rng.normal(0.0, 0.03 * light_scale, (batch_size, 3, 9))
    gamma = (gray + tint).reshape(batch_size, 27)
    translation = np.concatenate(
        [rng.uniform(-MAX_SHIFT, MAX_SHIFT, (batch_size, 2)), np.zeros((batch_size, 1))], axis=1)
    return np.concatenate([identity, expression, albedo, angles, gamma, translation],
                          axis=1).astype(np.float32)
