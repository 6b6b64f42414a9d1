"""Drop-in for google/tf_mesh_renderer's mesh_renderer/camera_utils.py (same names, arguments).

As in his module, euler_matrices takes RADIANS (his tests pass -20, 60 and 45 as radians).

Conventions (OpenGL): eye space is right-handed with the camera looking down -z; `perspective`
maps it to clip space with NDC z in [-1, 1] between the near and far planes. Matrices act on
column vectors; points are stored as rows, so a batch of points P [B, N, 4] maps to P M^T.
"""

from __future__ import annotations

import math

import tensorflow as tf


def _batched(value, name: str, batch=None):
    tensor = tf.convert_to_tensor(value, tf.float32)
    if tensor.shape.rank == 0:
        if batch is None:
            raise ValueError(f"{name} must be a 1-D tensor [batch_size]")
        tensor = tf.fill([batch], tensor)
    if tensor.shape.rank != 1:
        raise ValueError(f"{name} must have shape [batch_size], got {tensor.shape}")
    return tensor


def perspective(aspect_ratio, fov_y, near_clip, far_clip):
    """gluPerspective matrices.

    Args:
      aspect_ratio: float, image width / height.
      fov_y: [B] vertical field of view in degrees.
      near_clip, far_clip: [B] positive distances to the clipping planes.
    Returns:
      [B, 4, 4] float32 eye-space to clip-space matrices.
    """
    fov_y = _batched(fov_y, "fov_y")
    near_clip = _batched(near_clip, "near_clip", tf.shape(fov_y)[0])
    far_clip = _batched(far_clip, "far_clip", tf.shape(fov_y)[0])
    focal_y = 1.0 / tf.tan(fov_y * (math.pi / 360.0))
    depth_range = far_clip - near_clip
    p22 = -(far_clip + near_clip) / depth_range
    p23 = -2.0 * (far_clip * near_clip / depth_range)
    zero = tf.zeros_like(p22)
    one = tf.ones_like(p22)
    rows = [[focal_y / aspect_ratio, zero, zero, zero],
            [zero, focal_y, zero, zero],
            [zero, zero, p22, p23],
            [zero, zero, -one, zero]]
    return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)


def look_at(eye, center, world_up):
    """gluLookAt view matrices.

    Args:
      eye: [B, 3] camera positions (world units).
      center: [B, 3] points the camera looks at.
      world_up: [B, 3] up directions (the camera has no tilt about them).
    Returns:
      [B, 4, 4] float32 world-to-eye matrices.
    Raises:
      tf.errors.InvalidArgumentError when eye == center or up is parallel to the gaze.
    """
    eye = tf.convert_to_tensor(eye, tf.float32)
    center = tf.convert_to_tensor(center, tf.float32)
    world_up = tf.convert_to_tensor(world_up, tf.float32)
    for name, value in (("eye", eye), ("center", center), ("world_up", world_up)):
        if value.shape.rank != 2 or value.shape[-1] != 3:
            raise ValueError(f"{name} must have shape [batch_size, 3], got {value.shape}")
    cutoff = 1e-6
    forward = center - eye
    forward_norm = tf.norm(forward, axis=1, keepdims=True)
    side = None
    with tf.control_dependencies([tf.debugging.assert_greater(
            forward_norm, cutoff, message="degenerate camera: eye and center coincide")]):
        forward = forward / forward_norm
    side = tf.linalg.cross(forward, world_up)
    side_norm = tf.norm(side, axis=1, keepdims=True)
    with tf.control_dependencies([tf.debugging.assert_greater(
            side_norm, cutoff, message="degenerate camera: up is parallel to the gaze or zero")]):
        side = side / side_norm
    up = tf.linalg.cross(side, forward)
    rotation = tf.stack([side, up, -forward], axis=1)               # [B, 3, 3]
    translation = -tf.linalg.matvec(rotation, eye)                  # [B, 3]
    top = tf.concat([rotation, translation[:, :, tf.newaxis]], axis=2)  # [B, 3, 4]
    bottom = tf.tile(tf.constant([[[0.0, 0.0, 0.0, 1.0]]]), [tf.shape(eye)[0], 1, 1])
    return tf.concat([top, bottom], axis=1)


def euler_matrices(angles):
    """XYZ Tait-Bryan rotations R = Rz(a_z) Ry(a_y) Rx(a_x) as 4x4 matrices.

    Args:
      angles: [B, 3] angles about x, y, z in RADIANS.
    Returns:
      [B, 4, 4] float32.
    """
    angles = tf.convert_to_tensor(angles, tf.float32)
    if angles.shape.rank != 2 or angles.shape[-1] != 3:
        raise ValueError(f"angles must have shape [batch_size, 3], got {angles.shape}")
    s, c = tf.sin(angles), tf.cos(angles)
    sx, sy, sz = s[:, 0], s[:, 1], s[:, 2]
    cx, cy, cz = c[:, 0], c[:, 1], c[:, 2]
    zero, one = tf.zeros_like(sx), tf.ones_like(sx)
    rows = [[cz * cy, cz * sy * sx - cx * sz, sz * sx + cz * cx * sy, zero],
            [cy * sz, cz * cx + sz * sy * sx, cx * sz * sy - cz * sx, zero],
            [-sy, cy * sx, cy * cx, zero],
            [zero, zero, zero, one]]
    return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)


def transform_homogeneous(matrices, vertices):
    """Applies 4x4 matrices to 3-D points.

    Args:
      matrices: [B, 4, 4] float32.
      vertices: [B, N, 3] float32 points.
    Returns:
      [B, N, 4] float32 homogeneous results (no divide).
    """
    matrices = tf.convert_to_tensor(matrices, tf.float32)
    vertices = tf.convert_to_tensor(vertices, tf.float32)
    if vertices.shape.rank != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape [batch_size, N, 3], got {vertices.shape}")
    if matrices.shape.rank != 3 or matrices.shape[1:] != (4, 4):
        raise ValueError(f"matrices must have shape [batch_size, 4, 4], got {matrices.shape}")
    homogeneous = tf.concat([vertices, tf.ones_like(vertices[..., :1])], axis=2)
    return tf.matmul(homogeneous, matrices, transpose_b=True)
