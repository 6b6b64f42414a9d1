"""Quadric-error edge-collapse decimation that keeps a subset of the original vertices.

QSlim-style (Garland & Heckbert 1997) as CoMA uses it, with no vertex repositioning: every
vertex carries the quadric of the planes of its faces (unit normals, not area weighted); an edge
(a, b) collapses into the endpoint whose position has the smaller error under Q_a + Q_b, so the
decimated mesh's vertices are a subset of the input's. Additions over CoMA, which keep the mesh
a 2-manifold close to the input:
  * optional boundary-preserving planes (perpendicular to the face through each boundary edge,
    scaled by ``boundary_weight``; 0 gives CoMA's quadrics exactly);
  * the link condition (the common neighbours of a and b are exactly the apexes of the faces on
    edge (a, b)), no collapse of an interior edge between two boundary vertices;
  * no collapse that flips a face normal or makes a face degenerate.
Ties are broken by vertex index (lowest first), so the result is deterministic.
"""

from __future__ import annotations

import dataclasses
import heapq
import math

import numpy as np

from face_gcn.graph.adjacency import mesh_edges, validate_mesh


@dataclasses.dataclass(frozen=True)
class Decimation:
    """Result of a decimation.

    kept: [Vc] int64 sorted indices of the kept input vertices.
    triangles: [Tc, 3] int64 triangles indexing the kept vertices (0..Vc-1), input orientation.
    """

    kept: np.ndarray
    triangles: np.ndarray


def face_planes(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plane (n, d) of every triangle: n . x + d = 0 with |n| = 1 (zeros for degenerate ones).

    Returns:
      planes: [T, 4] float64 (nx, ny, nz, d).
      doubled_areas: [T] float64 twice each triangle's area.
    """
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    normal = np.cross(b - a, c - a)
    length = np.linalg.norm(normal, axis=1)
    unit = np.divide(normal, length[:, None], out=np.zeros_like(normal), where=length[:, None] > 0)
    offset = -np.einsum("ij,ij->i", unit, a)
    return np.concatenate([unit, offset[:, None]], axis=1), length


def vertex_quadrics(vertices: np.ndarray, triangles: np.ndarray, boundary_weight: float = 1.0) -> np.ndarray:
    """Error quadric of every vertex.

    Args:
      vertices: [V, 3] float64.
      triangles: [T, 3] int64.
      boundary_weight: weight of the boundary-preserving plane of each boundary edge (0: none).
    Returns:
      [V, 4, 4] float64; the squared-distance error of position x at vertex v is h Q_v h^T with
      h = (x, 1).
    """
    planes, _ = face_planes(vertices, triangles)
    outer = planes[:, :, None] * planes[:, None, :]
    quadrics = np.zeros((vertices.shape[0], 4, 4))
    for corner in range(3):
        np.add.at(quadrics, triangles[:, corner], outer)
    if boundary_weight > 0:
        edges, counts = mesh_edges(triangles)
        boundary = edges[counts == 1]
        if len(boundary):
            # The face owning each boundary edge gives the edge's side plane.
            directed = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
            owner = np.tile(np.arange(len(triangles)), 3)
            lookup = {(int(min(u, v)), int(max(u, v))): int(f) for (u, v), f in zip(directed, owner)}
            faces = np.array([lookup[(int(u), int(v))] for u, v in boundary])
            start, end = vertices[boundary[:, 0]], vertices[boundary[:, 1]]
            side = np.cross(end - start, planes[faces, :3])
            length = np.linalg.norm(side, axis=1)
            side = np.divide(side, length[:, None], out=np.zeros_like(side), where=length[:, None] > 0)
            side_planes = np.concatenate([side, -np.einsum("ij,ij->i", side, start)[:, None]], axis=1)
            side_outer = boundary_weight * side_planes[:, :, None] * side_planes[:, None, :]
            np.add.at(quadrics, boundary[:, 0], side_outer)
            np.add.at(quadrics, boundary[:, 1], side_outer)
    return quadrics


def _collapse_costs(quadrics, homogeneous, first, second):
    """Cheapest collapse of each edge (first[i], second[i]).

    Returns (cost [E], remove [E], keep [E]); ties keep the lower-index endpoint.
    """
    summed = quadrics[first] + quadrics[second]
    cost_keep_first = np.einsum("ei,eij,ej->e", homogeneous[first], summed, homogeneous[first])
    cost_keep_second = np.einsum("ei,eij,ej->e", homogeneous[second], summed, homogeneous[second])
    keep_first = (cost_keep_first < cost_keep_second) | (
        (cost_keep_first == cost_keep_second) & (first < second))
    cost = np.where(keep_first, cost_keep_first, cost_keep_second)
    keep = np.where(keep_first, first, second)
    remove = np.where(keep_first, second, first)
    return cost, remove, keep


def _cross(u, v):
    return (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])


def _sub(u, v):
    return (u[0] - v[0], u[1] - v[1], u[2] - v[2])


class _Decimator:
    """Mutable mesh state for the collapse loop (internal)."""

    def __init__(self, vertices, triangles, boundary_weight, min_normal_cosine):
        self.positions = [tuple(p) for p in vertices.tolist()]
        self.homogeneous = np.concatenate([vertices, np.ones((len(vertices), 1))], axis=1)
        self.quadrics = vertex_quadrics(vertices, triangles, boundary_weight)
        self.faces = triangles.tolist()
        self.face_alive = [True] * len(self.faces)
        self.vertex_faces = [set() for _ in range(len(vertices))]
        for index, face in enumerate(self.faces):
            for vertex in face:
                self.vertex_faces[vertex].add(index)
        self.alive = [True] * len(vertices)
        self.version = [0] * len(vertices)
        edges, counts = mesh_edges(triangles)
        self.boundary = [False] * len(vertices)
        for u, v in edges[counts == 1].tolist():
            self.boundary[u] = self.boundary[v] = True
        self.min_normal_cosine = min_normal_cosine
        self.heap = []

    def neighbours(self, vertex):
        result = set()
        for face in self.vertex_faces[vertex]:
            result.update(self.faces[face])
        result.discard(vertex)
        return result

    def push_edges(self, first, second):
        if len(first) == 0:
            return
        first = np.asarray(first, dtype=np.int64)
        second = np.asarray(second, dtype=np.int64)
        cost, remove, keep = _collapse_costs(self.quadrics, self.homogeneous, first, second)
        low = np.minimum(first, second).tolist()
        high = np.maximum(first, second).tolist()
        for c, lo, hi, r, k in zip(cost.tolist(), low, high, remove.tolist(), keep.tolist()):
            heapq.heappush(self.heap, (c, lo, hi, r, k, self.version[r], self.version[k]))

    def push_all_edges(self):
        triangles = np.array([f for f, ok in zip(self.faces, self.face_alive) if ok], dtype=np.int64)
        edges, _ = mesh_edges(triangles)
        self.push_edges(edges[:, 0], edges[:, 1])

    def can_collapse(self, remove, keep):
        shared = self.vertex_faces[remove] & self.vertex_faces[keep]
        if not shared or len(shared) > 2:
            return False
        apexes = set()
        for face in shared:
            apexes.update(self.faces[face])
        apexes.discard(remove)
        apexes.discard(keep)
        if self.neighbours(remove) & self.neighbours(keep) != apexes:
            return False  # link condition: the collapse would pinch the surface
        if len(shared) == 2 and self.boundary[remove] and self.boundary[keep]:
            return False  # interior edge joining two boundary points
        target = self.positions[keep]
        for face in self.vertex_faces[remove] - shared:
            corners = [self.positions[v] for v in self.faces[face]]
            old = _cross(_sub(corners[1], corners[0]), _sub(corners[2], corners[0]))
            slot = self.faces[face].index(remove)
            corners[slot] = target
            new = _cross(_sub(corners[1], corners[0]), _sub(corners[2], corners[0]))
            old_len = math.sqrt(old[0] ** 2 + old[1] ** 2 + old[2] ** 2)
            new_len = math.sqrt(new[0] ** 2 + new[1] ** 2 + new[2] ** 2)
            if new_len == 0.0:
                return False
            if old_len > 0.0:
                cosine = (old[0] * new[0] + old[1] * new[1] + old[2] * new[2]) / (old_len * new_len)
                if cosine < self.min_normal_cosine:
                    return False
        return True

    def collapse(self, remove, keep):
        shared = self.vertex_faces[remove] & self.vertex_faces[keep]
        for face in shared:
            self.face_alive[face] = False
            for vertex in self.faces[face]:
                self.vertex_faces[vertex].discard(face)
        for face in self.vertex_faces[remove]:
            corners = self.faces[face]
            corners[corners.index(remove)] = keep
            self.vertex_faces[keep].add(face)
        self.vertex_faces[remove] = set()
        self.alive[remove] = False
        self.quadrics[keep] += self.quadrics[remove]
        self.boundary[keep] = self.boundary[keep] or self.boundary[remove]
        self.version[keep] += 1
        self.version[remove] += 1
        others = sorted(self.neighbours(keep))
        self.push_edges([keep] * len(others), others)

    def run(self, num_keep):
        remaining = sum(self.alive)
        self.push_all_edges()
        while remaining > num_keep:
            progress = False
            while self.heap and remaining > num_keep:
                _, _, _, remove, keep, v_remove, v_keep = heapq.heappop(self.heap)
                if not (self.alive[remove] and self.alive[keep]):
                    continue
                if self.version[remove] != v_remove or self.version[keep] != v_keep:
                    continue
                if not self.can_collapse(remove, keep):
                    continue
                self.collapse(remove, keep)
                remaining -= 1
                progress = True
            if remaining > num_keep:
                if not progress:
                    raise RuntimeError(
                        f"decimation stalled at {remaining} vertices (target {num_keep}): no edge "
                        "can collapse without breaking the manifold")
                self.push_all_edges()  # retry edges rejected before their neighbourhood changed

    def result(self):
        kept = np.flatnonzero(np.array(self.alive))
        new_index = np.full(len(self.alive), -1, dtype=np.int64)
        new_index[kept] = np.arange(len(kept))
        faces = np.array([f for f, ok in zip(self.faces, self.face_alive) if ok], dtype=np.int64)
        return Decimation(kept=kept.astype(np.int64), triangles=new_index[faces])


def decimate(vertices: np.ndarray, triangles: np.ndarray, num_keep: int, *,
             boundary_weight: float = 1.0, min_normal_cosine: float = 0.0) -> Decimation:
    """Edge-collapse decimation to ``num_keep`` vertices, keeping a subset of the input vertices.

    Args:
      vertices: [V, 3] float positions; every vertex must belong to a triangle.
      triangles: [T, 3] integer indices, a manifold (possibly open) triangle mesh.
      num_keep: target vertex count, 3 <= num_keep <= V.
      boundary_weight: weight of the boundary-preserving quadrics (0 reproduces CoMA's).
      min_normal_cosine: reject a collapse that turns a face normal by more than
        acos(min_normal_cosine) (0: no face may turn by more than 90 degrees).
    Returns:
      Decimation(kept [num_keep] sorted indices, triangles [Tc, 3] into the kept vertices).
    Raises:
      RuntimeError if no further collapse keeps the mesh manifold before the target.
    """
    vertices, triangles = validate_mesh(vertices, triangles)
    if np.unique(triangles).size != vertices.shape[0]:
        raise ValueError("every vertex must belong to a triangle (remove unreferenced vertices)")
    if mesh_edges(triangles)[1].max() > 2:
        raise ValueError("the mesh has an edge shared by more than two triangles (not a manifold)")
    num_keep = int(num_keep)
    if not 3 <= num_keep <= vertices.shape[0]:
        raise ValueError(f"num_keep must lie in [3, {vertices.shape[0]}], got {num_keep}")
    state = _Decimator(vertices, triangles, float(boundary_weight), float(min_normal_cosine))
    state.run(num_keep)
    return state.result()
