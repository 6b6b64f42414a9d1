"""Face and vertex normals of batched triangle meshes, safe for degenerate triangles.

Face normal of triangle (a, b, c): normalise((b - a) x (c - a)) (counter-clockwise seen from
the side it points to; equal to Deng's (a - b) x (b - c)). Vertex normal: normalise the sum of
the unit normals of the triangles around the vertex (Deng's Compute_norm). A zero-area
triangle gets a zero normal, and a vector too short to normalise maps to zero with a zero
gradient, so neither values nor gradients ever become NaN.

The gathers run on rows [V, 3, B]: one row holds a vertex's x, y and z in every mesh of the batch,
so each gathered row is B x 12 bytes rather than 12, and each component is a contiguous [T, B] or
[V, B] plane. The cross products and lengths are element-wise passes over those planes, where TF's
Cross op and a reduction over a last axis of 3 ran on interleaved triples: at BFM size, batch 16,
vertex normals run 1.4x faster forward and 1.3x forward + backward than on [V, B, 3] rows (which
were 1.8x and 1.4x faster than batch-major gathers), with the same values.
"""

from __future__ import annotations

import tensorflow as tf

# Squared lengths at or below this are treated as zero (no direction).
SQUARED_LENGTH_EPSILON = 1e-24


def _check_inputs(vertices, triangles):
    vertices = tf.convert_to_tensor(vertices)
    if not vertices.dtype.is_floating:
        raise ValueError(f"vertices must be floating point, got {vertices.dtype.name}")
    if vertices.shape.rank is not None and (vertices.shape.rank != 3 or
                                            vertices.shape[-1] not in (None, 3)):
        raise ValueError(f"vertices must have shape [B, V, 3], got {vertices.shape}")
    triangles = tf.convert_to_tensor(triangles)
    if not triangles.dtype.is_integer:
        raise ValueError(f"triangles must be integer, got {triangles.dtype.name}")
    if triangles.shape.rank is not None and (triangles.shape.rank != 2 or
                                             triangles.shape[-1] not in (None, 3)):
        raise ValueError(f"triangles must have shape [T, 3], got {triangles.shape}")
    if triangles.dtype not in (tf.int32, tf.int64):
        triangles = tf.cast(triangles, tf.int32)
    return vertices, triangles


def _rows(vertices):
    """[B, N, 3] -> [N, 3, B]."""
    return tf.transpose(vertices, [1, 2, 0])


def _from_rows(rows):
    """[N, 3, B] -> [B, N, 3]."""
    return tf.transpose(rows, [2, 0, 1])


def _normalize_rows(vectors, epsilon: float = SQUARED_LENGTH_EPSILON):
    """Unit vectors of [N, 3, B] rows, computed on the three [N, B] component planes; a vector with
    squared length <= epsilon becomes 0, with a zero gradient."""
    x, y, z = tf.unstack(vectors, axis=1)
    squared = tf.square(x) + tf.square(y) + tf.square(z)
    valid = squared > epsilon
    inverse = tf.where(valid, tf.math.rsqrt(tf.where(valid, squared, tf.ones_like(squared))), tf.zeros_like(squared))
    return tf.stack([x * inverse, y * inverse, z * inverse], axis=1)


def _face_normals_rows(rows, triangles):
    """[V, 3, B] positions -> [T, 3, B] unit face normals."""
    a, b, c = (tf.gather(rows, triangles[:, corner]) for corner in range(3))
    ux, uy, uz = tf.unstack(b - a, axis=1)
    vx, vy, vz = tf.unstack(c - a, axis=1)
    return _normalize_rows(tf.stack([uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx], axis=1))


def face_normals(vertices, triangles) -> tf.Tensor:
    """Unit normals of every triangle.

    Args:
      vertices: [B, V, 3] positions.
      triangles: [T, 3] integer vertex indices, counter-clockwise seen from outside.
    Returns:
      [B, T, 3] unit normals (zero for zero-area triangles).
    """
    vertices, triangles = _check_inputs(vertices, triangles)
    return _from_rows(_face_normals_rows(_rows(vertices), triangles))


def vertex_normals(vertices, triangles, vertex_triangles) -> tf.Tensor:
    """Unit vertex normals: normalised sum of the unit normals of adjacent triangles.

    Args:
      vertices: [B, V, 3] positions.
      triangles: [T, 3] integer vertex indices.
      vertex_triangles: [V, P] integer indices of the triangles around each vertex, padded
        with T (see face_gcn.morphable.model.vertex_triangle_table).
    Returns:
      [B, V, 3] unit normals (zero where the adjacent normals cancel or there are none).
    """
    vertices, triangles = _check_inputs(vertices, triangles)
    vertex_triangles = tf.convert_to_tensor(vertex_triangles)
    if not vertex_triangles.dtype.is_integer or vertex_triangles.shape.rank not in (None, 2):
        raise ValueError(f"vertex_triangles must be an integer [V, P] array, got "
                         f"{vertex_triangles.dtype.name} {vertex_triangles.shape}")
    if (vertex_triangles.shape.rank is not None and vertices.shape.rank is not None
            and None not in (vertex_triangles.shape[0], vertices.shape[1])
            and vertex_triangles.shape[0] != vertices.shape[1]):
        raise ValueError(f"vertex_triangles has {vertex_triangles.shape[0]} rows but there are "
                         f"{vertices.shape[1]} vertices")
    normals = _face_normals_rows(_rows(vertices), triangles)  # [T, 3, B]
    padded = tf.pad(normals, [[0, 1], [0, 0], [0, 0]])     # row T is the zero padding normal
    if vertex_triangles.shape.rank == 2 and vertex_triangles.shape[1] is not None:
        # one gather per slot, summed: no [V, P, B, 3] intermediate
        summed = tf.add_n([tf.gather(padded, column) for column in tf.unstack(vertex_triangles, axis=1)])
    else:
        summed = tf.reduce_sum(tf.gather(padded, vertex_triangles), axis=1)  # [V, 3, B]
    return _from_rows(_normalize_rows(summed))
