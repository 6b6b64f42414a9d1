"""Deferred shading helpers: attribute interpolation and the vertex-colour renderer.

`interpolate_attributes` is the single implementation of per-pixel attribute interpolation used
by every renderer in face_gcn.render. `render_vertex_colors` is what the pipeline uses: per-vertex
colours (already lit) interpolated with perspective-correct barycentrics, rows flipped so row 0 is
the top of the image (pixel row = image_height - v_up, centres at i + 0.5), background 0.
`rasterize_fragments` + `shade_fragments` are its two halves, for several colourings (and the
z-buffer's visibility test) of one rasterized geometry.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from face_gcn.render import rasterizer


class Fragments(NamedTuple):
    """One rasterization of a batch of meshes, in the rasterizer's row order (row 0 = NDC y = -1)."""

    barycentrics: tf.Tensor  # [B, H, W, 3] perspective-correct, 0 where empty (differentiable)
    triangle_ids: tf.Tensor  # [B, H, W] int32, -1 where empty
    z_buffer: tf.Tensor      # [B, H, W] NDC depth, 1 where empty


def rasterize_fragments(clip_vertices, triangles, image_width: int, image_height: int,
                        backend: str = "auto") -> Fragments:
    """Fragments of clip-space meshes [B, V, 4] (see rasterizer.rasterize)."""
    return Fragments(*rasterizer.rasterize(clip_vertices, triangles, image_width, image_height, backend=backend))


def shade_fragments(fragments: Fragments, triangles, vertex_colors):
    """Per-vertex colours [B, V, C] over rasterized fragments -> (image [B, H, W, C] with row 0 at the
    top and 0 where empty, alpha [B, H, W] coverage in {0, 1})."""
    vertex_colors = tf.convert_to_tensor(vertex_colors, tf.float32)
    if vertex_colors.shape.rank is not None and vertex_colors.shape.rank != 3:
        raise ValueError(f"vertex_colors must have shape [B, V, C], got {vertex_colors.shape}")
    image = interpolate_attributes(vertex_colors, triangles, fragments.barycentrics, fragments.triangle_ids)
    alpha = tf.cast(fragments.triangle_ids >= 0, tf.float32)
    return tf.reverse(image, axis=[1]), tf.reverse(alpha, axis=[1])


def interpolate_attributes(attributes, triangles, barycentrics, triangle_ids):
    """Interpolates per-vertex attributes at every pixel.

    Args:
      attributes: [B, V, C] float per-vertex values.
      triangles: [T, 3] int32.
      barycentrics: [B, H, W, 3] float32 from the rasterizer (0 where empty).
      triangle_ids: [B, H, W] int32 from the rasterizer (-1 or any id where empty).
    Returns:
      [B, H, W, C] float: sum_j b_j * attribute(corner j); 0 where the barycentrics are 0.
    """
    attributes = tf.convert_to_tensor(attributes)
    barycentrics = tf.cast(barycentrics, attributes.dtype)
    if attributes.shape.rank is not None and attributes.shape.rank != 3:
        raise ValueError(f"attributes must have shape [B, V, C], got {attributes.shape}")
    safe_ids = tf.maximum(triangle_ids, 0)                          # [B, H, W]
    corner_ids = tf.gather(tf.convert_to_tensor(triangles, tf.int32), safe_ids)  # [B, H, W, 3]
    corner_values = tf.gather(attributes, corner_ids, batch_dims=1)  # [B, H, W, 3, C]
    return tf.reduce_sum(corner_values * barycentrics[..., tf.newaxis], axis=-2)


def render_vertex_colors(clip_vertices, triangles, vertex_colors, image_width: int,
                         image_height: int, backend: str = "auto"):
    """Renders per-vertex colours.

    Args:
      clip_vertices: [B, V, 4] float32 clip coordinates (NDC y up).
      triangles: [T, 3] int32.
      vertex_colors: [B, V, C] float32 colours (any C).
      image_width, image_height: W, H in pixels.
      backend: rasterizer backend, "auto", "op" or "fallback".
    Returns:
      image: [B, H, W, C] float32, row 0 = top of the image, 0 where no triangle.
      alpha: [B, H, W] float32 coverage in {0, 1}.
    """
    vertex_colors = tf.convert_to_tensor(vertex_colors, tf.float32)
    if vertex_colors.shape.rank is not None and vertex_colors.shape.rank != 3:
        raise ValueError(f"vertex_colors must have shape [B, V, C], got {vertex_colors.shape}")
    fragments = rasterize_fragments(clip_vertices, triangles, image_width, image_height, backend=backend)
    return shade_fragments(fragments, triangles, vertex_colors)
