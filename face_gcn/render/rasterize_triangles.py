"""Attribute rasterization with google/tf_mesh_renderer's rasterize_triangles API.

`rasterize` and `rasterize_clip_space` take the same arguments in the same order as Genova's;
`backend` ("auto", "op", "fallback") is an extra keyword. Output rows are NOT flipped (row 0 is
NDC y = -1). Alpha = clip(2 * sum of barycentrics, 0, 1) and the background blend
alpha * attributes + (1 - alpha) * background_value are Genova's.
"""

from __future__ import annotations

import tensorflow as tf

from face_gcn.render import camera_utils, deferred, rasterizer


def rasterize(world_space_vertices, attributes, triangles, camera_matrices, image_width,
              image_height, background_value, backend: str = "auto"):
    """Projects with camera_matrices [B, 4, 4] then calls rasterize_clip_space.

    Args:
      world_space_vertices: [B, V, 3] float32.
      attributes: [B, V, A] float32 per-vertex attributes.
      triangles: [T, 3] int32.
      camera_matrices: [B, 4, 4] model-view-projection matrices.
      image_width, image_height: int pixels.
      background_value: [A] value of pixels no triangle covers.
    Returns:
      [B, H, W, A] float32 interpolated attributes.
    """
    clip = camera_utils.transform_homogeneous(camera_matrices, world_space_vertices)
    return rasterize_clip_space(clip, attributes, triangles, image_width, image_height,
                                background_value, backend=backend)


def rasterize_clip_space(clip_space_vertices, attributes, triangles, image_width, image_height,
                         background_value, backend: str = "auto"):
    """Rasterizes clip-space vertices [B, V, 4] and interpolates attributes [B, V, A].

    Returns:
      [B, H, W, A] float32, perspective-correct, background blended, row 0 = NDC y = -1.
    """
    if not image_width > 0:
        raise ValueError("Image width must be > 0.")
    if not image_height > 0:
        raise ValueError("Image height must be > 0.")
    clip_space_vertices = tf.convert_to_tensor(clip_space_vertices, tf.float32)
    if clip_space_vertices.shape.rank != 3:
        raise ValueError("The vertex buffer must be 3D [batch_size, vertex_count, 4].")
    attributes = tf.convert_to_tensor(attributes, tf.float32)
    triangles = tf.convert_to_tensor(triangles, tf.int32)
    barycentrics, triangle_ids, _ = rasterizer.rasterize(
        clip_space_vertices, triangles, int(image_width), int(image_height), backend=backend)
    images = deferred.interpolate_attributes(attributes, triangles, barycentrics, triangle_ids)
    alphas = tf.clip_by_value(tf.reduce_sum(2.0 * barycentrics, axis=-1, keepdims=True), 0.0, 1.0)
    background = tf.convert_to_tensor(background_value, tf.float32)
    return alphas * images + (1.0 - alphas) * background
