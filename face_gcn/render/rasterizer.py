"""Rasterizer dispatch: the compiled op when it loads, else the pure-TF fallback.

Both backends share one contract (see rasterize_op / rasterize_fallback) and one input policy:
wrong ranks, last dims or dtypes raise ValueError/TypeError in Python when shapes are static;
triangle indices outside [0, V) and NaN/Inf vertices raise tf.errors.InvalidArgumentError; image
sides (Python or NumPy ints) outside [1, 8192] raise ValueError and non-integer sides TypeError;
a mesh with no triangles renders empty images and a batch of 0 gives empty outputs.

This is face_gcn's own rasterizer API (batched, triangle id -1 where empty). Genova's raw op
(one mesh, id 0 where empty) is face_gcn.render.rasterize_triangles.rasterize_triangles_module.
"""

from __future__ import annotations

from face_gcn.render import op_library

BACKENDS = ("auto", "op", "fallback")


def backend_in_use(backend: str = "auto") -> str:
    """'op' or 'fallback': what `rasterize` runs for the requested backend."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "op" if op_library.load() is not None else "fallback"
    return backend


def rasterize(clip_vertices, triangles, image_width: int, image_height: int,
              backend: str = "auto"):
    """Rasterizes B meshes sharing one triangle list.

    Args:
      clip_vertices: [B, V, 4] float32 clip coordinates (x, y, z, w).
      triangles: [T, 3] int32 vertex indices in [0, V).
      image_width, image_height: W, H in pixels (Python or NumPy ints).
      backend: "auto" (op when built, else fallback), "op" (RuntimeError if not built) or
        "fallback".
    Returns:
      barycentrics [B, H, W, 3] float32 (differentiable), triangle_ids [B, H, W] int32 (-1 where
      empty), z_buffer [B, H, W] float32 NDC depth (1 where empty). Row 0 is NDC y = -1.
    """
    if backend_in_use(backend) == "op":
        from face_gcn.render import rasterize_op  # pylint: disable=import-outside-toplevel
        return rasterize_op.rasterize(clip_vertices, triangles, image_width, image_height)
    from face_gcn.render import rasterize_fallback  # pylint: disable=import-outside-toplevel
    return rasterize_fallback.rasterize(clip_vertices, triangles, image_width, image_height)
