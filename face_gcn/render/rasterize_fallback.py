"""Pure-TensorFlow triangle rasterizer with the compiled op's contract (used when no op loads).

Same rules as face_gcn.render.rasterize_op (Genova's tf_mesh_renderer behaviour): Olano-Greer
homogeneous rasterization of clip-space triangles, no backface culling, a pixel is inside when all
three sign-corrected edge functions are >= 0 and one is > 0, triangles whose three w are all < 0
are skipped, pixel centres at (i + 0.5) with row 0 at NDC y = -1 (no flip), depth test on NDC z
with near/far clipping to [-1, 1]; among equal depths the higher triangle index wins (Genova's
sequential loop keeps a fragment whose depth is <= the stored one). Empty pixels: id -1,
barycentrics 0, depth 1. The float32 arithmetic follows the op's order, so ids agree exactly.

How: every (image, triangle) pair owns the pixels whose centres its bounding box holds (the whole
image for a triangle crossing w = 0). The candidate fragments (about 4 per triangle on a 224 x 224 face) are
enumerated in chunks of FRAGMENT_CHUNK inside a tf.while_loop, so memory stays bounded for big
triangles and batches; in each chunk the depth winner of each pixel is found with
unsorted_segment_min, ties broken with unsorted_segment_max over triangle ids, and chunks merge
into the running depth/id buffers with the same rule. Barycentrics of the winners are then recomputed from the
vertices with plain TF ops, so autodiff gives d barycentrics / d clip (x, y, w); ids and depths
carry no gradient, empty pixels get none.
"""

from __future__ import annotations

import tensorflow as tf

from face_gcn.render import rasterize_inputs

MAX_TOTAL_PIXELS = 1 << 28
# Candidate fragments resolved per step; bounds memory for big triangles and batches.
FRAGMENT_CHUNK = 1 << 22
# Pixels of slack around a triangle's projected span when choosing candidate pixel centres; the
# float32 projection is off by ~1e-5 px at 224 px, so this is ample and costs almost nothing.
BOX_MARGIN = 1.0 / 64.0


def _adjugate_rows(corners):
    """Sign-corrected adjugate of M = [x; y; w] (columns = corners).

    Args:
      corners: [..., 3, 4] clip coordinates of the three corners.
    Returns:
      [..., 9] float32: row i (entries 3i..3i+2) is edge function i, in the op's order.
    """
    a11, a12, a13 = corners[..., 0, 0], corners[..., 1, 0], corners[..., 2, 0]
    a21, a22, a23 = corners[..., 0, 1], corners[..., 1, 1], corners[..., 2, 1]
    a31, a32, a33 = corners[..., 0, 3], corners[..., 1, 3], corners[..., 2, 3]
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
    return tf.stack([sign * v for v in m], axis=-1)


def _pixel_center_ndc(index, size: int):
    """[...] float32 NDC centre of pixel `index` along an axis of `size` pixels."""
    half = tf.constant(0.5 * size, tf.float64)
    return tf.cast((tf.cast(index, tf.float64) + 0.5) / half - 1.0, tf.float32)


def _edges(m, px, py):
    """Edge values [..., 3] at NDC (px, py) from adjugate rows m [..., 9]."""
    e0 = m[..., 0] * px + m[..., 1] * py + m[..., 2]
    e1 = m[..., 3] * px + m[..., 4] * py + m[..., 5]
    e2 = m[..., 6] * px + m[..., 7] * py + m[..., 8]
    return tf.stack([e0, e1, e2], axis=-1)


def _bbox_axis(coord, w, size: int):
    """Pixel range [lo, hi) along one axis for triangles with all w > 0: the pixels whose centre
    i + 0.5 lies within BOX_MARGIN of the projected corners' span.

    Only centres can be inside, so this range holds every pixel the inside test can accept (the
    margin covers the rounding of the projection) and, for the sub-pixel triangles of a face
    mesh, about a third of the candidates of the span's floor-to-ceil range.

    Args:
      coord: [..., 3] clip x (or y); w: [..., 3]; size: pixels along the axis.
    """
    half = 0.5 * size
    p = (coord / w + 1.0) * half
    lim = float(size)
    lo = tf.math.ceil(tf.maximum(tf.minimum(tf.reduce_min(p, -1) - (0.5 + BOX_MARGIN), lim), -1.0))
    hi = tf.math.floor(tf.maximum(tf.minimum(tf.reduce_max(p, -1) - (0.5 - BOX_MARGIN), lim), -1.0)) + 1.0
    lo = tf.cast(tf.clip_by_value(tf.where(tf.math.is_nan(lo), 0.0, lo), 0.0, lim), tf.int32)
    hi = tf.cast(tf.clip_by_value(tf.where(tf.math.is_nan(hi), 0.0, hi), 0.0, lim), tf.int32)
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
    tri_count = tf.shape(triangles)[0]

    # Selection (no gradient): which triangle wins each pixel.
    vertices_ng = tf.stop_gradient(clip_vertices)
    corners = tf.gather(vertices_ng, triangles, axis=1)            # [B, T, 3, 4]
    m = _adjugate_rows(corners)                                     # [B, T, 9]
    w = corners[..., 3]
    all_front = tf.reduce_all(w > 0.0, axis=-1)
    all_behind = tf.reduce_all(w < 0.0, axis=-1)
    safe_w = tf.where(all_front[..., tf.newaxis], w, tf.ones_like(w))
    left, right = _bbox_axis(corners[..., 0], safe_w, width)
    bottom, top = _bbox_axis(corners[..., 1], safe_w, height)
    left = tf.where(all_front, left, 0)
    right = tf.where(all_front, right, width)
    bottom = tf.where(all_front, bottom, 0)
    top = tf.where(all_front, top, height)
    box_w = tf.maximum(right - left, 0)
    box_h = tf.maximum(top - bottom, 0)
    counts = tf.where(all_behind, 0, box_w * box_h)                # [B, T]

    flat_counts = tf.cast(tf.reshape(counts, [-1]), tf.int64)     # [B*T] fragments per pair
    ends = tf.cumsum(flat_counts)
    starts = ends - flat_counts
    total = tf.cond(tf.size(flat_counts) > 0, lambda: ends[tf.size(flat_counts) - 1],
                    lambda: tf.constant(0, tf.int64))
    flat_left = tf.reshape(left, [-1])
    flat_bottom = tf.reshape(bottom, [-1])
    flat_box_w = tf.maximum(tf.reshape(box_w, [-1]), 1)
    flat_m = tf.reshape(m, [-1, 9])
    flat_corners = tf.reshape(corners, [-1, 3, 4])
    safe_count = tf.maximum(tri_count, 1)
    segments = batch * pixel_count

    def resolve_chunk(begin):
        """Depth winners among fragments [begin, begin + CHUNK): (z_min, id) per pixel."""
        index = tf.range(begin, tf.minimum(begin + FRAGMENT_CHUNK, total))
        owner = tf.searchsorted(ends, index, side="right", out_type=tf.int32)
        local = tf.cast(index - tf.gather(starts, owner), tf.int32)
        owner_w = tf.gather(flat_box_w, owner)
        ix = tf.gather(flat_left, owner) + local % owner_w
        iy = tf.gather(flat_bottom, owner) + local // owner_w
        e = _edges(tf.gather(flat_m, owner), _pixel_center_ndc(ix, width),
                   _pixel_center_ndc(iy, height))                    # [N, 3]
        inside = tf.reduce_all(e >= 0.0, -1) & tf.reduce_any(e > 0.0, -1)
        b = e / tf.reduce_sum(e, -1)[:, tf.newaxis]
        frag_corners = tf.gather(flat_corners, owner)
        clip_z = b[:, 0] * frag_corners[:, 0, 2] + b[:, 1] * frag_corners[:, 1, 2] \
            + b[:, 2] * frag_corners[:, 2, 2]
        clip_w = b[:, 0] * frag_corners[:, 0, 3] + b[:, 1] * frag_corners[:, 1, 3] \
            + b[:, 2] * frag_corners[:, 2, 3]
        z = clip_z / clip_w
        keep = inside & (z >= -1.0) & (z <= 1.0)
        key = tf.boolean_mask((owner // safe_count) * pixel_count + iy * width + ix, keep)
        z_kept = tf.boolean_mask(z, keep)
        tri_kept = tf.boolean_mask(owner % safe_count, keep)
        z_min = tf.math.unsorted_segment_min(z_kept, key, segments)
        is_best = tf.equal(z_kept, tf.gather(z_min, key))
        best = tf.math.unsorted_segment_max(tf.where(is_best, tri_kept, -1), key, segments)
        return z_min, best

    def merge(begin, z_buffer, ids):
        z_chunk, id_chunk = resolve_chunk(begin)
        id_chunk = tf.maximum(id_chunk, -1)                            # empty segments -> -1
        z_chunk = tf.where(id_chunk >= 0, z_chunk, 2.0)
        z_new = tf.minimum(z_buffer, z_chunk)
        # Equal depths: the higher triangle index wins whatever chunk it came from.
        ids = tf.maximum(tf.where(z_buffer == z_new, ids, -1),
                         tf.where(z_chunk == z_new, id_chunk, -1))
        return begin + FRAGMENT_CHUNK, z_new, ids

    _, z_flat, ids_flat = tf.while_loop(
        lambda begin, *_: begin < total, merge,
        (tf.constant(0, tf.int64), tf.fill([segments], 2.0), tf.fill([segments], -1)),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]), tf.TensorShape([None])))
    covered = ids_flat >= 0
    z_flat = tf.where(covered, z_flat, 1.0)

    # Barycentrics of the winners, recomputed differentiably.
    pixels = tf.where(covered)[:, 0]
    pixels = tf.cast(pixels, tf.int32)
    win_ids = tf.gather(ids_flat, pixels)
    win_image = pixels // pixel_count
    win_pixel = pixels % pixel_count
    vertex_ids = tf.gather(triangles, win_ids)                      # [P, 3]
    win_corners = tf.gather_nd(clip_vertices,
                               tf.stack([tf.repeat(win_image[:, tf.newaxis], 3, axis=1),
                                         vertex_ids], axis=-1))    # [P, 3, 4]
    win_m = _adjugate_rows(win_corners)
    wpx = _pixel_center_ndc(win_pixel % width, width)
    wpy = _pixel_center_ndc(win_pixel // width, height)
    we = _edges(win_m, wpx, wpy)
    wb = we / tf.reduce_sum(we, -1, keepdims=True)
    bary_flat = tf.scatter_nd(pixels[:, tf.newaxis], wb, tf.stack([segments, 3]))

    out_shape = tf.stack([batch, height, width])
    barycentrics = tf.reshape(bary_flat, tf.concat([out_shape, [3]], 0))
    triangle_ids = tf.reshape(ids_flat, out_shape)
    z_buffer = tf.reshape(z_flat, out_shape)
    return barycentrics, triangle_ids, z_buffer
