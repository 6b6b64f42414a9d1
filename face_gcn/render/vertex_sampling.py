"""T_p: per-vertex colours sampled from the photo, with visibility (Lin et al. Sec. 3.3).

Each vertex is projected with Deng's camera, the photo is sampled bilinearly there, and the
vertex counts as visible when all of these hold:
  - it projects inside the image;
  - it faces the camera: n . (camera - p) > 0;
  - it is not occluded: at its pixel the rasterizer's surface is one of the vertex's own
    triangles, or no triangle, or lies within ``depth_tolerance`` (NDC z) of the vertex's
    own depth (the authors used no z-buffer at all);
  - optionally, the face mask at its pixel is > 0.5.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from face_gcn.render import camera, rasterizer

# Default occlusion tolerance in pixel footprints (world size of one pixel at the vertex's depth,
# depth / focal): at grazing angles the surface seen at the vertex's pixel centre can lie several
# footprints in front of the vertex. 5 agreed best with an exact ray cast on the demo face.
DEPTH_TOLERANCE_PIXELS = 5.0


class VertexSamples(NamedTuple):
    colors: tf.Tensor       # [B, V, C] bilinearly sampled image values (0 outside the image)
    visibility: tf.Tensor   # [B, V] float32 in {0, 1}
    pixels: tf.Tensor       # [B, V, 2] (column, row) continuous pixel coordinates, rows down


def _flat_pixel_index(rows, columns, height, width) -> tf.Tensor:
    """Index into the [B * H * W] flattening of [B, H, W] images of pixels (rows, columns), each [B, N]
    int32 (or a scalar column); height, width: ints or int32 scalars. Returns [B, N] int32."""
    image = tf.range(tf.shape(rows)[0])[:, tf.newaxis]
    return (image * height + rows) * width + columns


def bilinear_sample(images, points) -> tf.Tensor:
    """Samples images at continuous pixel coordinates (pixel (i, j) has its centre at j+0.5, i+0.5).

    Args:
      images: [B, H, W, C] float.
      points: [B, N, 2] (column, row) coordinates, rows pointing down.
    Returns:
      [B, N, C]; coordinates are clamped to the centres of the border pixels.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    points = tf.convert_to_tensor(points, tf.float32)
    if images.shape.rank != 4 or points.shape.rank != 3 or points.shape[-1] != 2:
        raise ValueError(f"need images [B, H, W, C] and points [B, N, 2], got {images.shape}, {points.shape}")
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    x = tf.clip_by_value(points[..., 0] - 0.5, 0.0, tf.cast(width - 1, tf.float32))
    y = tf.clip_by_value(points[..., 1] - 0.5, 0.0, tf.cast(height - 1, tf.float32))
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = (x - x0)[..., tf.newaxis], (y - y0)[..., tf.newaxis]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, width - 1), tf.minimum(y0 + 1, height - 1)
    pixels = tf.reshape(images, tf.stack([-1, shape[3]]))               # [B * H * W, C]
    rows0, rows1 = _flat_pixel_index(y0, 0, height, width), _flat_pixel_index(y1, 0, height, width)

    top = tf.gather(pixels, rows0 + x0) * (1.0 - fx) + tf.gather(pixels, rows0 + x1) * fx
    bottom = tf.gather(pixels, rows1 + x0) * (1.0 - fx) + tf.gather(pixels, rows1 + x1) * fx
    return top * (1.0 - fy) + bottom * fy


def _ndc_to_depth(ndc_z, near: float = camera.DENG_NEAR, far: float = camera.DENG_FAR) -> tf.Tensor:
    """Inverts deng_clip_space's depth mapping: NDC z [...] -> camera depth [...] (world units)."""
    return 2.0 * far * near / ((far + near) - ndc_z * (far - near))


def sample_vertex_colors(images, posed, normals, triangles, face_mask=None,
                         focal: float = camera.DENG_FOCAL, center=None,
                         depth_tolerance: float | None = None,
                         backend: str = "auto", fragments=None) -> VertexSamples:
    """T_p and its visibility for a batch of posed meshes over their photos.

    Args:
      images: [B, H, W, C] photos, row 0 = top (any value range).
      posed: [B, V, 3] world-space vertices (after pose), Deng camera at z = 10.
      normals: [B, V, 3] vertex normals in world space (any length).
      triangles: [T, 3] int32.
      face_mask: None or [B, H, W] in [0, 1].
      focal: pixels; center: principal point in pixels (default: image centre).
      depth_tolerance: world-unit depth tolerance of the occlusion test; None:
        DEPTH_TOLERANCE_PIXELS pixel footprints (depth / focal) per vertex.
      backend: rasterizer backend.
      fragments: the deferred.Fragments of these posed meshes at the images' size through the same
        camera (e.g. FaceRender.fragments), whose z-buffer is reused; None: rasterized here.
    Returns:
      VertexSamples; colours are not multiplied by the visibility.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    posed = tf.convert_to_tensor(posed, tf.float32)
    normals = tf.convert_to_tensor(normals, tf.float32)
    if images.shape.rank != 4:
        raise ValueError(f"images must be [B, H, W, C], got {images.shape}")
    if posed.shape.rank != 3 or posed.shape[-1] != 3 or normals.shape != posed.shape:
        raise ValueError(f"posed and normals must be equal [B, V, 3], got {posed.shape}, {normals.shape}")
    height, width = int(images.shape[1]), int(images.shape[2])
    if center is None:
        center = (0.5 * width, 0.5 * height)
    triangles = tf.convert_to_tensor(triangles, tf.int32)
    if triangles.shape.rank != 2 or triangles.shape[-1] != 3:
        raise ValueError(f"triangles must be [T, 3], got {triangles.shape}")

    pixels = camera.to_image_coordinates(camera.perspective_project(posed, focal, center), height)
    colors = bilinear_sample(images, pixels)

    inside = ((pixels[..., 0] >= 0.0) & (pixels[..., 0] < width)
              & (pixels[..., 1] >= 0.0) & (pixels[..., 1] < height))
    to_camera = tf.constant([0.0, 0.0, camera.DENG_CAMERA_DISTANCE]) - posed
    front_facing = tf.reduce_sum(normals * to_camera, axis=-1) > 0.0

    if fragments is None:
        clip = camera.deng_clip_space(posed, focal, center, width, height)
        _, triangle_ids, z_buffer = rasterizer.rasterize(clip, triangles, width, height, backend=backend)
    else:
        if tuple(fragments.triangle_ids.shape[1:3]) != (height, width):
            raise ValueError(f"fragments are {fragments.triangle_ids.shape[1:3]}, the images {(height, width)}")
        triangle_ids, z_buffer = fragments.triangle_ids, fragments.z_buffer
    column = tf.clip_by_value(tf.cast(tf.floor(pixels[..., 0]), tf.int32), 0, width - 1)
    row_down = tf.clip_by_value(tf.cast(tf.floor(pixels[..., 1]), tf.int32), 0, height - 1)
    row_up = height - 1 - row_down  # the rasterizer's row 0 is the bottom (NDC y = -1)
    at_surface = _flat_pixel_index(row_up, column, height, width)              # [B, V]
    surface_ids = tf.gather(tf.reshape(triangle_ids, [-1]), at_surface)       # [B, V]
    surface_z = tf.gather(tf.reshape(z_buffer, [-1]), at_surface)             # [B, V]
    # The surface is one of the vertex's own triangles when the vertex is one of its corners.
    surface_corners = tf.gather(triangles, tf.maximum(surface_ids, 0))        # [B, V, 3]
    vertex = tf.range(tf.shape(posed)[1])[tf.newaxis, :, tf.newaxis]
    own = tf.reduce_any(tf.equal(surface_corners, vertex), axis=-1)
    depth = camera.camera_depth(posed)  # clip w
    tolerance = DEPTH_TOLERANCE_PIXELS * depth / focal if depth_tolerance is None else depth_tolerance
    unoccluded = own | (surface_ids < 0) | (depth <= _ndc_to_depth(surface_z) + tolerance)

    visible = inside & front_facing & unoccluded
    if face_mask is not None:
        face_mask = tf.convert_to_tensor(face_mask, tf.float32)
        if face_mask.shape != images.shape[:3]:
            raise ValueError(f"face_mask must be [B, H, W] = {images.shape[:3]}, got {face_mask.shape}")
        mask_at = tf.gather(tf.reshape(face_mask, [-1]), _flat_pixel_index(row_down, column, height, width))
        visible &= mask_at > 0.5
    return VertexSamples(colors=colors, visibility=tf.cast(visible, tf.float32), pixels=pixels)

