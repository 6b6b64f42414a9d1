"""The morphable model container: an immutable bundle of arrays saved as .npz.

Conventions (those of Deng et al. 2019, so that their coefficients apply unchanged):
- Positions are in BFM units / 1e5 (about decimetres): a face is about 2 units wide,
  centred near the origin, nose towards +z, y up.
- Bases are stored pre-scaled by their standard deviations, so coefficients are in units
  of one standard deviation: ``shape = mean_shape + id_basis @ c_id + exp_basis @ c_exp``.
- Flattened bases are vertex-major, ``[3V, K]`` with rows ``x0, y0, z0, x1, ...``.
- Albedo is linear RGB in [0, 1] (Deng's 0-255 values divided by 255).
- ``vertex_triangles`` lists the triangles around each vertex, padded with
  ``num_triangles`` (an index one past the last triangle, whose normal is zero).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping

import numpy as np

from face_gcn import fileio

FORMAT_VERSION = 1
MATLAB_HEADER = b"MATLAB"  # the first bytes of a .mat file (v5 and v7.3)

NUM_LANDMARKS = 68
NUM_ALIGNMENT_LANDMARKS = 5


class MorphableModelError(ValueError):
    """A morphable model file or array is missing, malformed or inconsistent."""


@dataclasses.dataclass(frozen=True, eq=False)
class MorphableModel:
    """A linear 3D morphable model of face shape, expression and albedo.

    Attributes (V vertices, T triangles, K_* components, P max triangles per vertex):
      name: human-readable origin, e.g. "demo-v1 seed=0" or "BFM2009 front".
      mean_shape: [V, 3] float32, BFM units / 1e5.
      id_basis: [3V, K_id] float32, identity basis scaled by id_stddev.
      id_stddev: [K_id] float32, standard deviation each identity component was scaled by.
      exp_basis: [3V, K_exp] float32, expression basis scaled by exp_stddev.
      exp_stddev: [K_exp] float32.
      mean_albedo: [V, 3] float32, linear RGB in [0, 1].
      albedo_basis: [3V, K_tex] float32, albedo basis scaled by albedo_stddev.
      albedo_stddev: [K_tex] float32.
      triangles: [T, 3] int32, counter-clockwise seen from outside (+z for the face).
      vertex_triangles: [V, P] int32, adjacent triangles padded with T.
      landmark_indices: [68] int32, vertex index of each of the 68 iBUG landmarks.
      skin_mask: [V] bool, vertices on skin (used to weight photometric losses).
      front_mask: [V] bool, vertices of the front face region used for losses.
      alignment_landmarks: [5, 3] float32, the standard 3D points (left eye, right eye,
        nose tip, left mouth corner, right mouth corner) used to align photos.
    """

    name: str
    mean_shape: np.ndarray
    id_basis: np.ndarray
    id_stddev: np.ndarray
    exp_basis: np.ndarray
    exp_stddev: np.ndarray
    mean_albedo: np.ndarray
    albedo_basis: np.ndarray
    albedo_stddev: np.ndarray
    triangles: np.ndarray
    vertex_triangles: np.ndarray
    landmark_indices: np.ndarray
    skin_mask: np.ndarray
    front_mask: np.ndarray
    alignment_landmarks: np.ndarray

    def __post_init__(self):
        for field in _ARRAY_FIELDS:
            try:
                value = np.array(getattr(self, field), dtype=_DTYPES[field], copy=True)
            except (TypeError, ValueError) as error:
                _fail(field, f"cannot convert to {np.dtype(_DTYPES[field]).name}: {error}")
            value.setflags(write=False)
            object.__setattr__(self, field, value)
        object.__setattr__(self, "name", str(self.name))
        validate(self)

    @property
    def num_vertices(self) -> int:
        return int(self.mean_shape.shape[0])

    @property
    def num_triangles(self) -> int:
        return int(self.triangles.shape[0])

    @property
    def num_id(self) -> int:
        return int(self.id_basis.shape[1])

    @property
    def num_exp(self) -> int:
        return int(self.exp_basis.shape[1])

    @property
    def num_albedo(self) -> int:
        return int(self.albedo_basis.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        """All array fields by name (read-only views)."""
        return {field: getattr(self, field) for field in _ARRAY_FIELDS}


_DTYPES = {
    "mean_shape": np.float32,
    "id_basis": np.float32,
    "id_stddev": np.float32,
    "exp_basis": np.float32,
    "exp_stddev": np.float32,
    "mean_albedo": np.float32,
    "albedo_basis": np.float32,
    "albedo_stddev": np.float32,
    "triangles": np.int32,
    "vertex_triangles": np.int32,
    "landmark_indices": np.int32,
    "skin_mask": bool,
    "front_mask": bool,
    "alignment_landmarks": np.float32,
}
_ARRAY_FIELDS = tuple(_DTYPES)


def _fail(field: str, message: str):
    raise MorphableModelError(f"morphable model field '{field}': {message}")


def _check_shape(model: MorphableModel, field: str, expected: tuple):
    actual = getattr(model, field).shape
    if len(actual) != len(expected) or any(
        e is not None and a != e for a, e in zip(actual, expected)
    ):
        parts = ["?" if e is None else str(e) for e in expected]
        pretty = f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
        _fail(field, f"expected shape {pretty}, got {actual}")


def validate(model: MorphableModel) -> None:
    """Checks shapes, index ranges and finiteness; raises MorphableModelError naming the field."""
    num_v = model.mean_shape.shape[0] if model.mean_shape.ndim == 2 else None
    _check_shape(model, "mean_shape", (None, 3))
    if num_v < 3:
        _fail("mean_shape", f"needs at least 3 vertices, got {num_v}")
    for basis, std in (
        ("id_basis", "id_stddev"),
        ("exp_basis", "exp_stddev"),
        ("albedo_basis", "albedo_stddev"),
    ):
        _check_shape(model, basis, (3 * num_v, None))
        _check_shape(model, std, (getattr(model, basis).shape[1],))
        if np.any(getattr(model, std) < 0):
            _fail(std, "standard deviations must be non-negative")
    _check_shape(model, "mean_albedo", (num_v, 3))
    _check_shape(model, "triangles", (None, 3))
    num_t = model.triangles.shape[0]
    if num_t < 1:
        _fail("triangles", "needs at least one triangle")
    if model.triangles.min() < 0 or model.triangles.max() >= num_v:
        _fail("triangles", f"indices must lie in [0, {num_v}), got "
              f"[{model.triangles.min()}, {model.triangles.max()}]")
    _check_shape(model, "vertex_triangles", (num_v, None))
    if model.vertex_triangles.size and (
        model.vertex_triangles.min() < 0 or model.vertex_triangles.max() > num_t
    ):
        _fail("vertex_triangles", f"indices must lie in [0, {num_t}] ({num_t} is padding)")
    _check_shape(model, "landmark_indices", (NUM_LANDMARKS,))
    if model.landmark_indices.min() < 0 or model.landmark_indices.max() >= num_v:
        _fail("landmark_indices", f"indices must lie in [0, {num_v})")
    _check_shape(model, "skin_mask", (num_v,))
    _check_shape(model, "front_mask", (num_v,))
    _check_shape(model, "alignment_landmarks", (NUM_ALIGNMENT_LANDMARKS, 3))
    for field in _ARRAY_FIELDS:
        value = getattr(model, field)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            _fail(field, "contains NaN or infinite values")
    _check_not_degenerate(model)


def _check_not_degenerate(model: "MorphableModel") -> None:
    """Shapes that load but cannot be rendered or fitted: a mesh of zero extent, triangles that
    repeat a vertex (zero area, undefined normals), landmarks that do not span the face."""
    extent = np.ptp(model.mean_shape, axis=0)
    if np.count_nonzero(extent > 0) < 2:
        _fail("mean_shape", f"spans no surface (extent x, y, z = {extent.tolist()}: every vertex on one line or "
              "at one point)")
    t = model.triangles
    repeated = (t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 0] == t[:, 2])
    if np.any(repeated):
        _fail("triangles", f"{int(repeated.sum())} triangle(s) repeat a vertex, e.g. triangle "
              f"{int(np.argmax(repeated))} = {t[int(np.argmax(repeated))].tolist()}")
    if len(np.unique(model.landmark_indices)) < 3:
        _fail("landmark_indices", "the 68 landmarks lie on fewer than 3 distinct vertices")


def vertex_triangle_table(triangles: np.ndarray, num_vertices: int) -> np.ndarray:
    """Builds the [V, P] table of triangles around each vertex, padded with T.

    Args:
      triangles: [T, 3] integer vertex indices.
      num_vertices: V.
    Returns:
      [V, P] int32 where P is the largest vertex valence (at least 1).
    """
    triangles = np.asarray(triangles, dtype=np.int64)
    num_t = triangles.shape[0]
    vertex = triangles.reshape(-1)
    triangle = np.repeat(np.arange(num_t), 3)
    order = np.argsort(vertex, kind="stable")
    vertex, triangle = vertex[order], triangle[order]
    counts = np.bincount(vertex, minlength=num_vertices)
    width = max(int(counts.max(initial=0)), 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(vertex.size) - starts[vertex]
    table = np.full((num_vertices, width), num_t, dtype=np.int32)
    table[vertex, slot] = triangle
    return table


def save(model: MorphableModel, path: str | os.PathLike) -> None:
    """Writes the model to ``path`` (.npz, uncompressed) atomically."""
    payload = dict(model.arrays())
    payload["format_version"] = np.array(FORMAT_VERSION, dtype=np.int32)
    payload["name"] = np.array(model.name)
    with fileio.atomic_write(path, "wb") as handle:
        np.savez(handle, **payload)


def load(path: str | os.PathLike) -> MorphableModel:
    """Reads a model written by ``save``; raises MorphableModelError naming the problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MorphableModelError(f"morphable model file not found: {path}")
    fileio.refuse_lfs_pointer(path, "morphable model", MorphableModelError)
    with open(path, "rb") as handle:
        if handle.read(len(MATLAB_HEADER)) == MATLAB_HEADER:
            raise MorphableModelError(f"{path} is a MATLAB file, not a face_gcn morphable model (.npz): convert "
                                      "the Basel Face Model's files first with `face-gcn convert-bfm`")
    try:
        contents = fileio.read_npz(path)
    except (ValueError, OSError) as error:
        raise MorphableModelError(
            f"{path} is not a face_gcn morphable model (.npz): {error}") from error
    return from_arrays(contents, source=path)


def from_arrays(contents: Mapping[str, np.ndarray], source: str = "arrays") -> MorphableModel:
    """Builds a model from a mapping like the one ``save`` writes, checking the version."""
    if "format_version" not in contents:
        raise MorphableModelError(f"{source}: missing 'format_version'; not a face_gcn model")
    try:
        version = int(np.asarray(contents["format_version"]))
    except (TypeError, ValueError):
        raise MorphableModelError(f"{source}: format_version must be an integer, got "
                                  f"{np.asarray(contents['format_version'])!r}") from None
    if version != FORMAT_VERSION:
        raise MorphableModelError(
            f"{source}: format_version {version} is not supported (expected {FORMAT_VERSION})")
    missing = [f for f in _ARRAY_FIELDS + ("name",) if f not in contents]
    if missing:
        raise MorphableModelError(f"{source}: missing field(s) {', '.join(missing)}")
    try:
        return MorphableModel(
            name=str(np.asarray(contents["name"])),
            **{field: contents[field] for field in _ARRAY_FIELDS},
        )
    except MorphableModelError as error:
        raise MorphableModelError(f"{source}: {error}") from None
