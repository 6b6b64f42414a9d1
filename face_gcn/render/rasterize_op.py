"""Rasterization with the compiled op (FaceGcnRasterizeTriangles) and its registered gradient.

Conventions (Genova's tf_mesh_renderer, see DESIGN.md): Olano-Greer homogeneous rasterization of
clip-space triangles, no backface culling, pixel centres at (i + 0.5), row 0 at NDC y = -1 (no
flip), depth test on NDC z with near/far clipping to [-1, 1], equal depths won by the higher
triangle index. Empty pixels hold triangle id -1, barycentrics 0 and depth 1.

Input policy: shapes, dtypes, vertex indices outside [0, V), NaN/Inf vertices, image sides
outside [1, 8192] and more than 2**28 output pixels raise tf.errors.InvalidArgumentError (or
ValueError/TypeError when Python sees it first). A mesh with no triangles gives empty images and
a batch of 0 gives empty outputs.
"""

from __future__ import annotations

import tensorflow as tf

from face_gcn.render import op_library, rasterize_inputs

OP_NAME = "FaceGcnRasterizeTriangles"


def available() -> bool:
    """True when the compiled op library loads."""
    return op_library.load() is not None


def _ops():
    module = op_library.load()
    if module is None:
        raise RuntimeError(
            f"the compiled rasterizer op is not available ({op_library.status()}); build it with "
            "`pip install --no-build-isolation -e .` or use face_gcn.render.rasterize_fallback")
    return module


def rasterize(clip_vertices, triangles, image_width: int, image_height: int):
    """Rasterizes B meshes sharing one triangle list.

    Args:
      clip_vertices: [B, V, 4] float32 homogeneous clip coordinates (x, y, z, w).
      triangles: [T, 3] int32 vertex indices in [0, V), shared by the batch.
      image_width, image_height: output size W, H in pixels, each in [1, 8192].

    Returns:
      barycentrics: [B, H, W, 3] float32 perspective-correct barycentrics (0 where empty);
        differentiable with respect to clip_vertices (x, y, w; not z).
      triangle_ids: [B, H, W] int32 index of the visible triangle, -1 where empty.
      z_buffer: [B, H, W] float32 NDC depth in [-1, 1], 1 where empty.
    """
    clip_vertices, triangles, image_width, image_height = rasterize_inputs.check_static_inputs(
        clip_vertices, triangles, image_width, image_height)
    return _ops().face_gcn_rasterize_triangles(
        clip_vertices, triangles, image_width=image_width, image_height=image_height)


def rasterize_grad(clip_vertices, triangles, barycentrics, triangle_ids, d_barycentrics,
                   image_width: int, image_height: int):
    """The backward op: d loss / d clip_vertices from d loss / d barycentrics.

    Args:
      clip_vertices: [B, V, 4] and triangles: [T, 3], the forward inputs.
      barycentrics: [B, H, W, 3] and triangle_ids: [B, H, W], the forward outputs. Pixels whose
        barycentrics sum below 0.9 get no gradient, so their id may be anything in [-1, T).
      d_barycentrics: [B, H, W, 3] float32.
      image_width, image_height: the forward op's size.
    Returns:
      [B, V, 4] float32 gradient (x, y and w; the z column is 0).
    """
    return _ops().face_gcn_rasterize_triangles_grad(
        clip_vertices, triangles, barycentrics, triangle_ids, d_barycentrics,
        image_width=image_width, image_height=image_height)


@tf.RegisterGradient(OP_NAME)
def _rasterize_grad(op, d_barycentrics, d_triangle_ids, d_z_buffer):
    """d loss / d clip_vertices [B, V, 4] from d loss / d barycentrics only."""
    del d_triangle_ids, d_z_buffer  # ids are integers; depth gets no gradient (as Genova)
    barycentrics, triangle_ids, _ = op.outputs
    if d_barycentrics is None:
        d_barycentrics = tf.zeros_like(barycentrics)
    d_vertices = rasterize_grad(
        op.inputs[0], op.inputs[1], barycentrics, triangle_ids, d_barycentrics,
        op.get_attr("image_width"), op.get_attr("image_height"))
    return d_vertices, None
