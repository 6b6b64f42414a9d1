"""CoMA-style mesh hierarchy: decimated levels, sampling matrices, Laplacians, and a .npz cache.

Level 0 is the input mesh; level k+1 keeps ceil(V_k / factor_k) vertices of level k (no
repositioning), e.g. 35709 -> 8928 -> 2232 -> 558 -> 140 for factors (4, 4, 4, 4).
down[k] = D_k [V_{k+1}, V_k] and up[k] = U_k [V_k, V_{k+1}].
The Laplacians use the "coma" adjacency weighting (2 on interior edges, 1 on boundary edges)
unless asked otherwise; lmax[k] caches the exact largest eigenvalue of level k's Laplacian.

Cache: one .npz (no pickle) per (mesh, factors, options, ALGORITHM_VERSION), named by a SHA-256
of all of them. On load the version, the key, the level-0 mesh and every shape and index range
are checked; a stale or damaged file is rebuilt and replaced atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import time

import numpy as np
import scipy.sparse as sp

from face_gcn import fileio
from face_gcn.graph.adjacency import mesh_adjacency, validate_mesh
from face_gcn.graph.decimation import decimate
from face_gcn.graph.laplacian import (chebyshev_operator, largest_eigenvalue, normalized_laplacian,
                                      rescaled_laplacian)
from face_gcn.graph.sampling import down_sampling_matrix, up_sampling_matrix

LOG = logging.getLogger(__name__)

ALGORITHM_VERSION = 1
# Named decimations -> boundary_weight of build_hierarchy: CoMA's quadrics, or ours with
# boundary-preserving planes (the open rim of a face mesh keeps its shape down the levels).
DECIMATIONS = {"coma": 0.0, "boundary_preserving": 1.0}


def decimation_boundary_weight(decimation: str) -> float:
    """boundary_weight of a named decimation (DECIMATIONS)."""
    if decimation not in DECIMATIONS:
        raise ValueError(f"decimation must be one of {tuple(DECIMATIONS)}, got {decimation!r}")
    return DECIMATIONS[decimation]


class StaleCacheError(ValueError):
    """A cached hierarchy does not match the request or is damaged."""


@dataclasses.dataclass(frozen=True)
class MeshHierarchy:
    """Meshes and operators of every level.

    vertices[k]: [V_k, 3] float64; triangles[k]: [T_k, 3] int64; kept[k]: [V_{k+1}] sorted
    indices into level k; down[k]: D_k [V_{k+1}, V_k]; up[k]: U_k [V_k, V_{k+1}] (CSR float64);
    lmax[k]: exact largest eigenvalue of level k's "coma" normalized Laplacian.
    """

    factors: tuple[int, ...]
    vertices: tuple[np.ndarray, ...]
    triangles: tuple[np.ndarray, ...]
    kept: tuple[np.ndarray, ...]
    down: tuple[sp.csr_matrix, ...]
    up: tuple[sp.csr_matrix, ...]
    lmax: tuple[float, ...]

    @property
    def num_levels(self) -> int:
        return len(self.vertices)

    @property
    def num_vertices(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.vertices)

    def adjacency(self, level: int, weighting: str = "coma") -> sp.csr_matrix:
        """[V_k, V_k] adjacency of level k."""
        return mesh_adjacency(self.triangles[level], len(self.vertices[level]), weighting)

    def laplacian(self, level: int, weighting: str = "coma") -> sp.csr_matrix:
        """[V_k, V_k] normalized Laplacian I - D^-1/2 A D^-1/2 of level k."""
        return normalized_laplacian(self.adjacency(level, weighting))

    def chebyshev(self, level: int, lmax: str | float = "exact", weighting: str = "coma") -> sp.csr_matrix:
        """[V_k, V_k] rescaled Laplacian 2 L / lmax - I of level k.

        lmax: "exact" (cached eigenvalue), "fixed" (2, the authors': L - I) or a number.
        """
        if lmax == "exact" and weighting == "coma":
            return rescaled_laplacian(self.laplacian(level), self.lmax[level])
        return chebyshev_operator(self.adjacency(level, weighting), lmax)


def level_sizes(num_vertices: int, factors) -> tuple[int, ...]:
    """Vertex count of every level: V_{k+1} = ceil(V_k / factor_k)."""
    sizes = [int(num_vertices)]
    for factor in factors:
        sizes.append(int(math.ceil(sizes[-1] / factor)))
    return tuple(sizes)


def _check_factors(factors) -> tuple[int, ...]:
    factors = tuple(int(f) for f in factors)
    if not factors or any(f < 1 for f in factors):
        raise ValueError(f"factors must be a non-empty sequence of integers >= 1, got {factors}")
    return factors


def build_hierarchy(vertices: np.ndarray, triangles: np.ndarray, factors=(4, 4, 4, 4), *,
                    boundary_weight: float = 1.0) -> MeshHierarchy:
    """Builds the hierarchy (no cache).

    Args:
      vertices: [V, 3] float positions; triangles: [T, 3] integer indices of a manifold mesh.
      factors: reduction factor per level.
      boundary_weight: boundary-preserving quadric weight (0: CoMA's quadrics).
    """
    vertices, triangles = validate_mesh(vertices, triangles)
    factors = _check_factors(factors)
    sizes = level_sizes(len(vertices), factors)
    if sizes[-1] < 3:
        raise ValueError(f"factors {factors} leave fewer than 3 vertices: {sizes}")
    level_vertices, level_triangles, kept_list, down, up = [vertices], [triangles], [], [], []
    for target in sizes[1:]:
        result = decimate(level_vertices[-1], level_triangles[-1], target, boundary_weight=boundary_weight)
        coarse = level_vertices[-1][result.kept]
        down.append(down_sampling_matrix(result.kept, len(level_vertices[-1])))
        up.append(up_sampling_matrix(level_vertices[-1], coarse, result.triangles, result.kept))
        kept_list.append(result.kept)
        level_vertices.append(coarse)
        level_triangles.append(result.triangles)
    lmax = tuple(largest_eigenvalue(normalized_laplacian(mesh_adjacency(t, len(v))))
                 for v, t in zip(level_vertices, level_triangles))
    return MeshHierarchy(factors, tuple(level_vertices), tuple(level_triangles), tuple(kept_list),
                         tuple(down), tuple(up), lmax)


def hierarchy_key(vertices: np.ndarray, triangles: np.ndarray, factors, boundary_weight: float = 1.0) -> str:
    """SHA-256 hex digest of the mesh, the factors, the options and ALGORITHM_VERSION."""
    vertices, triangles = validate_mesh(vertices, triangles)
    digest = hashlib.sha256()
    digest.update(f"face_gcn.graph.hierarchy v{ALGORITHM_VERSION}\n".encode())
    digest.update(f"factors={_check_factors(factors)} boundary_weight={float(boundary_weight)!r}\n".encode())
    digest.update(np.ascontiguousarray(vertices, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(triangles, dtype="<i8").tobytes())
    digest.update(repr((vertices.shape, triangles.shape)).encode())
    return digest.hexdigest()


def default_cache_path(key: str) -> str:
    """fileio.cache_directory() ($FACE_GCN_CACHE, default ~/.cache/face_gcn)/mesh_hierarchy_<key[:20]>.npz."""
    return os.path.join(fileio.cache_directory(), f"mesh_hierarchy_{key[:20]}.npz")


def save_hierarchy(path: str | os.PathLike, hierarchy: MeshHierarchy, key: str) -> None:
    """Writes the hierarchy atomically as .npz (plain arrays only)."""
    from face_gcn.fileio import atomic_write  # pylint: disable=import-outside-toplevel

    arrays = {
        "version": np.array(ALGORITHM_VERSION, dtype=np.int64),
        "key": np.array(key),
        "factors": np.array(hierarchy.factors, dtype=np.int64),
        "lmax": np.array(hierarchy.lmax, dtype=np.float64),
    }
    for level, (v, t) in enumerate(zip(hierarchy.vertices, hierarchy.triangles)):
        arrays[f"vertices_{level}"] = v
        arrays[f"triangles_{level}"] = t
    for level, (kept, up) in enumerate(zip(hierarchy.kept, hierarchy.up)):
        arrays[f"kept_{level}"] = kept
        coo = up.tocoo()
        arrays[f"up_rows_{level}"] = coo.row.astype(np.int64)
        arrays[f"up_cols_{level}"] = coo.col.astype(np.int64)
        arrays[f"up_values_{level}"] = coo.data
    with atomic_write(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_hierarchy(path: str | os.PathLike, key: str, vertices: np.ndarray, triangles: np.ndarray,
                   factors) -> MeshHierarchy:
    """Reads and validates a cached hierarchy.

    Raises:
      StaleCacheError if the file is unreadable, from another version, mesh or factors, or
      inconsistent (shapes, index ranges, non-finite values, rows of U not summing to 1).
    """
    vertices, triangles = validate_mesh(vertices, triangles)
    factors = _check_factors(factors)
    try:
        arrays = fileio.read_npz(path)
    except (OSError, ValueError) as error:
        raise StaleCacheError(f"cannot read {path}: {error}") from error

    def need(name):
        if name not in arrays:
            raise StaleCacheError(f"{path}: missing array {name!r}")
        return arrays[name]

    if int(need("version")) != ALGORITHM_VERSION:
        raise StaleCacheError(f"{path}: algorithm version {int(need('version'))} != {ALGORITHM_VERSION}")
    if str(need("key")) != key:
        raise StaleCacheError(f"{path}: key does not match this mesh, factors and options")
    if tuple(need("factors").tolist()) != factors:
        raise StaleCacheError(f"{path}: factors differ")
    sizes = level_sizes(len(vertices), factors)
    lmax = need("lmax")
    if lmax.shape != (len(sizes),) or not np.all(np.isfinite(lmax)) or np.any(lmax <= 0):
        raise StaleCacheError(f"{path}: bad lmax array")
    level_vertices, level_triangles, kept_list, down, up = [], [], [], [], []
    for level, size in enumerate(sizes):
        v, t = need(f"vertices_{level}"), need(f"triangles_{level}")
        if v.shape != (size, 3) or v.dtype != np.float64 or not np.all(np.isfinite(v)):
            raise StaleCacheError(f"{path}: level {level} vertices have shape {v.shape}, expected ({size}, 3)")
        if t.ndim != 2 or t.shape[1] != 3 or t.dtype != np.int64 or t.min() < 0 or t.max() >= size:
            raise StaleCacheError(f"{path}: level {level} triangles are invalid")
        level_vertices.append(v)
        level_triangles.append(t)
    if not (np.array_equal(level_vertices[0], vertices) and np.array_equal(level_triangles[0], triangles)):
        raise StaleCacheError(f"{path}: level 0 differs from the requested mesh")
    for level in range(len(factors)):
        fine, coarse = sizes[level], sizes[level + 1]
        kept = need(f"kept_{level}")
        if (kept.shape != (coarse,) or kept.dtype != np.int64 or np.any(np.diff(kept) <= 0)
                or kept.min() < 0 or kept.max() >= fine):
            raise StaleCacheError(f"{path}: level {level} kept indices are invalid")
        if not np.array_equal(level_vertices[level][kept], level_vertices[level + 1]):
            raise StaleCacheError(f"{path}: level {level + 1} vertices are not the kept ones")
        rows, cols, values = (need(f"up_{part}_{level}") for part in ("rows", "cols", "values"))
        if not (rows.shape == cols.shape == values.shape and rows.ndim == 1):
            raise StaleCacheError(f"{path}: level {level} up-sampling arrays disagree in shape")
        if rows.size and (rows.min() < 0 or rows.max() >= fine or cols.min() < 0 or cols.max() >= coarse):
            raise StaleCacheError(f"{path}: level {level} up-sampling indices out of range")
        matrix = sp.csr_matrix((values, (rows, cols)), shape=(fine, coarse))
        if not np.all(np.isfinite(values)) or np.abs(np.asarray(matrix.sum(axis=1)).ravel() - 1).max() > 1e-9:
            raise StaleCacheError(f"{path}: level {level} up-sampling rows do not sum to 1")
        matrix.sort_indices()
        kept_list.append(kept)
        down.append(down_sampling_matrix(kept, fine))
        up.append(matrix)
    return MeshHierarchy(factors, tuple(level_vertices), tuple(level_triangles), tuple(kept_list),
                         tuple(down), tuple(up), tuple(float(x) for x in lmax))


def load_or_build_hierarchy(vertices: np.ndarray, triangles: np.ndarray, factors=(4, 4, 4, 4), *,
                            cache_path: str | os.PathLike | None = None,
                            boundary_weight: float = 1.0) -> MeshHierarchy:
    """The cached hierarchy of this mesh, built and cached on first use or when stale.

    Args:
      vertices: [V, 3]; triangles: [T, 3]; factors: reduction per level.
      cache_path: .npz file; default: default_cache_path(key) under $FACE_GCN_CACHE.
      boundary_weight: see build_hierarchy.
    """
    key = hierarchy_key(vertices, triangles, factors, boundary_weight)
    path = os.fspath(cache_path) if cache_path is not None else default_cache_path(key)
    if os.path.exists(path):
        try:
            return load_hierarchy(path, key, vertices, triangles, factors)
        except StaleCacheError as error:
            LOG.warning("rebuilding the mesh hierarchy: %s", error)
    start = time.perf_counter()
    hierarchy = build_hierarchy(vertices, triangles, factors, boundary_weight=boundary_weight)
    LOG.info("built mesh hierarchy %s in %.1f s", hierarchy.num_vertices, time.perf_counter() - start)
    save_hierarchy(path, hierarchy, key)
    return hierarchy
