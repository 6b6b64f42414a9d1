"""Readers for the user's own Basel Face Model files, in Deng et al.'s front-face layout.

Two routes give the same kind of model (Deng's BFM_model_front: the 35,709 front-face
vertices of BFM 2009, 80 identity, 64 expression and 80 albedo components):

- ``load_deng_front_model``: Deng's ready ``BFM_model_front.mat``.
- ``convert_bfm2009``: Deng's conversion from the original files: ``01_MorphableModel.mat``
  (BFM 2009), ``Exp_Pca.bin`` and ``std_exp.txt`` (the FaceWarehouse expression basis),
  ``BFM_front_idx.mat``, ``BFM_exp_idx.mat`` and ``facemodel_info.mat``.

The Basel data is registration-only: nothing here downloads or bundles it. Vertex and
component counts are read from the files, never assumed, so small files in the same formats
work too (the tests use them). Every problem raises MorphableModelError naming the file.

Conventions of the result (see face_gcn.morphable.model): positions in BFM units / 1e5
(micrometres / 1e5 = decimetres), albedo in [0, 1] (Deng's 0-255 divided by 255), 0-based
indices, bases pre-scaled by their standard deviations. The mean shape is re-centred on its
centroid, as Deng's reconstruction does before applying the pose (Shape_formation_block), so
``mean + bases @ coefficients`` is exactly Deng's canonical face for the same coefficients.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from face_gcn import fileio
from face_gcn.morphable import model as model_lib

MorphableModelError = model_lib.MorphableModelError

NUM_ID = 80
NUM_EXP = 64
NUM_ALBEDO = 80
SHAPE_SCALE = 1e5    # BFM units (micrometres) per model unit
ALBEDO_SCALE = 255.0  # BFM albedo values per model unit

# Deng's five standard 3D alignment points (left eye, right eye, nose tip, left and right
# mouth corners), derived from BFM's mean face in similarity_Lm3D_all.mat.
DENG_ALIGNMENT_LANDMARKS = np.array([
    [-0.311487, 0.290361, 0.133780],
    [0.309799, 0.289720, 0.131795],
    [0.003253, -0.046179, 0.552442],
    [-0.252169, -0.381339, 0.224057],
    [0.248466, -0.381282, 0.222358],
], dtype=np.float32)


# --------------------------------------------------------------------------- file readers


def _require_file(path) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MorphableModelError(f"{path}: file not found")
    fileio.refuse_lfs_pointer(path, "Basel Face Model file", MorphableModelError)
    return path


def _read_mat(path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named variables of a MATLAB .mat file, as arrays; every key must be present."""
    from scipy import io as scipy_io  # pylint: disable=import-outside-toplevel

    path = _require_file(path)
    try:
        contents = scipy_io.loadmat(path)
    except Exception as error:  # scipy raises ValueError, TypeError, MatReadError...
        raise MorphableModelError(f"{path}: not a readable MATLAB .mat file ({error})") from None
    missing = [key for key in keys if key not in contents]
    if missing:
        raise MorphableModelError(f"{path}: missing variable(s) {', '.join(missing)}")
    result = {}
    for key in keys:
        value = contents[key]
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise MorphableModelError(f"{path}: variable '{key}' is not a numeric array")
        result[key] = value
    return result


def _vector(path: str, key: str, value: np.ndarray, size: int | None = None) -> np.ndarray:
    """A [N] view of a MATLAB row or column vector, checking its length when given."""
    if value.ndim > 2 or (value.ndim == 2 and min(value.shape) != 1 and value.size):
        raise MorphableModelError(f"{path}: '{key}' must be a vector, got shape {value.shape}")
    flat = value.reshape(-1)
    if size is not None and flat.size != size:
        raise MorphableModelError(f"{path}: '{key}' must have {size} values, got {flat.size}")
    return flat


def _matrix(path: str, key: str, value: np.ndarray, rows: int | None, min_cols: int,
            ) -> np.ndarray:
    """Checks a [rows, >= min_cols] matrix."""
    if value.ndim != 2 or (rows is not None and value.shape[0] != rows) or (
            value.shape[1] < min_cols):
        expected = f"[{'N' if rows is None else rows}, >= {min_cols}]"
        raise MorphableModelError(f"{path}: '{key}' must have shape {expected}, got {value.shape}")
    return value


def _one_based(path: str, key: str, value: np.ndarray, upper: int) -> np.ndarray:
    """Converts 1-based MATLAB indices to 0-based int64, checking they lie in [1, upper]."""
    if value.size == 0:
        raise MorphableModelError(f"{path}: '{key}' is empty")
    if value.dtype.kind == "f" and not np.all(np.equal(np.mod(value, 1), 0)):
        raise MorphableModelError(f"{path}: '{key}' must hold integer indices")
    indices = value.astype(np.int64)
    if indices.min() < 1 or indices.max() > upper:
        raise MorphableModelError(
            f"{path}: '{key}' indices must lie in [1, {upper}] (1-based), got "
            f"[{indices.min()}, {indices.max()}]")
    return indices - 1


def _finite(path: str, key: str, value: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(value)):
        raise MorphableModelError(f"{path}: '{key}' contains NaN or infinite values")
    return value


def read_exp_pca_bin(path) -> tuple[np.ndarray, np.ndarray]:
    """Reads Exp_Pca.bin (FaceWarehouse expression PCA in BFM's topology).

    Layout (little-endian): int32 n; float32 mean[3M]; float32 components[n * 3M],
    component-major, each component vertex-major (x0, y0, z0, x1, ...). M is derived
    from the file size.
    Returns:
      mean: [3M] float32 (unused by Deng's model); components: [3M, n] float32, BFM units.
    """
    path = _require_file(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size < 4 or raw.size % 4:
        raise MorphableModelError(
            f"{path}: size {raw.size} bytes is not an int32 header plus float32 values")
    count = int(raw[:4].view("<i4")[0])
    values = raw[4:].view("<f4")
    if count < 1 or values.size % (3 * (count + 1)):
        raise MorphableModelError(
            f"{path}: header says {count} components, but {values.size} float32 values are "
            f"not 3 * M * ({count} + 1) for any vertex count M")
    length = values.size // (count + 1)
    if length == 0:
        raise MorphableModelError(f"{path}: holds no vertices")
    mean = values[:length].astype(np.float32)
    components = values[length:].reshape(count, length).T.astype(np.float32)
    return _finite(path, "mean", mean), _finite(path, "components", components)


def read_std_exp_txt(path) -> np.ndarray:
    """Reads std_exp.txt: one standard deviation per expression component. Returns [n]."""
    path = _require_file(path)
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as error:
        raise MorphableModelError(f"{path}: not a list of numbers ({error})") from None
    values = _finite(path, "values", values.reshape(-1))
    if values.size == 0 or np.any(values < 0):
        raise MorphableModelError(f"{path}: needs non-negative standard deviations")
    return values


# --------------------------------------------------------------------------- model builders


def _first_columns(path: str, key: str, basis: np.ndarray, count: int) -> np.ndarray:
    if basis.shape[1] < count:
        raise MorphableModelError(
            f"{path}: '{key}' has {basis.shape[1]} components; Deng's layout needs {count}")
    return basis[:, :count]


def _mask_from_indices(path: str, key: str, value: np.ndarray, num_vertices: int) -> np.ndarray:
    mask = np.zeros(num_vertices, dtype=bool)
    mask[_one_based(path, key, value.reshape(-1), num_vertices)] = True
    return mask


def _mask_from_flags(path: str, key: str, value: np.ndarray, num_vertices: int) -> np.ndarray:
    flags = _vector(path, key, value, num_vertices)
    if not np.all((flags == 0) | (flags == 1)):
        raise MorphableModelError(f"{path}: '{key}' must hold 0/1 per vertex")
    return flags.astype(bool)


def _topology(path: str, info: Mapping[str, np.ndarray], num_vertices: int) -> dict:
    """Triangles, landmarks and masks from Deng's 1-based variables (facemodel_info layout)."""
    triangles = _matrix(path, "tri", info["tri"], None, 3)
    if triangles.shape[1] != 3:
        raise MorphableModelError(f"{path}: 'tri' must have shape [T, 3], got {triangles.shape}")
    triangles = _one_based(path, "tri", triangles, num_vertices)
    keypoints = _vector(path, "keypoints", info["keypoints"], model_lib.NUM_LANDMARKS)
    return {
        "triangles": triangles,
        "vertex_triangles": model_lib.vertex_triangle_table(triangles, num_vertices),
        "landmark_indices": _one_based(path, "keypoints", keypoints, num_vertices),
        "front_mask": _mask_from_indices(path, "frontmask2_idx", info["frontmask2_idx"],
                                         num_vertices),
        "skin_mask": _mask_from_flags(path, "skinmask", info["skinmask"], num_vertices),
    }


def _build(name: str, mean_shape: np.ndarray, mean_albedo: np.ndarray, bases: dict,
           topology: dict, source: str) -> model_lib.MorphableModel:
    mean_shape = mean_shape - mean_shape.mean(axis=0, keepdims=True)
    try:
        return model_lib.MorphableModel(
            name=name, mean_shape=mean_shape, mean_albedo=mean_albedo,
            alignment_landmarks=DENG_ALIGNMENT_LANDMARKS, **bases, **topology)
    except MorphableModelError as error:
        raise MorphableModelError(f"{source}: {error}") from None


_DENG_KEYS = ("meanshape", "idBase", "exBase", "meantex", "texBase", "tri", "keypoints",
              "frontmask2_idx", "skinmask")


def load_deng_front_model(path) -> model_lib.MorphableModel:
    """Reads Deng's BFM_model_front.mat into a MorphableModel.

    Variables: meanshape [1, 3V] (or [3V, 1]), idBase [3V, >=80], exBase [3V, >=64],
    meantex [1, 3V] in 0-255, texBase [3V, >=80] in 0-255 per unit coefficient; tri [T, 3],
    keypoints [1, 68] and frontmask2_idx [N, 1] 1-based; skinmask 0/1 per vertex. point_buf is
    not needed: the adjacency table is rebuilt from tri.

    The file does not store the standard deviations the bases were scaled by, so *_stddev are
    the column norms of the bases (exact where the original principal components restricted to
    the front face keep unit norm, approximate otherwise); nothing in face_gcn's math uses
    them beyond reporting.
    """
    path = os.fspath(path)
    data = _read_mat(path, _DENG_KEYS)
    mean = _finite(path, "meanshape", _vector(path, "meanshape", data["meanshape"]))
    if mean.size % 3 or mean.size < 9:
        raise MorphableModelError(f"{path}: 'meanshape' length {mean.size} is not 3 * V (V >= 3)")
    num_v = mean.size // 3
    meantex = _finite(path, "meantex", _vector(path, "meantex", data["meantex"], 3 * num_v))
    id_basis = _first_columns(path, "idBase", _finite(path, "idBase", _matrix(
        path, "idBase", data["idBase"], 3 * num_v, 1)), NUM_ID)
    exp_basis = _first_columns(path, "exBase", _finite(path, "exBase", _matrix(
        path, "exBase", data["exBase"], 3 * num_v, 1)), NUM_EXP)
    tex_basis = _first_columns(path, "texBase", _finite(path, "texBase", _matrix(
        path, "texBase", data["texBase"], 3 * num_v, 1)), NUM_ALBEDO) / ALBEDO_SCALE
    bases = {
        "id_basis": id_basis, "id_stddev": np.linalg.norm(id_basis.astype(np.float64), axis=0),
        "exp_basis": exp_basis,
        "exp_stddev": np.linalg.norm(exp_basis.astype(np.float64), axis=0),
        "albedo_basis": tex_basis,
        "albedo_stddev": np.linalg.norm(tex_basis.astype(np.float64), axis=0),
    }
    return _build("BFM 2009 front (Deng's BFM_model_front.mat)",
                  mean.reshape(num_v, 3).astype(np.float64),
                  meantex.reshape(num_v, 3) / ALBEDO_SCALE, bases,
                  _topology(path, data, num_v), path)


def convert_bfm2009(morphable_model_mat, exp_pca_bin, front_idx_mat, exp_idx_mat,
                    facemodel_info_mat, std_exp_txt) -> model_lib.MorphableModel:
    """Converts the original BFM 2009 files into Deng's front-face model, as Deng's code does.

    Index composition: ``BFM_front_idx.mat`` 'idx' (1-based) picks the front-face vertices
    among the M vertices of the expression basis; ``BFM_exp_idx.mat`` 'trimIndex' (1-based)
    maps each of those M vertices to one of BFM's N vertices. So the expression basis is taken
    at ``idx`` and shape/albedo at ``trimIndex[idx]``.

    Scaling: identity = shapePC * shapeEV / 1e5 (first 80), expression = expPC * std_exp / 1e5
    (first 64), albedo = texPC * texEV / 255 (first 80); mean shape = shapeMU / 1e5,
    mean albedo = texMU / 255. The *_stddev fields hold shapeEV / 1e5, std_exp / 1e5 and
    texEV / 255, the factors the bases were scaled by.
    """
    bfm_path = os.fspath(morphable_model_mat)
    bfm = _read_mat(bfm_path, ("shapeMU", "shapePC", "shapeEV", "texMU", "texPC", "texEV"))
    shape_mu = _finite(bfm_path, "shapeMU", _vector(bfm_path, "shapeMU", bfm["shapeMU"]))
    if shape_mu.size % 3 or shape_mu.size == 0:
        raise MorphableModelError(f"{bfm_path}: 'shapeMU' length {shape_mu.size} is not 3 * N")
    num_bfm = shape_mu.size // 3
    shape_pc = _finite(bfm_path, "shapePC", _matrix(bfm_path, "shapePC", bfm["shapePC"],
                                                    3 * num_bfm, NUM_ID))
    shape_ev = _finite(bfm_path, "shapeEV", _vector(bfm_path, "shapeEV", bfm["shapeEV"],
                                                    shape_pc.shape[1]))
    tex_mu = _finite(bfm_path, "texMU", _vector(bfm_path, "texMU", bfm["texMU"], 3 * num_bfm))
    tex_pc = _finite(bfm_path, "texPC", _matrix(bfm_path, "texPC", bfm["texPC"],
                                                3 * num_bfm, NUM_ALBEDO))
    tex_ev = _finite(bfm_path, "texEV", _vector(bfm_path, "texEV", bfm["texEV"],
                                                tex_pc.shape[1]))

    exp_path = os.fspath(exp_pca_bin)
    _, exp_pc = read_exp_pca_bin(exp_path)
    num_exp_vertices = exp_pc.shape[0] // 3
    if exp_pc.shape[0] % 3:
        raise MorphableModelError(f"{exp_path}: component length {exp_pc.shape[0]} is not 3 * M")
    if exp_pc.shape[1] < NUM_EXP:
        raise MorphableModelError(
            f"{exp_path}: has {exp_pc.shape[1]} components; Deng's layout needs {NUM_EXP}")
    std_path = os.fspath(std_exp_txt)
    std_exp = read_std_exp_txt(std_path)
    if std_exp.size != exp_pc.shape[1]:
        raise MorphableModelError(
            f"{std_path}: has {std_exp.size} values but {exp_path} has {exp_pc.shape[1]} "
            "components")

    front_path = os.fspath(front_idx_mat)
    front = _one_based(front_path, "idx", _vector(
        front_path, "idx", _read_mat(front_path, ("idx",))["idx"]), num_exp_vertices)
    trim_path = os.fspath(exp_idx_mat)
    trim = _one_based(trim_path, "trimIndex", _vector(
        trim_path, "trimIndex", _read_mat(trim_path, ("trimIndex",))["trimIndex"],
        num_exp_vertices), num_bfm)
    shape_index = trim[front]          # front vertices among BFM's N
    num_v = front.size

    def rows(index):  # [3 * len(index)] rows x, y, z of the given vertices
        return (3 * index[:, None] + np.arange(3)[None, :]).reshape(-1)

    shape_rows, exp_rows = rows(shape_index), rows(front)
    id_stddev = shape_ev[:NUM_ID].astype(np.float64) / SHAPE_SCALE
    exp_stddev = std_exp[:NUM_EXP] / SHAPE_SCALE
    albedo_stddev = tex_ev[:NUM_ALBEDO].astype(np.float64) / ALBEDO_SCALE
    bases = {
        "id_basis": shape_pc[shape_rows, :NUM_ID].astype(np.float64) * id_stddev,
        "id_stddev": id_stddev,
        "exp_basis": exp_pc[exp_rows, :NUM_EXP].astype(np.float64) * exp_stddev,
        "exp_stddev": exp_stddev,
        "albedo_basis": tex_pc[shape_rows, :NUM_ALBEDO].astype(np.float64) * albedo_stddev,
        "albedo_stddev": albedo_stddev,
    }
    info_path = os.fspath(facemodel_info_mat)
    info = _read_mat(info_path, ("tri", "keypoints", "frontmask2_idx", "skinmask"))
    return _build("BFM 2009 front (converted from 01_MorphableModel.mat)",
                  shape_mu.reshape(num_bfm, 3)[shape_index].astype(np.float64) / SHAPE_SCALE,
                  tex_mu.reshape(num_bfm, 3)[shape_index].astype(np.float64) / ALBEDO_SCALE,
                  bases, _topology(info_path, info, num_v), bfm_path)
