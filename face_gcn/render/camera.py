"""Deng et al.'s pose and pinhole camera, batched and differentiable.

World / model space: x right, y up, z towards the viewer (the face looks along +z). The camera
sits at (0, 0, camera_distance) looking at the origin with y up, so a point's depth in front
of the camera is ``camera_distance - z``.

Rotation: ``euler_rotation`` returns R = Rz(angle_z) @ Ry(angle_y) @ Rx(angle_x), acting on
COLUMN vectors (p' = R p). Deng stores vertices as rows and multiplies them by the transpose
(p'^T = p^T R^T); ``rigid_transform`` computes the same posed vertices, R p + t.

Projection (Deng's Projection_layer): u = focal x / (d - z) + cx, v = focal y / (d - z) + cy,
with v pointing UP (v = 0 at the bottom edge of the image). ``to_image_coordinates`` turns
(u, v) into continuous pixel coordinates with rows pointing down: pixel (i, j) covers
[j, j+1) x [i, i+1) and its centre is (j + 0.5, i + 0.5). Note: Deng's landmark loss
compares against 223 - v instead (an integer-centred convention half a pixel off ours);
detected landmarks given in integer-centred pixel indices are ours minus 0.5.
"""

from __future__ import annotations

import math

import tensorflow as tf

# Deng et al.'s camera (224 x 224 crops).
DENG_FOCAL = 1015.0            # pixels
DENG_CENTER = 112.0            # pixels, principal point on both axes
DENG_CAMERA_DISTANCE = 10.0    # model units, camera on the +z axis
DENG_IMAGE_SIZE = 224          # pixels
DENG_NEAR = 0.01               # model units, Deng's renderer's near clip
DENG_FAR = 50.0                # model units, Deng's renderer's far clip


def _float_tensor(value, name: str, dtype=None) -> tf.Tensor:
    tensor = tf.convert_to_tensor(value)
    if not tensor.dtype.is_floating:
        if dtype is None:
            raise ValueError(f"{name} must be floating point, got {tensor.dtype.name}")
        tensor = tf.cast(tensor, dtype)
    elif dtype is not None and tensor.dtype != dtype:
        tensor = tf.cast(tensor, dtype)
    return tensor


def _check_last(tensor: tf.Tensor, size: int, name: str, pretty: str, rank: int | None = None):
    shape = tensor.shape
    if shape.rank is None:
        return
    if shape.rank == 0 or (shape[-1] is not None and shape[-1] != size) or (
            rank is not None and shape.rank != rank):
        raise ValueError(f"{name} must have shape {pretty}, got {shape}")


def field_of_view_y(focal: float = DENG_FOCAL, image_height: int = DENG_IMAGE_SIZE) -> float:
    """Vertical field of view in radians: 2 atan((H / 2) / focal) (Deng: 12.59 degrees)."""
    return 2.0 * math.atan(0.5 * image_height / focal)


def euler_rotation(angles) -> tf.Tensor:
    """Rotation matrices R = Rz Ry Rx from x, y, z Euler angles, for column vectors.

    Args:
      angles: [..., 3] radians (rotation about x, then y, then z, all about fixed axes).
    Returns:
      [..., 3, 3] rotation matrices, p' = R p.
    """
    angles = _float_tensor(angles, "angles")
    _check_last(angles, 3, "angles", "[..., 3]")
    sx, sy, sz = tf.unstack(tf.sin(angles), axis=-1)
    cx, cy, cz = tf.unstack(tf.cos(angles), axis=-1)
    rows = [
        [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
        [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
        [-sy, cy * sx, cy * cx],
    ]
    return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)


def rotate(points, rotation) -> tf.Tensor:
    """Applies per-batch rotations to points or normals.

    Args:
      points: [B, N, 3].
      rotation: [B, 3, 3] matrices acting on column vectors.
    Returns:
      [B, N, 3] = (R p) for every point (Deng: points @ R^T).
    """
    points = _float_tensor(points, "points")
    rotation = _float_tensor(rotation, "rotation", points.dtype)
    _check_last(points, 3, "points", "[B, N, 3]", rank=3)
    _check_last(rotation, 3, "rotation", "[B, 3, 3]", rank=3)
    return tf.matmul(points, rotation, transpose_b=True)


def rigid_transform(vertices, angles, translation) -> tf.Tensor:
    """Poses faces: R(angles) v + t, exactly Deng's Rigid_transform.

    Args:
      vertices: [B, V, 3] model units (canonical, recentred shape).
      angles: [B, 3] x, y, z Euler angles in radians.
      translation: [B, 3] model units.
    Returns:
      [B, V, 3] posed vertices in world units.
    """
    vertices = _float_tensor(vertices, "vertices")
    angles = _float_tensor(angles, "angles", vertices.dtype)
    translation = _float_tensor(translation, "translation", vertices.dtype)
    _check_last(vertices, 3, "vertices", "[B, V, 3]", rank=3)
    _check_last(angles, 3, "angles", "[B, 3]", rank=2)
    _check_last(translation, 3, "translation", "[B, 3]", rank=2)
    return rotate(vertices, euler_rotation(angles)) + translation[:, tf.newaxis, :]


def camera_depth(posed, camera_distance: float = DENG_CAMERA_DISTANCE) -> tf.Tensor:
    """Distance in front of the camera along its axis, camera_distance - z. [..., 3] -> [...]."""
    posed = _float_tensor(posed, "posed")
    _check_last(posed, 3, "posed", "[..., 3]")
    return camera_distance - posed[..., 2]


def perspective_project(posed, focal: float = DENG_FOCAL, center=DENG_CENTER,
                        camera_distance: float = DENG_CAMERA_DISTANCE) -> tf.Tensor:
    """Deng's pinhole projection to (u, v) pixels with v pointing up.

    Args:
      posed: [..., V, 3] world units, in front of the camera (z < camera_distance).
      focal: pixels.
      center: principal point in pixels, a scalar (both axes) or (cx, cy).
      camera_distance: camera position on the +z axis, world units.
    Returns:
      [..., V, 2] (u, v): u = focal x / (d - z) + cx, v = focal y / (d - z) + cy.
    """
    posed = _float_tensor(posed, "posed")
    _check_last(posed, 3, "posed", "[..., V, 3]")
    center = _float_tensor(center, "center", posed.dtype)
    depth = camera_depth(posed, camera_distance)[..., tf.newaxis]
    return focal * posed[..., :2] / depth + center


def to_image_coordinates(uv, image_height: int = DENG_IMAGE_SIZE) -> tf.Tensor:
    """(u, v-up) -> continuous (x, y-down) pixel coordinates: (u, H - v).

    Args:
      uv: [..., 2] from perspective_project.
      image_height: H in pixels.
    Returns:
      [..., 2] (column, row) coordinates; pixel (row i, column j) covers [j, j+1) x [i, i+1).
    """
    uv = _float_tensor(uv, "uv")
    _check_last(uv, 2, "uv", "[..., 2]")
    u, v = tf.unstack(uv, axis=-1)
    return tf.stack([u, image_height - v], axis=-1)


def to_pixel_indices(xy) -> tf.Tensor:
    """Continuous image coordinates -> pixel-index coordinates (OpenCV's, MTCNN's, dlib's).

    In pixel-index coordinates the centre of pixel (row i, column j) is (j, i); ours put it at
    (j + 0.5, i + 0.5). Files and detectors use pixel indices (the TFRecords, the JSON outputs).

    Args:
      xy: [..., 2] from to_image_coordinates.
    Returns:
      [..., 2] xy - 0.5.
    """
    xy = _float_tensor(xy, "xy")
    _check_last(xy, 2, "xy", "[..., 2]")
    return xy - 0.5


def project_landmarks(posed, landmark_indices, focal: float = DENG_FOCAL, center=DENG_CENTER,
                      camera_distance: float = DENG_CAMERA_DISTANCE,
                      image_height: int | None = None) -> tf.Tensor:
    """Projects selected vertices (e.g. the 68 landmarks).

    Args:
      posed: [B, V, 3] world units.
      landmark_indices: [L] int vertex indices.
      image_height: None returns Deng's (u, v-up); an int returns to_image_coordinates.
    Returns:
      [B, L, 2] pixels.
    """
    posed = _float_tensor(posed, "posed")
    _check_last(posed, 3, "posed", "[B, V, 3]", rank=3)
    indices = tf.convert_to_tensor(landmark_indices)
    if not indices.dtype.is_integer or indices.shape.rank not in (None, 1):
        raise ValueError(f"landmark_indices must be a 1-D integer array, got "
                         f"{indices.dtype.name} {indices.shape}")
    num_vertices = posed.shape[1]
    if num_vertices is not None and tf.executing_eagerly() and indices.shape[0]:
        low, high = int(tf.reduce_min(indices)), int(tf.reduce_max(indices))
        if low < 0 or high >= num_vertices:
            raise ValueError(f"landmark_indices must lie in [0, {num_vertices}), "
                             f"got [{low}, {high}]")
    uv = perspective_project(tf.gather(posed, indices, axis=1), focal, center, camera_distance)
    return uv if image_height is None else to_image_coordinates(uv, image_height)


def deng_clip_space(posed, focal: float = DENG_FOCAL, center=DENG_CENTER,
                    image_width: int = DENG_IMAGE_SIZE, image_height: int = DENG_IMAGE_SIZE,
                    camera_distance: float = DENG_CAMERA_DISTANCE, near: float = DENG_NEAR,
                    far: float = DENG_FAR) -> tf.Tensor:
    """Homogeneous clip coordinates of Deng's camera, for the rasterizer (OpenGL convention).

    After the divide by w: NDC x = (u - W/2) / (W/2), NDC y = (v - H/2) / (H/2) with (u, v)
    from perspective_project (v up), and NDC z runs from -1 at depth ``near`` to +1 at depth
    ``far``. w is the depth camera_distance - z, positive in front of the camera.

    Args:
      posed: [B, V, 3] world units.
      focal, center, camera_distance: as perspective_project.
      image_width, image_height: W, H in pixels.
      near, far: clip depths in world units, 0 < near < far (Deng's renderer: 0.01, 50).
    Returns:
      [B, V, 4] (x, y, z, w) clip coordinates.
    """
    if not 0.0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    if image_width <= 0 or image_height <= 0:
        raise ValueError(f"image size must be positive, got {image_width}x{image_height}")
    posed = _float_tensor(posed, "posed")
    _check_last(posed, 3, "posed", "[B, V, 3]", rank=3)
    center = _float_tensor(center, "center", posed.dtype) * tf.ones([2], posed.dtype)
    half_w, half_h = 0.5 * image_width, 0.5 * image_height
    x, y, _ = tf.unstack(posed, axis=-1)
    depth = camera_depth(posed, camera_distance)
    clip_x = (focal * x + (center[0] - half_w) * depth) / half_w
    clip_y = (focal * y + (center[1] - half_h) * depth) / half_h
    clip_z = ((far + near) * depth - 2.0 * far * near) / (far - near)
    return tf.stack([clip_x, clip_y, clip_z, depth], axis=-1)


def photo_window_clip_space(posed, crop_size: int, photo_to_crop, window, focal: float | None = None,
                            camera_distance: float = DENG_CAMERA_DISTANCE, near: float = DENG_NEAR,
                            far: float = DENG_FAR) -> tf.Tensor:
    """Clip coordinates that render a crop's camera into a window of the original photo, at the photo's
    own resolution (the crop's view, carried back through the inverse of its alignment).

    The crop is Deng's camera at crop_size (focal = DENG_FOCAL x crop_size / 224 unless given, principal
    point at the centre); ``photo_to_crop`` maps photo pixel indices to crop pixel indices (the
    alignment of face_gcn.data.alignment, pixel centre at (j, i) on both sides). Every step after the
    perspective divide is affine, so it is applied to the homogeneous coordinates and the divide stays
    the rasterizer's.

    Args:
      posed: [B, V, 3] world units.
      crop_size: S, pixels.
      photo_to_crop: [2, 3] affine, invertible.
      window: (x0, y0, width, height) photo pixels: the window's pixel (0, 0) is photo pixel (y0, x0).
    Returns:
      [B, V, 4] clip coordinates for a render of width x height.
    """
    if not 0.0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    x0, y0, width, height = (int(v) for v in window)
    if width <= 0 or height <= 0 or crop_size <= 0:
        raise ValueError(f"window and crop sizes must be positive, got {window}, {crop_size}")
    posed = _float_tensor(posed, "posed")
    _check_last(posed, 3, "posed", "[B, V, 3]", rank=3)
    affine = tf.convert_to_tensor(photo_to_crop, tf.float64)
    if affine.shape != (2, 3):
        raise ValueError(f"photo_to_crop must be [2, 3], got {affine.shape}")
    # crop index -> photo index: the inverse affine, then the window's offset, in float64
    linear = tf.linalg.inv(affine[:, :2])
    offset = -tf.linalg.matvec(linear, affine[:, 2]) - tf.constant([x0, y0], tf.float64)
    linear, offset = tf.cast(linear, posed.dtype), tf.cast(offset, posed.dtype)
    focal = DENG_FOCAL * crop_size / DENG_IMAGE_SIZE if focal is None else focal
    center = 0.5 * crop_size
    x, y, _ = tf.unstack(posed, axis=-1)
    depth = camera_depth(posed, camera_distance)
    # homogeneous crop pixel indices (column, row): u = focal x / d + c, row = S - (focal y / d + c), minus 0.5
    column = focal * x + (center - 0.5) * depth
    row = (crop_size - center - 0.5) * depth - focal * y
    photo_column = linear[0, 0] * column + linear[0, 1] * row + offset[0] * depth
    photo_row = linear[1, 0] * column + linear[1, 1] * row + offset[1] * depth
    clip_x = 2.0 * (photo_column + 0.5 * depth) / width - depth
    clip_y = depth - 2.0 * (photo_row + 0.5 * depth) / height
    clip_z = ((far + near) * depth - 2.0 * far * near) / (far - near)
    return tf.stack([clip_x, clip_y, clip_z, depth], axis=-1)
