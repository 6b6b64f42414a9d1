"""Vertex adjacency of a triangle mesh.

Two weightings are offered:
  * "coma": the sum over faces of each face's three edges, as CoMA builds it: weight 2 on an
    interior edge (two faces share it) and 1 on a boundary edge (one face). The default, used by
    the Laplacians of the mesh hierarchy.
  * "binary": weight 1 on every edge.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

ADJACENCY_WEIGHTINGS = ("coma", "binary")


def validate_mesh(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checks and converts a triangle mesh.

    Args:
      vertices: [V, 3] float positions (any unit).
      triangles: [T, 3] integer vertex indices in [0, V).
    Returns:
      (vertices as float64 [V, 3], triangles as int64 [T, 3]).
    """
    vertices = np.asarray(vertices)
    triangles = np.asarray(triangles)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
        raise ValueError(f"vertices must be [V, 3] with V > 0, got {vertices.shape}")
    if not np.issubdtype(vertices.dtype, np.floating) and not np.issubdtype(vertices.dtype, np.integer):
        raise ValueError(f"vertices must be numeric, got {vertices.dtype}")
    if not np.all(np.isfinite(vertices)):
        raise ValueError("vertices contain NaN or Inf")
    if triangles.ndim != 2 or triangles.shape[1] != 3 or triangles.shape[0] == 0:
        raise ValueError(f"triangles must be [T, 3] with T > 0, got {triangles.shape}")
    if not np.issubdtype(triangles.dtype, np.integer):
        raise ValueError(f"triangles must be integer indices, got {triangles.dtype}")
    triangles = triangles.astype(np.int64)
    if triangles.min() < 0 or triangles.max() >= vertices.shape[0]:
        raise ValueError(f"triangle indices must lie in [0, {vertices.shape[0]})")
    if np.any((triangles[:, 0] == triangles[:, 1]) | (triangles[:, 1] == triangles[:, 2])
              | (triangles[:, 0] == triangles[:, 2])):
        raise ValueError("triangles must have three distinct vertices")
    return vertices.astype(np.float64), triangles


def mesh_edges(triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges of a triangle list.

    Args:
      triangles: [T, 3] integer vertex indices.
    Returns:
      edges: [E, 2] int64 with edges[:, 0] < edges[:, 1], sorted lexicographically.
      face_count: [E] int64, how many triangles contain each edge (1 boundary, 2 interior).
    """
    triangles = np.asarray(triangles, dtype=np.int64)
    pairs = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    pairs = np.sort(pairs, axis=1)
    edges, counts = np.unique(pairs, axis=0, return_counts=True)
    return edges, counts.astype(np.int64)


def mesh_adjacency(triangles: np.ndarray, num_vertices: int, weighting: str = "coma") -> sp.csr_matrix:
    """Symmetric vertex adjacency matrix.

    Args:
      triangles: [T, 3] integer vertex indices in [0, num_vertices).
      num_vertices: V.
      weighting: "coma" (2 interior / 1 boundary edges) or "binary" (1 per edge).
    Returns:
      [V, V] float64 CSR matrix, zero diagonal, sorted indices.
    """
    if weighting not in ADJACENCY_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {ADJACENCY_WEIGHTINGS}, got {weighting!r}")
    triangles = np.asarray(triangles)
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must be [T, 3], got {triangles.shape}")
    if triangles.size and (triangles.min() < 0 or triangles.max() >= num_vertices):
        raise ValueError(f"triangle indices must lie in [0, {num_vertices})")
    edges, counts = mesh_edges(triangles)
    weights = counts.astype(np.float64) if weighting == "coma" else np.ones(len(edges))
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    values = np.concatenate([weights, weights])
    adjacency = sp.csr_matrix((values, (rows, cols)), shape=(num_vertices, num_vertices))
    adjacency.sort_indices()
    return adjacency
