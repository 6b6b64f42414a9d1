"""Refiner baselines of the paper's ablation (Table 2): fully connected, and a CNN on a UV map.

Both take the Refiner's input [B, V, 7] and return per-vertex features [B, V, F], so either can
replace the GCN Refiner in gcn.build_texture_gcn(..., refiner=...).

The UV map is an orthographic projection of the mean shape onto the (x, y) plane, scaled into
the unit square. Vertex -> UV: the mesh is rasterized once in UV space and every covered texel
takes the barycentric mix of its triangle's corners (a fixed sparse matrix [R*R, V]). UV ->
vertex: bilinear sampling at each vertex's UV over covered texels, weights renormalised; a vertex
with no covered texel among its four takes the nearest covered texel ([V, R*R]). Both matrices
live in MeshResample layers, so the models serialise like the GCNs.
"""

from __future__ import annotations

import keras
import numpy as np
import scipy.sparse as sp
import scipy.spatial

from face_gcn.graph.layers import MeshResample
from face_gcn.render import rasterizer

UV_MARGIN = 0.02  # fraction of the UV square left empty on each side


def fully_connected_refiner(num_vertices: int, hidden: int = 256, channels: int = 16,
                            input_channels: int = 7, name: str = "fc_refiner") -> keras.Model:
    """[B, V, 7] -> flatten -> Dense(hidden) ELU -> Dense(V * channels) ELU -> [B, V, channels].

    Parameter count is about V * (7 + channels) * hidden (BFM, hidden 256: about 210 M).
    """
    inputs = keras.Input((num_vertices, input_channels), name="vertex_features")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(hidden, activation="elu", kernel_initializer="he_normal", name="hidden")(x)
    x = keras.layers.Dense(num_vertices * channels, activation="elu", kernel_initializer="he_normal",
                           name="expand")(x)
    x = keras.layers.Reshape((num_vertices, channels), name="to_vertices")(x)
    return keras.Model(inputs, x, name=name)


def uv_coordinates(vertices: np.ndarray) -> np.ndarray:
    """[V, 3] mean shape -> [V, 2] UV in [margin, 1 - margin] (orthographic along z, aspect kept)."""
    vertices = np.asarray(vertices, np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be [V, 3], got {vertices.shape}")
    xy = vertices[:, :2]
    low, span = xy.min(0), np.ptp(xy, 0).max()
    if span <= 0:
        raise ValueError("the mesh has no extent in x and y")
    return UV_MARGIN + (1.0 - 2.0 * UV_MARGIN) * (xy - low) / span


def uv_resampling(vertices: np.ndarray, triangles: np.ndarray, resolution: int,
                  backend: str = "auto") -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(to_uv [R*R, V], from_uv [V, R*R]) sparse float64 matrices, texel index row * R + column.

    Texel (row, column) covers u in [column, column + 1) / R and v in [row, row + 1) / R. Where
    the orthographic projection folds over itself, the texel keeps the surface nearest +z.
    """
    triangles = np.asarray(triangles, np.int32)
    uv = uv_coordinates(vertices)
    z = np.asarray(vertices, np.float64)[:, 2]
    depth = (z.max() - z) / max(np.ptp(z), 1e-12)  # 0 nearest the viewer on +z
    clip = np.concatenate([2.0 * uv - 1.0, depth[:, None] - 1.0, np.ones((len(uv), 1))], axis=1)
    barycentrics, triangle_ids, _ = rasterizer.rasterize(clip[None].astype(np.float32), triangles,
                                                         resolution, resolution, backend=backend)
    barycentrics, triangle_ids = barycentrics.numpy()[0].reshape(-1, 3), triangle_ids.numpy()[0].reshape(-1)
    covered = np.nonzero(triangle_ids >= 0)[0]
    if covered.size == 0:
        raise ValueError("the UV rasterization covers no texel")
    corners = triangles[triangle_ids[covered]]
    weights = barycentrics[covered] / barycentrics[covered].sum(1, keepdims=True)
    to_uv = sp.csr_matrix((weights.ravel(), (np.repeat(covered, 3), corners.ravel())),
                          shape=(resolution * resolution, len(uv)))

    texel = uv * resolution - 0.5  # continuous (column, row) with texel centres at integers
    base = np.floor(texel).astype(np.int64)
    frac = texel - base
    rows, cols, vals = [], [], []
    is_covered = np.zeros(resolution * resolution, bool)
    is_covered[covered] = True
    for dc, dr in ((0, 0), (1, 0), (0, 1), (1, 1)):
        c, r = base[:, 0] + dc, base[:, 1] + dr
        w = (frac[:, 0] if dc else 1 - frac[:, 0]) * (frac[:, 1] if dr else 1 - frac[:, 1])
        inside = (c >= 0) & (c < resolution) & (r >= 0) & (r < resolution)
        index = np.where(inside, r * resolution + c, 0)
        keep = inside & is_covered[index] & (w > 0)
        rows.append(np.nonzero(keep)[0])
        cols.append(index[keep])
        vals.append(w[keep])
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    totals = np.bincount(rows, weights=vals, minlength=len(uv))
    orphans = np.nonzero(totals <= 0)[0]
    if orphans.size:
        centres = np.stack([covered % resolution, covered // resolution], 1) + 0.5
        _, nearest = scipy.spatial.cKDTree(centres).query(uv[orphans] * resolution)
        rows = np.concatenate([rows, orphans])
        cols = np.concatenate([cols, covered[nearest]])
        vals = np.concatenate([vals, np.ones(orphans.size)])
        totals[orphans] = 1.0
    from_uv = sp.csr_matrix((vals / totals[rows], (rows, cols)), shape=(len(uv), resolution * resolution))
    return to_uv, from_uv


def uv_cnn_refiner(vertices: np.ndarray, triangles: np.ndarray, resolution: int = 256,
                   widths=(16, 32, 64), channels: int = 16, input_channels: int = 7,
                   backend: str = "auto", name: str = "uv_cnn_refiner") -> keras.Model:
    """[B, V, 7] -> UV map [B, R, R, 7] -> small U-Net -> sampled back to [B, V, channels].

    U-Net: 3x3 conv widths[0]; for each further width a stride-2 3x3 conv; then back up with
    2x nearest upsampling, concatenation of the same-resolution encoder map and a 3x3 conv; all
    ELU. R must be divisible by 2^(len(widths) - 1).
    """
    factor = 2 ** (len(widths) - 1)
    if resolution % factor:
        raise ValueError(f"resolution must be divisible by {factor}, got {resolution}")
    to_uv, from_uv = uv_resampling(vertices, triangles, resolution, backend)
    num_vertices = len(vertices)
    inputs = keras.Input((num_vertices, input_channels), name="vertex_features")
    x = MeshResample(to_uv, name="to_uv")(inputs)
    x = keras.layers.Reshape((resolution, resolution, input_channels), name="uv_map")(x)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", activation="elu", name="enc0")(x)
    skips = [x]
    for level, width in enumerate(widths[1:], start=1):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="elu", name=f"enc{level}")(x)
        skips.append(x)
    for level in range(len(widths) - 2, -1, -1):
        x = keras.layers.UpSampling2D(2, name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = keras.layers.Conv2D(widths[level], 3, padding="same", activation="elu", name=f"dec{level}")(x)
    x = keras.layers.Conv2D(channels, 1, activation="elu", name="features")(x)
    x = keras.layers.Reshape((resolution * resolution, channels), name="texels")(x)
    x = MeshResample(from_uv, name="from_uv")(x)
    return keras.Model(inputs, x, name=name)
