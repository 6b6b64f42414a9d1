"""Left-right mirror vertex pairs of a face mesh (for the authors' albedo symmetry loss).

The authors' code (FuxiCV/3D-Face-GCNs) reads BFM2009's list of symmetric vertex pairs, which
comes with the registration-only Basel data and is never bundled here; we compute the pairs from
a model's mean shape instead.

Geometry (face_gcn.morphable.model conventions: x across the face, image-left at -x, y up,
z towards the camera): the mirror plane is x = x0, its normal fixed along x. `fit_mirror_plane`
starts x0 at the mean x of the vertices and moves it to the mean midpoint (x_l + x_r) / 2 of the
pairs found, a few times over (an iterative-closest-point fit of x0 alone). A vertex l with
x_l < x0 is paired with r, the vertex nearest to its mirror image (2 x0 - x_l, y_l, z_l), when
  - r lies on the other side (x_r > x0),
  - the match is mutual (l is also the vertex nearest to r's mirror image), and
  - ||mirror(l) - r|| <= tolerance * D, D the diagonal of the vertices' bounding box.
A vertex on the plane is its own mirror image and is never paired.
"""

from __future__ import annotations

import numpy as np
from scipy import spatial

DEFAULT_TOLERANCE = 0.01   # of the bounding-box diagonal (0.026 units on the demo model, ~0.9 edge)
PLANE_ITERATIONS = 3


def _points(vertices) -> np.ndarray:
    points = np.asarray(vertices, np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"vertices must be [V, 3], got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("vertices must be finite")
    return points


def _limit(points: np.ndarray, tolerance) -> float:
    tolerance = float(tolerance)
    if not tolerance >= 0.0:  # also rejects NaN
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if points.shape[0] == 0:
        return 0.0
    return tolerance * float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


def _pairs_about(points: np.ndarray, tree: spatial.cKDTree, center: float, limit: float) -> np.ndarray:
    """[P, 2] int32 (left, right) mutual nearest mirror matches about x = center within limit."""
    if points.shape[0] == 0:
        return np.zeros((0, 2), np.int32)
    mirrored = points.copy()
    mirrored[:, 0] = 2.0 * center - mirrored[:, 0]
    distance, nearest = tree.query(mirrored)
    index = np.arange(points.shape[0])
    keep = ((points[:, 0] < center) & (points[nearest, 0] > center)
            & (nearest[nearest] == index) & (distance <= limit))
    return np.stack([index[keep], nearest[keep]], axis=1).astype(np.int32)


def fit_mirror_plane(vertices, tolerance: float = DEFAULT_TOLERANCE,
                     iterations: int = PLANE_ITERATIONS) -> float:
    """x0 of the mirror plane x = x0, fitted as described in the module docstring.

    Args:
      vertices: [V, 3] positions (V >= 1).
      tolerance: pair distance limit as a fraction of the bounding-box diagonal.
      iterations: refinement steps after the mean-x start (0: the mean x).
    Returns:
      x0, in the vertices' units.
    """
    points = _points(vertices)
    if points.shape[0] == 0:
        raise ValueError("vertices must not be empty")
    limit = _limit(points, tolerance)
    tree = spatial.cKDTree(points)
    center = float(np.mean(points[:, 0]))
    for _ in range(int(iterations)):
        pairs = _pairs_about(points, tree, center, limit)
        if pairs.shape[0] == 0:
            break
        center = float(0.5 * np.mean(points[pairs[:, 0], 0] + points[pairs[:, 1], 0]))
    return center


def mirror_pairs(vertices, tolerance: float = DEFAULT_TOLERANCE, center: float | None = None) -> np.ndarray:
    """Mutual nearest mirror-image vertex pairs across the plane x = x0.

    Args:
      vertices: [V, 3] positions.
      tolerance: a pair is kept when ||mirror(l) - r|| <= tolerance * the bounding-box diagonal
        of the vertices (default 1 %).
      center: x0; None fits it (fit_mirror_plane with the same tolerance).
    Returns:
      [P, 2] int32 rows (left, right): x_left < x0 < x_right, sorted by the left index; every
      vertex appears at most once. P may be 0.
    """
    points = _points(vertices)
    limit = _limit(points, tolerance)
    if points.shape[0] == 0:
        return np.zeros((0, 2), np.int32)
    if center is None:
        center = fit_mirror_plane(points, tolerance)
    center = float(center)
    if not np.isfinite(center):
        raise ValueError(f"center must be finite, got {center}")
    return _pairs_about(points, spatial.cKDTree(points), center, limit)


def model_mirror_pairs(model, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """mirror_pairs of a MorphableModel's mean shape ([P, 2] int32, see mirror_pairs)."""
    return mirror_pairs(model.mean_shape, tolerance)
