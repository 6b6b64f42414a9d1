"""Drop-in for google/tf_mesh_renderer's mesh_renderer/rasterize_triangles.py.

Code written for Genova's module runs unchanged against this one once its import line names
`face_gcn.render.rasterize_triangles`: every name, argument order and default below is his.

- `rasterize_triangles_module.rasterize_triangles(vertices, triangles, image_width,
  image_height, name=None)` is his raw op: ONE mesh of clip-space vertices [V, 4] (no batch),
  returning the namedtuple (barycentric_coordinates [H, W, 3], triangle_ids [H, W] int32,
  z_buffer [H, W]). Empty pixels hold triangle id 0, barycentrics 0 and depth 1, as in his op,
  so `tf.gather(triangles, triangle_ids)` is always valid; the barycentrics tell which pixels
  are covered. `rasterize_triangles_module.rasterize_triangles_grad` is his gradient op.
- `rasterize(world_space_vertices, attributes, triangles, camera_matrices, image_width,
  image_height, background_value)` and `rasterize_clip_space(...)`: batched attribute
  interpolation, output rows NOT flipped (row 0 is NDC y = -1), alpha = clip(2 * sum of
  barycentrics, 0, 1) and the background blend alpha * attributes + (1 - alpha) * background.
- Image sizes may be Python or NumPy integers. Vertices and triangles that are not tensors are
  converted to float32 / int32 as his generated op wrappers do.

Which rasterizer runs: every function takes an extra keyword `backend` ("auto", "op",
"fallback"; see face_gcn.render.rasterizer). Left at None it is the module-wide default, "auto"
unless changed with `use_backend`, so code that cannot pass the keyword (his test suite, say)
can still choose:

    with rasterize_triangles.use_backend("fallback"):
        images = rasterize_triangles.rasterize(...)

The default is read when a function runs (for a tf.function: when it is traced).

face_gcn's own conventions are not this module's: face_gcn.render.rasterizer.rasterize is the
batched rasterizer ([B, V, 4] in, triangle id -1 where empty), and the raw op here gives the
same with `empty_triangle_id=-1`.
"""

from __future__ import annotations

import collections
import contextlib
import types

import tensorflow as tf

from face_gcn.render import camera_utils, deferred, rasterize_inputs, rasterizer

_default_backend = "auto"

RasterizeTrianglesOutput = collections.namedtuple(
    "RasterizeTriangles", ["barycentric_coordinates", "triangle_ids", "z_buffer"])


def default_backend() -> str:
    """The backend the functions of this module (and mesh_renderer) use when given None."""
    return _default_backend


@contextlib.contextmanager
def use_backend(backend: str):
    """Makes `backend` ("auto", "op" or "fallback") the default inside a `with` block."""
    global _default_backend  # pylint: disable=global-statement
    rasterizer.backend_in_use(backend)  # validates the name
    previous, _default_backend = _default_backend, backend
    try:
        yield backend
    finally:
        _default_backend = previous


def _backend(backend):
    return _default_backend if backend is None else backend


def _as_tensor(value, dtype):
    """Tensors pass as they are (a wrong dtype is reported later); other values convert."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return value
    return tf.convert_to_tensor(value, dtype)


def _check_single_mesh(vertices):
    if vertices.shape.rank is not None and (vertices.shape.rank != 2
                                            or vertices.shape[-1] not in (None, 4)):
        raise ValueError(f"RasterizeTriangles expects vertices to have shape (-1, 4), got "
                         f"{vertices.shape}")


def _rasterize_triangles(vertices, triangles, image_width, image_height, name=None, *,
                         empty_triangle_id: int = 0, backend=None):
    """Genova's RasterizeTriangles op: rasterizes one clip-space mesh.

    Args:
      vertices: [V, 4] float32 clip-space positions (x, y, z, w).
      triangles: [T, 3] int32 vertex indices.
      image_width, image_height: ints, the output size in pixels.
      name: optional name scope.
      empty_triangle_id: the id of pixels no triangle covers: 0 (his op) or -1 (face_gcn's).
      backend: rasterizer backend; None = default_backend().
    Returns:
      RasterizeTriangles namedtuple of
        barycentric_coordinates: [H, W, 3] float32 perspective-correct, 0 where empty;
          differentiable with respect to vertices (x, y, w).
        triangle_ids: [H, W] int32, empty_triangle_id where empty.
        z_buffer: [H, W] float32 NDC depth, 1 where empty.
      Row 0 is NDC y = -1.
    """
    if empty_triangle_id not in (0, -1):
        raise ValueError(f"empty_triangle_id must be 0 or -1, got {empty_triangle_id!r}")
    with tf.name_scope(name or "RasterizeTriangles"):
        vertices = _as_tensor(vertices, tf.float32)
        triangles = _as_tensor(triangles, tf.int32)
        _check_single_mesh(vertices)
        barycentrics, triangle_ids, z_buffer = rasterizer.rasterize(
            vertices[tf.newaxis], triangles,
            rasterize_inputs.check_image_size("image_width", image_width),
            rasterize_inputs.check_image_size("image_height", image_height),
            backend=_backend(backend))
        triangle_ids = triangle_ids[0]
        if empty_triangle_id == 0:
            triangle_ids = tf.maximum(triangle_ids, 0)
        return RasterizeTrianglesOutput(barycentrics[0], triangle_ids, z_buffer[0])


def _rasterize_triangles_grad(vertices, triangles, barycentric_coordinates, triangle_ids,
                              df_dbarycentric_coordinates, image_width, image_height,
                              name=None, *, backend=None):
    """Genova's RasterizeTrianglesGrad op: d loss / d vertices from d loss / d barycentrics.

    Args:
      vertices: [V, 4], triangles: [T, 3]: the forward op's inputs.
      barycentric_coordinates: [H, W, 3], triangle_ids: [H, W]: its outputs (ids 0 or -1 where
        empty; pixels whose barycentrics sum below 0.9 get no gradient with the compiled op).
      df_dbarycentric_coordinates: [H, W, 3] upstream gradient.
      image_width, image_height: ints.
      name: optional name scope; backend: as for rasterize_triangles.
    Returns:
      [V, 4] float32 d loss / d vertices (z column 0). The fallback backend recomputes the
      forward pass and differentiates it, ignoring the given barycentrics and ids.
    """
    image_width = rasterize_inputs.check_image_size("image_width", image_width)
    image_height = rasterize_inputs.check_image_size("image_height", image_height)
    with tf.name_scope(name or "RasterizeTrianglesGrad"):
        vertices = _as_tensor(vertices, tf.float32)
        triangles = _as_tensor(triangles, tf.int32)
        _check_single_mesh(vertices)
        upstream = _as_tensor(df_dbarycentric_coordinates, tf.float32)
        if rasterizer.backend_in_use(_backend(backend)) == "op":
            from face_gcn.render import rasterize_op  # pylint: disable=import-outside-toplevel
            batched = rasterize_op.rasterize_grad(
                vertices[tf.newaxis], triangles,
                _as_tensor(barycentric_coordinates, tf.float32)[tf.newaxis],
                _as_tensor(triangle_ids, tf.int32)[tf.newaxis], upstream[tf.newaxis],
                image_width, image_height)
            return batched[0]
        with tf.GradientTape() as tape:
            tape.watch(vertices)
            barycentrics, _, _ = rasterizer.rasterize(vertices[tf.newaxis], triangles,
                                                      image_width, image_height,
                                                      backend="fallback")
        gradient = tape.gradient(barycentrics, vertices, output_gradients=upstream[tf.newaxis])
        return tf.zeros_like(vertices) if gradient is None else gradient


# Genova loads his kernel library under this name; these are its two ops.
rasterize_triangles_module = types.SimpleNamespace(
    rasterize_triangles=_rasterize_triangles,
    rasterize_triangles_grad=_rasterize_triangles_grad)


def rasterize(world_space_vertices, attributes, triangles, camera_matrices, image_width,
              image_height, background_value, backend=None):
    """Projects with camera_matrices, then calls rasterize_clip_space.

    Args:
      world_space_vertices: [B, V, 3] float32 positions.
      attributes: [B, V, A] float32 per-vertex attributes.
      triangles: [T, 3] int32.
      camera_matrices: [B, 4, 4] model-view-projection matrices.
      image_width, image_height: ints, pixels.
      background_value: [A] value of pixels no triangle covers.
      backend: rasterizer backend; None = default_backend().
    Returns:
      [B, H, W, A] float32 interpolated attributes, row 0 = NDC y = -1.
    """
    clip = camera_utils.transform_homogeneous(camera_matrices, world_space_vertices)
    return rasterize_clip_space(clip, attributes, triangles, image_width, image_height,
                                background_value, backend=backend)


def rasterize_clip_space(clip_space_vertices, attributes, triangles, image_width, image_height,
                         background_value, backend=None):
    """Rasterizes clip-space vertices [B, V, 4] and interpolates attributes [B, V, A].

    Args:
      clip_space_vertices: [B, V, 4] float32 (x, y, z, w).
      attributes: [B, V, A] float32.
      triangles: [T, 3] int32.
      image_width, image_height: ints, pixels.
      background_value: [A] float32.
      backend: rasterizer backend; None = default_backend().
    Returns:
      [B, H, W, A] float32, perspective-correct, background blended, row 0 = NDC y = -1.
    """
    image_width = rasterize_inputs.check_image_size("image_width", image_width)
    image_height = rasterize_inputs.check_image_size("image_height", image_height)
    clip_space_vertices = tf.convert_to_tensor(clip_space_vertices, tf.float32)
    if clip_space_vertices.shape.rank != 3:
        raise ValueError("The vertex buffer must be 3D [batch_size, vertex_count, 4].")
    attributes = tf.convert_to_tensor(attributes, tf.float32)
    triangles = tf.convert_to_tensor(triangles, tf.int32)
    barycentrics, triangle_ids, _ = rasterizer.rasterize(
        clip_space_vertices, triangles, image_width, image_height, backend=_backend(backend))
    images = deferred.interpolate_attributes(attributes, triangles, barycentrics, triangle_ids)
    alphas = tf.clip_by_value(tf.reduce_sum(2.0 * barycentrics, axis=-1, keepdims=True), 0.0, 1.0)
    background = tf.convert_to_tensor(background_value, tf.float32)
    return alphas * images + (1.0 - alphas) * background
