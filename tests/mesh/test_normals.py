"""Tests for face and vertex normals against explicit loops over triangles."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.mesh import normals as normals_lib
from face_gcn.morphable.model import vertex_triangle_table


def icosphere(subdivisions=1):
    """Unit icosphere: vertices [V, 3], outward counter-clockwise triangles [T, 3]."""
    t = (1.0 + 5 ** 0.5) / 2.0
    vertices = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
                (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
             (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
             (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    vertices = [np.array(v, float) / np.linalg.norm(v) for v in vertices]
    for _ in range(subdivisions):
        midpoints, new_faces = {}, []

        def midpoint(i, j):
            key = (min(i, j), max(i, j))
            if key not in midpoints:
                m = vertices[i] + vertices[j]
                vertices.append(m / np.linalg.norm(m))
                midpoints[key] = len(vertices) - 1
            return midpoints[key]

        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    return np.array(vertices), np.array(faces, np.int32)


def _reference_face_normals(vertices, triangles):
    out = np.zeros((len(triangles), 3))
    for t, (a, b, c) in enumerate(triangles):
        n = np.cross(vertices[b] - vertices[a], vertices[c] - vertices[a])
        length = np.linalg.norm(n)
        out[t] = n / length if length > 0 else 0.0
    return out


def _reference_vertex_normals(vertices, triangles):
    face = _reference_face_normals(vertices, triangles)
    out = np.zeros_like(vertices)
    for t, corners in enumerate(triangles):
        for v in corners:
            out[v] += face[t]
    lengths = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, lengths, out=np.zeros_like(out), where=lengths > 0)


def _batch(rng, vertices, count=2):
    return np.stack([vertices * rng.uniform(0.5, 2.0, size=3) + rng.normal(scale=0.05,
                                                                            size=vertices.shape)
                     for _ in range(count)])


def test_face_and_vertex_normals_match_loops():
    rng = np.random.default_rng(0)
    sphere, triangles = icosphere(1)
    vertices = _batch(rng, sphere)
    table = vertex_triangle_table(triangles, len(sphere))
    faces = normals_lib.face_normals(vertices, triangles).numpy()
    per_vertex = normals_lib.vertex_normals(vertices, triangles, table).numpy()
    assert faces.shape == (2, len(triangles), 3) and per_vertex.shape == vertices.shape
    for b in range(2):
        np.testing.assert_allclose(faces[b], _reference_face_normals(vertices[b], triangles),
                                   atol=1e-12)
        np.testing.assert_allclose(per_vertex[b],
                                   _reference_vertex_normals(vertices[b], triangles), atol=1e-12)


def test_sphere_normals_point_outwards():
    sphere, triangles = icosphere(2)
    table = vertex_triangle_table(triangles, len(sphere))
    got = normals_lib.vertex_normals(sphere[None].astype(np.float32), triangles, table).numpy()[0]
    assert got.dtype == np.float32
    assert np.min(np.sum(got * sphere, axis=1)) > 0.999


def test_degenerate_triangles_give_zero_normals_and_finite_gradients():
    vertices = np.array([[[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [5, 5, 5]]])
    # Triangle 1 is collinear, triangle 2 has a repeated vertex; vertex 4 touches only it.
    triangles = np.array([[0, 1, 2], [0, 1, 3], [4, 4, 1]], np.int32)
    table = vertex_triangle_table(triangles, 5)
    vertices = tf.constant(vertices)
    with tf.GradientTape() as tape:
        tape.watch(vertices)
        faces = normals_lib.face_normals(vertices, triangles)
        per_vertex = normals_lib.vertex_normals(vertices, triangles, table)
        loss = tf.reduce_sum(faces * [1.0, 2.0, 3.0]) + tf.reduce_sum(per_vertex * [3.0, 1, 2])
    gradient = tape.gradient(loss, vertices).numpy()
    np.testing.assert_allclose(faces.numpy()[0], [[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(per_vertex.numpy()[0, 4], [0, 0, 0])
    np.testing.assert_allclose(per_vertex.numpy()[0, 3], [0, 0, 0])
    assert np.all(np.isfinite(gradient))


def test_vertex_normals_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    sphere, triangles = icosphere(0)
    table = vertex_triangle_table(triangles, len(sphere))
    vertices = tf.constant(_batch(rng, sphere, count=1))
    theoretical, numerical = tf.test.compute_gradient(
        lambda v: normals_lib.vertex_normals(v, triangles, table), [vertices])
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-5, atol=1e-6)


def test_inside_tf_function_with_unknown_batch():
    sphere, triangles = icosphere(0)
    table = vertex_triangle_table(triangles, len(sphere))

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])
    def run(vertices):
        return normals_lib.vertex_normals(vertices, triangles, table)

    got = run(np.stack([sphere, 2 * sphere]).astype(np.float32)).numpy()
    np.testing.assert_allclose(got[0], got[1], atol=1e-6)


def test_input_validation():
    sphere, triangles = icosphere(0)
    table = vertex_triangle_table(triangles, len(sphere))
    with pytest.raises(ValueError, match=r"vertices must have shape \[B, V, 3\]"):
        normals_lib.face_normals(sphere, triangles)
    with pytest.raises(ValueError, match=r"triangles must have shape \[T, 3\]"):
        normals_lib.face_normals(sphere[None], triangles[:, :2])
    with pytest.raises(ValueError, match="triangles must be integer"):
        normals_lib.face_normals(sphere[None], triangles.astype(float))
    with pytest.raises(ValueError, match="vertex_triangles has 11 rows but there are 12"):
        normals_lib.vertex_normals(sphere[None], triangles, table[:-1])
