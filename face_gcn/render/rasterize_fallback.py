"""Pure-TensorFlow triangle rasterizer with the compiled op's contract (used when no op loads).

Same rules as face_gcn.render.rasterize_op (Genova's tf_mesh_renderer behaviour): Olano-Greer
homogeneous rasterization of clip-space triangles, no backface culling, a pixel is inside when all
three sign-corrected edge functions are >= 0 and one is > 0, triangles whose three w are all < 0
are skipped, pixel centres at (i + 0.5) with row 0 at NDC y = -1 (no flip), depth test on NDC z
with near/far clipping to [-1, 1]; among equal depths the higher triangle index wins (Genova's
sequential loop keeps a fragment whose depth is <= the stored one). Empty pixels: id -1,
barycentrics 0, depth 1. The float32 arithmetic follows the op's order, so ids agree exactly.

How: every (triangle, image) pair owns the pixels whose centres its bounding box holds (the whole
image for a triangle crossing w = 0). The arithmetic runs on one [T, B] tensor per quantity (each
vertex coordinate a [V, B] plane, gathered by rows), so every op is a contiguous elementwise pass.
  - Pairs whose box holds exactly one pixel centre (nearly all of a face mesh's triangles at
    224 px: they are smaller than a pixel) are shaded where they lie, all at once.
  - The other pairs (bigger triangles, and those crossing w = 0) enumerate their candidate pixels
    in chunks of FRAGMENT_CHUNK inside a tf.while_loop, so memory stays bounded for big triangles
    and batches.
Each set of fragments finds the depth winner of each pixel with unsorted_segment_min, ties broken
with unsorted_segment_max over triangle ids; the sets merge into the running depth/id buffers with
the same rule. Barycentrics of the winners are then recomputed from the vertices with plain TF ops,
so autodiff gives d barycentrics / d clip (x, y, w); ids and depths carry no gradient, empty pixels
get none.
"""

from __future__ import annotations

import tensorflow as tf

from face_gcn.render import rasterize_inputs

MAX_TOTAL_PIXELS = 1 << 28
# Candidate fragments of the multi-pixel pairs resolved per step; bounds memory for big triangles.
FRAGMENT_CHUNK = 1 << 22
# Pixels of slack around a triangle's projected span when choosing candidate pixel centres; the
# float32 projection is off by ~1e-5 px at 224 px, so this is ample and costs almost nothing.
BOX_MARGIN = 1.0 / 64.0


def _edge_matrix(x, y, w):
    """Sign-corrected adjugate of M = [x; y; w] (columns = corners), in the op's order.

    Args:
      x, y, w: 3-tuples (one per corner) of equal-shape float32 tensors: clip x, y and w.
    Returns:
      9 tensors of that shape; entries 3i..3i+2 are edge function i's coefficients of
      (px, py, 1).
    """
    a11, a12, a13 = x
    a21, a22, a23 = y
    a31, a32, a33 = w
    m = [a22 * a33 - a32 * a23,
         a13 * a32 - a33 * a12,
         a12 * a23 - a22 * a13,
         a23 * a31 - a33 * a21,
         a11 * a33 - a31 * a13,
         a13 * a21 - a23 * a11,
         a21 * a32 - a31 * a22,
         a12 * a31 - a32 * a11,
         a11 * a22 - a21 * a12]
    det = a11 * m[0] + a12 * m[3] + a13 * m[6]
    sign = tf.stop_gradient(tf.where(det < 0.0, -1.0, 1.0))
    return [sign * v for v in m]


def _edge_values(m, px, py):
    """The three edge values at NDC (px, py), from _edge_matrix's 9 coefficients."""
    return (m[0] * px + m[1] * py + m[2],
            m[3] * px + m[4] * py + m[5],
            m[6] * px + m[7] * py + m[8])


def _barycentrics(e):
    """Perspective-correct barycentrics (3 tensors) from the edge values."""
    one_over_w = e[0] + e[1] + e[2]
    return tuple(value / one_over_w for value in e)


def _shade(e, z, w):
    """Inside test and NDC depth of fragments.

    Args:
      e: 3 edge values; z, w: 3-tuples of the corners' clip z and w (same shapes).
    Returns:
      (kept, depth): kept is true where the pixel centre is inside and the depth lies in [-1, 1].
    """
    b = _barycentrics(e)
    clip_z = b[0] * z[0] + b[1] * z[1] + b[2] * z[2]
    clip_w = b[0] * w[0] + b[1] * w[1] + b[2] * w[2]
    depth = clip_z / clip_w
    inside = (e[0] >= 0.0) & (e[1] >= 0.0) & (e[2] >= 0.0) & ((e[0] > 0.0) | (e[1] > 0.0) | (e[2] > 0.0))
    return inside & (depth >= -1.0) & (depth <= 1.0), depth


def _pixel_centres(size: int):
    """[size + 1] float32 NDC centres of pixels 0..size along an axis (computed in double, as the op)."""
    index = tf.range(size + 1, dtype=tf.float64)
    return tf.cast((index + 0.5) / (0.5 * size) - 1.0, tf.float32)


def _pixel_range(p0, p1, p2, size: int):
    """Pixel range [lo, hi) along one axis, as float32 integers in [0, size]: the pixels whose
    centre i + 0.5 lies within BOX_MARGIN of the span of the corners' projections p0, p1, p2
    (pixel units, finite or infinite).

    Only centres can be inside, so this range holds every pixel the inside test can accept (the
    margin covers the rounding of the projection) and, for the sub-pixel triangles of a face
    mesh, about a third of the candidates of the span's floor-to-ceil range.
    """
    lim = float(size)
    low = tf.minimum(tf.minimum(p0, p1), p2)
    high = tf.maximum(tf.maximum(p0, p1), p2)
    lo = tf.math.ceil(tf.clip_by_value(low - (0.5 + BOX_MARGIN), 0.0, lim))
    hi = tf.minimum(tf.math.floor(tf.clip_by_value(high - (0.5 - BOX_MARGIN), -1.0, lim)) + 1.0, lim)
    return lo, hi


def _validate(clip_vertices, triangles):
    """Adds the value checks (ranks, index ranges, finiteness) that need the data."""
    vertex_count = tf.shape(clip_vertices)[1]
    checks = [
        tf.debugging.assert_rank(clip_vertices, 3, message="clip_vertices must be [B, V, 4]"),
        tf.debugging.assert_rank(triangles, 2, message="triangles must be [T, 3]"),
        tf.debugging.assert_equal(tf.shape(clip_vertices)[-1], 4,
                                  message="clip_vertices must be [B, V, 4]"),
        tf.debugging.assert_equal(tf.shape(triangles)[-1], 3, message="triangles must be [T, 3]"),
        tf.debugging.assert_non_negative(triangles, message="triangle vertex index < 0"),
        tf.debugging.assert_less(triangles, tf.maximum(vertex_count, 0),
                                 message="triangle vertex index >= vertex count"),
        tf.debugging.assert_all_finite(clip_vertices, "clip_vertices holds NaN or Inf"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(clip_vertices), tf.identity(triangles)


def _resolve(kept, depth, pixel, triangle, segments):
    """Depth winners of one set of fragments (any shape, flattened).

    Args:
      kept: bool, fragments that passed the inside and clipping tests; depth: float32 NDC z;
      pixel: int32 flat pixel index (image * H * W + row * W + column); triangle: int32 ids.
      segments: number of pixels in the batch.
    Returns:
      (depth [segments] float32, 2 where empty; ids [segments] int32, -1 where empty).
    """
    key = tf.reshape(tf.where(kept, pixel, -1), [-1])     # negative keys are dropped
    depth = tf.reshape(depth, [-1])
    nearest = tf.math.unsorted_segment_min(depth, key, segments)
    kept_best = tf.reshape(kept, [-1]) & tf.equal(depth, tf.gather(nearest, tf.maximum(key, 0)))
    best = tf.math.unsorted_segment_max(tf.reshape(triangle, [-1]), tf.where(kept_best, key, -1), segments)
    best = tf.maximum(best, -1)                            # empty segments -> -1
    return tf.where(best >= 0, nearest, 2.0), best


def _merge(z_buffer, ids, z_new, ids_new):
    """Merges two depth/id buffers: the nearer wins, equal depths go to the higher triangle index."""
    z_min = tf.minimum(z_buffer, z_new)
    return z_min, tf.maximum(tf.where(z_buffer == z_min, ids, -1), tf.where(z_new == z_min, ids_new, -1))


def rasterize(clip_vertices, triangles, image_width: int, image_height: int):
    """Rasterizes B meshes sharing one triangle list (pure TF).

    Args:
      clip_vertices: [B, V, 4] float32 homogeneous clip coordinates (x, y, z, w).
      triangles: [T, 3] int32 vertex indices in [0, V).
      image_width, image_height: W, H in pixels, each in [1, 8192].
    Returns:
      barycentrics: [B, H, W, 3] float32 perspective-correct (0 where empty), differentiable
        with respect to clip_vertices (x, y, w).
      triangle_ids: [B, H, W] int32, -1 where empty.
      z_buffer: [B, H, W] float32 NDC depth, 1 where empty.
    Raises:
      TypeError/ValueError for static problems; tf.errors.InvalidArgumentError for indices
      outside [0, V) and non-finite vertices.
    """
    clip_vertices, triangles, width, height = rasterize_inputs.check_static_inputs(
        clip_vertices, triangles, image_width, image_height)
    if width * height > MAX_TOTAL_PIXELS:
        raise ValueError(f"image of {width}x{height} pixels exceeds {MAX_TOTAL_PIXELS} pixels")
    clip_vertices, triangles = _validate(clip_vertices, triangles)
    pixel_count = width * height
    batch = tf.shape(clip_vertices)[0]
    vertex_count = tf.shape(clip_vertices)[1]
    tri_count = tf.shape(triangles)[0]
    segments = batch * pixel_count
    centres_x, centres_y = _pixel_centres(width), _pixel_centres(height)
    corner_ids = tf.unstack(triangles, num=3, axis=1)               # 3 x [T]

    # Selection (no gradient), on [T, B] tensors: which triangle wins each pixel.
    x, y, z, w = tf.unstack(tf.transpose(tf.stop_gradient(clip_vertices), [2, 1, 0]), num=4)  # [V, B]
    front = w > 0.0
    project_x = tf.where(front, (x / w + 1.0) * (0.5 * width), 0.0)   # any finite value behind
    project_y = tf.where(front, (y / w + 1.0) * (0.5 * height), 0.0)
    corner = lambda plane: tuple(tf.gather(plane, ids) for ids in corner_ids)  # noqa: E731
    cx, cy, cz, cw = corner(x), corner(y), corner(z), corner(w)      # 3 x [T, B] each
    all_front = tf.minimum(tf.minimum(cw[0], cw[1]), cw[2]) > 0.0
    all_behind = tf.maximum(tf.maximum(cw[0], cw[1]), cw[2]) < 0.0
    left, right = _pixel_range(*corner(project_x), width)
    bottom, top = _pixel_range(*corner(project_y), height)
    single = all_front & tf.equal(right - left, 1.0) & tf.equal(top - bottom, 1.0)

    # Pairs with one candidate pixel: shaded where they lie.
    column, row = tf.cast(left, tf.int32), tf.cast(bottom, tf.int32)
    m = _edge_matrix(cx, cy, cw)                                     # 9 x [T, B]
    kept, depth = _shade(_edge_values(m, tf.gather(centres_x, column), tf.gather(centres_y, row)), cz, cw)
    image_offset = tf.range(batch)[tf.newaxis] * pixel_count          # [1, B]
    pair_triangle = tf.broadcast_to(tf.range(tri_count)[:, tf.newaxis], tf.shape(kept))
    z_single, ids_single = _resolve(single & kept, depth, image_offset + row * width + column,
                                    pair_triangle, segments)

    # The other pairs: each candidate pixel of their boxes, chunk by chunk.
    nonempty = (right > left) & (top > bottom)
    flat = lambda t: tf.reshape(t, [-1])  # noqa: E731 - [T, B] -> [T * B], pair p = t * B + b
    multi = tf.cast(tf.where(flat(~single & ~all_behind & (~all_front | nonempty)))[:, 0], tf.int32)
    multi_front = tf.gather(flat(all_front), multi)
    multi_left = tf.where(multi_front, tf.cast(tf.gather(flat(left), multi), tf.int32), 0)
    multi_bottom = tf.where(multi_front, tf.cast(tf.gather(flat(bottom), multi), tf.int32), 0)
    box_w = tf.where(multi_front, tf.cast(tf.gather(flat(right), multi), tf.int32) - multi_left, width)
    box_h = tf.where(multi_front, tf.cast(tf.gather(flat(top), multi), tf.int32) - multi_bottom, height)
    counts = tf.cast(box_w, tf.int64) * tf.cast(box_h, tf.int64)
    ends = tf.cumsum(counts)
    starts = ends - counts
    total = tf.reduce_sum(counts)
    safe_batch = tf.maximum(batch, 1)

    def merge_chunk(begin, z_buffer, ids):
        index = tf.range(begin, tf.minimum(begin + FRAGMENT_CHUNK, total))
        owner = tf.searchsorted(ends, index, side="right", out_type=tf.int32)
        local = tf.cast(index - tf.gather(starts, owner), tf.int32)
        owner_w = tf.gather(box_w, owner)
        ix = tf.gather(multi_left, owner) + local % owner_w
        iy = tf.gather(multi_bottom, owner) + local // owner_w
        pair = tf.gather(multi, owner)
        at = lambda planes: tuple(tf.gather(flat(p), pair) for p in planes)  # noqa: E731
        e = _edge_values(at(m), tf.gather(centres_x, ix), tf.gather(centres_y, iy))
        kept_chunk, depth_chunk = _shade(e, at(cz), at(cw))
        image = pair % safe_batch
        z_chunk, ids_chunk = _resolve(kept_chunk, depth_chunk, image * pixel_count + iy * width + ix,
                                      pair // safe_batch, segments)
        return (begin + FRAGMENT_CHUNK,) + _merge(z_buffer, ids, z_chunk, ids_chunk)

    _, z_flat, ids_flat = tf.while_loop(
        lambda begin, *_: begin < total, merge_chunk, (tf.constant(0, tf.int64), z_single, ids_single),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]), tf.TensorShape([None])))
    covered = ids_flat >= 0
    z_flat = tf.where(covered, z_flat, 1.0)

    # Barycentrics of the winners, recomputed differentiably from [B * V] coordinate planes.
    pixels = tf.cast(tf.where(covered)[:, 0], tf.int32)
    win_ids = tf.gather(ids_flat, pixels)
    win_pixel = pixels % pixel_count
    vertex_base = (pixels // pixel_count) * vertex_count
    planes = tf.unstack(tf.reshape(tf.transpose(clip_vertices, [2, 0, 1]), [4, -1]), num=4)
    win_vertices = [vertex_base + tf.gather(ids, win_ids) for ids in corner_ids]
    win = lambda plane: tuple(tf.gather(plane, ids) for ids in win_vertices)  # noqa: E731
    wb = _barycentrics(_edge_values(_edge_matrix(win(planes[0]), win(planes[1]), win(planes[3])),
                                    tf.gather(centres_x, win_pixel % width),
                                    tf.gather(centres_y, win_pixel // width)))
    # Each pixel gathers its winner's row (a gather: scatter_nd took twice as long); empty pixels read
    # the zero row appended at index P.
    rows = tf.concat([tf.stack(wb, axis=1), tf.zeros([1, 3])], axis=0)           # [P + 1, 3]
    slot = tf.where(covered, tf.cumsum(tf.cast(covered, tf.int32)) - 1, tf.shape(pixels)[0])
    bary_flat = tf.gather(rows, slot)

    out_shape = tf.stack([batch, height, width])
    barycentrics = tf.reshape(bary_flat, tf.concat([out_shape, [3]], 0))
    triangle_ids = tf.reshape(ids_flat, out_shape)
    z_buffer = tf.reshape(z_flat, out_shape)
    return barycentrics, triangle_ids, z_buffer
