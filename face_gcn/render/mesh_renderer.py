"""Drop-in for google/tf_mesh_renderer's mesh_renderer/mesh_renderer.py.

`mesh_renderer`, `phong_shader` and `tone_mapper` take Genova's arguments in Genova's order, with
his defaults, and compute what his do: code written for his module runs unchanged once its import
line names `face_gcn.render.mesh_renderer`. `mesh_renderer` returns [B, H, W, 4] RGBA with rows
FLIPPED (row 0 = top of the image). Every vertex attribute is rasterized with background -1;
alpha = 1 where any interpolated diffuse channel is >= 0, and RGB is 0 where alpha <= 0.5.
Image sizes may be Python or NumPy integers.

Specular term, chosen by the extra keyword `specular_mode`:
- "genova" (the default, his renderer's): before clipping, the r . v values of each image and
  light are divided by their L2 norm over ALL pixels of the image, which makes highlights nearly
  vanish on large images. His golden images (Colored_Cube_*) depend on it.
- "phong": textbook Phong, max(r . v, 0) ** shininess per pixel and light. Pass it explicitly
  wherever a physically meaningful highlight is wanted.

The extra keyword `backend` picks the rasterizer ("auto", "op", "fallback"); None means
face_gcn.render.rasterize_triangles.default_backend() (see use_backend there).
"""

from __future__ import annotations


import tensorflow as tf

from face_gcn.render import camera_utils, rasterize_triangles

SPECULAR_MODES = ("genova", "phong")
DEFAULT_SPECULAR_MODE = "genova"  # Genova's; face_gcn code that wants true Phong passes "phong"


def _l2_normalize(x, axis):
    return tf.math.l2_normalize(x, axis=axis)


def phong_shader(normals, alphas, pixel_positions, light_positions, light_intensities,
                 diffuse_colors=None, camera_position=None, specular_colors=None,
                 shininess_coefficients=None, ambient_color=None,
                 specular_mode=DEFAULT_SPECULAR_MODE):
    """Per-pixel Phong lighting of rasterized buffers.

    Args:
      normals: [B, H, W, 3] unit world-space normals.
      alphas: [B, H, W] coverage.
      pixel_positions: [B, H, W, 3] world-space positions.
      light_positions: [B, L, 3]; light_intensities: [B, L, 3] RGB (may exceed 1).
      diffuse_colors: [B, H, W, 3] in [0, 1].
      camera_position: [B, 3] or None (None: no specular term).
      specular_colors: [B, H, W, 3]; shininess_coefficients: broadcastable to [B, H, W].
      ambient_color: [B, 3] or None.
      specular_mode: "genova" (default) or "phong" (see the module docstring).
    Returns:
      [B, H, W, 4] RGBA, rows flipped (row 0 = top).
    """
    if specular_mode not in SPECULAR_MODES:
        raise ValueError(f"specular_mode must be one of {SPECULAR_MODES}, got {specular_mode!r}")
    shape = tf.shape(normals)
    batch, height, width = shape[0], shape[1], shape[2]
    normals = tf.reshape(normals, [batch, -1, 3])                   # [B, P, 3]
    positions = tf.reshape(pixel_positions, [batch, -1, 3])
    diffuse = tf.reshape(diffuse_colors, [batch, -1, 3])
    colors = tf.zeros_like(diffuse)
    if ambient_color is not None:
        colors += tf.convert_to_tensor(ambient_color, tf.float32)[:, tf.newaxis, :] * diffuse
    to_lights = _l2_normalize(light_positions[:, :, tf.newaxis, :]
                              - positions[:, tf.newaxis, :, :], axis=3)  # [B, L, P, 3]
    n_dot_l = tf.clip_by_value(tf.reduce_sum(normals[:, tf.newaxis] * to_lights, axis=3),
                               0.0, 1.0)                            # [B, L, P]
    colors += tf.reduce_sum(diffuse[:, tf.newaxis] * n_dot_l[..., tf.newaxis]
                            * light_intensities[:, :, tf.newaxis, :], axis=1)
    if camera_position is not None:
        specular = tf.reshape(specular_colors, [batch, -1, 3])
        mirror = _l2_normalize(2.0 * n_dot_l[..., tf.newaxis] * normals[:, tf.newaxis]
                               - to_lights, axis=3)
        to_camera = _l2_normalize(camera_position[:, tf.newaxis, :] - positions, axis=2)
        r_dot_v = tf.reduce_sum(to_camera[:, tf.newaxis] * mirror, axis=3)  # [B, L, P]
        if specular_mode == "genova":
            r_dot_v = _l2_normalize(r_dot_v, axis=2)
        r_dot_v = tf.clip_by_value(r_dot_v, 0.0, 1.0)
        r_dot_v = tf.where(n_dot_l != 0.0, r_dot_v, tf.zeros_like(r_dot_v))
        r_dot_v = tf.reshape(r_dot_v, [batch, -1, height, width])
        shininess = tf.convert_to_tensor(shininess_coefficients, tf.float32)
        power = tf.reshape(tf.pow(r_dot_v, shininess[:, tf.newaxis]), [batch, -1, height * width, 1])
        colors += tf.reduce_sum(specular[:, tf.newaxis] * power
                                * light_intensities[:, :, tf.newaxis, :], axis=1)
    rgb = tf.reshape(colors, [batch, height, width, 3])
    alpha = tf.reshape(tf.cast(alphas, tf.float32), [batch, height, width, 1])
    rgb = tf.where(alpha > 0.5, rgb, tf.zeros_like(rgb))
    return tf.reverse(tf.concat([rgb, alpha], axis=3), axis=[1])


def tone_mapper(image, gamma):
    """Gamma tone mapping: image ** gamma divided by each image's maximum, clipped to [0, 1].

    Args:
      image: [B, H, W, C] float32 non-negative; gamma: scalar.
    Returns:
      [B, H, W, C] float32 in [0, 1].
    """
    image = tf.convert_to_tensor(image, tf.float32)
    corrected = tf.pow(image, gamma)
    image_max = tf.reduce_max(corrected, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value(corrected / image_max, 0.0, 1.0)


def _per_batch(value, batch, name):
    tensor = tf.convert_to_tensor(value, tf.float32)
    if tensor.shape.rank == 0:
        return tf.fill([batch], tensor)
    if tensor.shape.rank != 1:
        raise ValueError(f"{name} must be a float, a 0-D tensor or a [batch_size] tensor")
    return tensor


def _per_batch_vector(value, batch, name):
    tensor = tf.convert_to_tensor(value, tf.float32)
    if tensor.shape.rank == 1 and tensor.shape[0] == 3:
        return tf.tile(tensor[tf.newaxis], [batch, 1])
    if tensor.shape.rank != 2 or tensor.shape[-1] != 3:
        raise ValueError(f"{name} must have shape [batch_size, 3] or [3], got {tensor.shape}")
    return tensor


def mesh_renderer(vertices, triangles, normals, diffuse_colors, camera_position, camera_lookat,
                  camera_up, light_positions, light_intensities, image_width, image_height,
                  specular_colors=None, shininess_coefficients=None, ambient_color=None,
                  fov_y=40.0, near_clip=0.01, far_clip=10.0,
                  specular_mode=DEFAULT_SPECULAR_MODE, backend=None):
    """Renders meshes with Phong shading and point lights (Genova's argument order).

    Args:
      vertices: [B, V, 3] world positions; triangles: [T, 3] int32.
      normals: [B, V, 3] unit vertex normals; diffuse_colors: [B, V, 3] in [0, 1].
      camera_position, camera_lookat, camera_up: [B, 3] or [3].
      light_positions: [B, L, 3]; light_intensities: [B, L, 3].
      image_width, image_height: ints (Python or NumPy), pixels.
      specular_colors: [B, V, 3] or None; shininess_coefficients: scalar, [B] or [B, V]
        (required together with specular_colors).
      ambient_color: [B, 3] or None.
      fov_y: degrees; near_clip, far_clip: distances (float, 0-D or [B]).
      specular_mode: "genova" (default: tf_mesh_renderer's normalised specular) or "phong".
      backend: rasterizer backend; None = rasterize_triangles.default_backend().
    Returns:
      [B, H, W, 4] float32 RGBA, rows flipped (row 0 = top); RGB unbounded above.
    """
    vertices = tf.convert_to_tensor(vertices, tf.float32)
    for name, value in (("vertices", vertices), ("normals", normals),
                        ("diffuse_colors", diffuse_colors),
                        ("light_positions", light_positions),
                        ("light_intensities", light_intensities)):
        if len(tf.convert_to_tensor(value).shape) != 3:
            raise ValueError(f"{name} must be a 3-D tensor [batch_size, count, 3]")
    if (specular_colors is None) != (shininess_coefficients is None):
        raise ValueError("specular_colors and shininess_coefficients must be given together")
    batch = tf.shape(vertices)[0]
    normals = tf.convert_to_tensor(normals, tf.float32)
    diffuse_colors = tf.convert_to_tensor(diffuse_colors, tf.float32)
    light_positions = tf.convert_to_tensor(light_positions, tf.float32)
    light_intensities = tf.convert_to_tensor(light_intensities, tf.float32)
    camera_position = _per_batch_vector(camera_position, batch, "camera_position")
    camera_lookat = _per_batch_vector(camera_lookat, batch, "camera_lookat")
    camera_up = _per_batch_vector(camera_up, batch, "camera_up")
    fov_y = _per_batch(fov_y, batch, "fov_y")
    near_clip = _per_batch(near_clip, batch, "near_clip")
    far_clip = _per_batch(far_clip, batch, "far_clip")

    pieces = [normals, vertices, diffuse_colors]
    per_vertex_shininess = False
    if specular_colors is not None:
        specular_colors = tf.convert_to_tensor(specular_colors, tf.float32)
        shininess_coefficients = tf.convert_to_tensor(shininess_coefficients, tf.float32)
        if shininess_coefficients.shape.rank > 2:
            raise ValueError("shininess_coefficients must have shape at most [batch_size, V]")
        pieces.append(specular_colors)
        if shininess_coefficients.shape.rank == 2:
            per_vertex_shininess = True
            pieces.append(shininess_coefficients[..., tf.newaxis])
    attributes = tf.concat(pieces, axis=2)

    view = camera_utils.look_at(camera_position, camera_lookat, camera_up)
    projection = camera_utils.perspective(image_width / image_height, fov_y, near_clip, far_clip)
    background = -tf.ones([tf.shape(attributes)[2]], tf.float32)
    pixels = rasterize_triangles.rasterize(vertices, attributes, triangles,
                                           tf.matmul(projection, view), image_width,
                                           image_height, background, backend=backend)
    pixel_normals = tf.math.l2_normalize(pixels[..., 0:3], axis=3)
    pixel_positions = pixels[..., 3:6]
    pixel_diffuse = pixels[..., 6:9]
    pixel_specular, shininess = None, None
    if specular_colors is not None:
        pixel_specular = pixels[..., 9:12]
        if per_vertex_shininess:
            shininess = pixels[..., 12]
        else:
            shininess = tf.reshape(shininess_coefficients, [-1, 1, 1])
    mask = tf.cast(tf.reduce_any(pixel_diffuse >= 0.0, axis=3), tf.float32)
    return phong_shader(pixel_normals, mask, pixel_positions, light_positions, light_intensities,
                        diffuse_colors=pixel_diffuse,
                        camera_position=camera_position if specular_colors is not None else None,
                        specular_colors=pixel_specular, shininess_coefficients=shininess,
                        ambient_color=ambient_color, specular_mode=specular_mode)


