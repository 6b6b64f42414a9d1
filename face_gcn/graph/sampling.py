"""Down- and up-sampling matrices between two levels of a mesh hierarchy (CoMA style).

D [Vc, Vf] selects the kept vertices (one 1 per row, kept vertices in sorted order).
U [Vf, Vc] writes every fine vertex as the barycentric combination of the nearest point of the
coarse surface: inside a face three weights, on an edge two, at a vertex one. Kept vertices map
to themselves with weight 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree


def down_sampling_matrix(kept: np.ndarray, num_fine: int) -> sp.csr_matrix:
    """D: [Vc, Vf] 0/1 selection of the sorted ``kept`` fine vertices."""
    kept = np.asarray(kept, dtype=np.int64)
    if kept.ndim != 1 or np.any(np.diff(kept) <= 0) or kept.min() < 0 or kept.max() >= num_fine:
        raise ValueError("kept must be strictly increasing indices in [0, num_fine)")
    rows = np.arange(len(kept))
    return sp.csr_matrix((np.ones(len(kept)), (rows, kept)), shape=(len(kept), num_fine))


def closest_points_on_triangles(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Closest point of each point on its triangle (vertex / edge / interior regions).

    Args:
      points, a, b, c: [N, 3] float64 query points and triangle corners.
    Returns:
      weights: [N, 3] barycentric weights (non-negative, summing to 1) of the closest point.
      squared_distance: [N] squared Euclidean distance from the point to it.
    """
    ab, ac, ap = b - a, c - a, points - a
    bp, cp = points - b, points - c
    dot = lambda u, v: np.einsum("ij,ij->i", u, v)  # noqa: E731
    d1, d2 = dot(ab, ap), dot(ac, ap)
    d3, d4 = dot(ab, bp), dot(ac, bp)
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den != 0)

    t_ab = ratio(d1, d1 - d3)
    t_ac = ratio(d2, d2 - d6)
    t_bc = ratio(d4 - d3, (d4 - d3) + (d5 - d6))
    total = va + vb + vc
    v_in, w_in = ratio(vb, total), ratio(vc, total)
    conditions = [
        (d1 <= 0) & (d2 <= 0),                               # vertex a
        (d3 >= 0) & (d4 <= d3),                              # vertex b
        (vc <= 0) & (d1 >= 0) & (d3 <= 0),                   # edge ab
        (d6 >= 0) & (d5 <= d6),                              # vertex c
        (vb <= 0) & (d2 >= 0) & (d6 <= 0),                   # edge ac
        (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0),     # edge bc
    ]
    zero, one = np.zeros_like(d1), np.ones_like(d1)
    w1 = np.select(conditions, [zero, one, t_ab, zero, zero, 1 - t_bc], v_in)
    w2 = np.select(conditions, [zero, zero, zero, one, t_ac, t_bc], w_in)
    w0 = 1.0 - w1 - w2
    weights = np.stack([w0, w1, w2], axis=1)
    nearest = weights[:, 0:1] * a + weights[:, 1:2] * b + weights[:, 2:3] * c
    return weights, np.sum((points - nearest) ** 2, axis=1)


def nearest_surface_points(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray,
                           candidates: int = 16):
    """Exact nearest point of each query point on a triangle mesh.

    A k-d tree over triangle centroids proposes ``candidates`` triangles per point; the answer is
    certified when the k-th centroid is farther than the best distance plus the largest
    centroid-to-corner radius, otherwise all triangles within that radius are examined.

    Args:
      points: [N, 3] float64; vertices: [V, 3]; triangles: [T, 3].
    Returns:
      face: [N] int64 triangle index, weights: [N, 3] barycentric, distance: [N] Euclidean.
    """
    corners = vertices[triangles]                               # [T, 3, 3]
    centroids = corners.mean(axis=1)
    radius = float(np.sqrt(((corners - centroids[:, None]) ** 2).sum(-1)).max())
    tree = cKDTree(centroids)
    k = min(candidates, len(triangles))
    centroid_distance, proposal = tree.query(points, k=k)
    centroid_distance = centroid_distance.reshape(len(points), k)
    proposal = proposal.reshape(len(points), k)
    flat_points = np.repeat(points, k, axis=0)
    flat_faces = proposal.ravel()
    weights, squared = closest_points_on_triangles(
        flat_points, *(corners[flat_faces, i] for i in range(3)))
    squared = squared.reshape(len(points), k)
    best = np.argmin(squared, axis=1)  # first minimum: deterministic
    rows = np.arange(len(points))
    face = proposal[rows, best]
    best_weights = weights.reshape(len(points), k, 3)[rows, best]
    distance = np.sqrt(squared[rows, best])
    if k < len(triangles):
        uncertain = np.flatnonzero(centroid_distance[:, -1] - radius < distance)
        for chunk in np.array_split(uncertain, max(1, len(uncertain) // 2048)):  # bounded memory
            if len(chunk) == 0:
                continue
            # Every triangle whose centroid lies within best + radius, all pairs of the chunk at once.
            nearby = tree.query_ball_point(points[chunk], distance[chunk] + radius)
            counts = np.array([len(n) for n in nearby])
            pair_point = np.repeat(chunk, counts)
            pair_face = np.concatenate([np.sort(np.asarray(n, dtype=np.int64)) for n in nearby])
            w, sq = closest_points_on_triangles(points[pair_point], *(corners[pair_face, i] for i in range(3)))
            # First minimum per point (pairs are grouped by point, faces sorted within a group).
            order = np.lexsort((np.arange(len(sq)), sq, pair_point))
            first = order[np.r_[0, np.flatnonzero(np.diff(pair_point[order])) + 1]]
            better = sq[first] < distance[pair_point[first]] ** 2
            chosen = first[better]
            target = pair_point[chosen]
            face[target], best_weights[target], distance[target] = pair_face[chosen], w[chosen], np.sqrt(sq[chosen])
    return face.astype(np.int64), best_weights, distance


def up_sampling_matrix(fine_vertices: np.ndarray, coarse_vertices: np.ndarray,
                       coarse_triangles: np.ndarray, kept: np.ndarray) -> sp.csr_matrix:
    """U: [Vf, Vc] barycentric weights of each fine vertex on the nearest coarse surface point.

    Args:
      fine_vertices: [Vf, 3]; coarse_vertices: [Vc, 3] (= fine_vertices[kept]);
      coarse_triangles: [Tc, 3] into the coarse vertices; kept: [Vc] sorted fine indices.
    Returns:
      [Vf, Vc] float64 CSR; every row sums to 1, kept rows are one-hot.
    """
    fine_vertices = np.asarray(fine_vertices, dtype=np.float64)
    kept = np.asarray(kept, dtype=np.int64)
    num_fine, num_coarse = len(fine_vertices), len(coarse_vertices)
    dropped = np.setdiff1d(np.arange(num_fine), kept)
    face, weights, _ = nearest_surface_points(fine_vertices[dropped], np.asarray(coarse_vertices, np.float64),
                                              np.asarray(coarse_triangles, np.int64))
    rows = np.concatenate([kept, np.repeat(dropped, 3)])
    cols = np.concatenate([np.arange(num_coarse), np.asarray(coarse_triangles)[face].ravel()])
    values = np.concatenate([np.ones(num_coarse), weights.ravel()])
    values[np.abs(values) < 1e-12] = 0.0
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(num_fine, num_coarse))
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix
