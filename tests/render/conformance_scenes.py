"""The scenes of google/tf_mesh_renderer's test suite, rebuilt with face_gcn's compatible API.

Numbers (geometry, cameras, lights, image sizes) are those of mesh_renderer_test.py,
rasterize_triangles_test.py and kernels/rasterize_triangles_impl_test.cc; each scene function
returns the [H, W, C] float image that the named golden PNG holds.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from face_gcn.render import camera_utils, mesh_renderer, rasterize_triangles, rasterizer

WIDTH, HEIGHT = 640, 480

CUBE_VERTICES = np.array([[-1, -1, 1], [-1, -1, -1], [-1, 1, -1], [-1, 1, 1], [1, -1, 1],
                          [1, -1, -1], [1, 1, -1], [1, 1, 1]], np.float32)
CUBE_TRIANGLES = np.array([[0, 1, 2], [2, 3, 0], [3, 2, 6], [6, 7, 3], [7, 6, 5], [5, 4, 7],
                           [4, 5, 1], [1, 0, 4], [5, 6, 2], [2, 1, 5], [7, 4, 0], [0, 3, 7]],
                          np.int32)
TRIANGLE_CLIP = np.array([[-0.5, -0.5, 0.8, 1.0], [0.0, 0.5, 0.3, 1.0], [0.5, -0.5, 0.3, 1.0]],
                         np.float32)
EXTERNAL_TRIANGLE_CLIP = np.array([[-0.5, -0.5, 0.0, 1.0], [0.0, -0.5, 0.0, -1.0],
                                   [0.5, -0.5, 0.0, 1.0]], np.float32)
BOX_CLIP = np.array([[-1, -1, 0, 2], [1, -1, 0, 2], [1, 1, 0, 2], [-1, 1, 0, 2],
                     [-1, -1, 0, -2], [1, -1, 0, -2], [1, 1, 0, -2], [-1, 1, 0, -2]], np.float32)
BOX_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [2, 3, 7], [2, 7, 6],
                          [1, 0, 4], [1, 4, 5], [0, 3, 7], [0, 7, 4], [1, 2, 6], [1, 6, 5]],
                         np.int32)
TETRAHEDRON_CLIP = np.array([[-0.5, -0.5, 0.8, 1.0], [0.0, 0.5, 0.3, 1.0], [0.5, -0.5, 0.3, 1.0],
                             [0.0, 0.0, 0.0, 1.0]], np.float32)
TETRAHEDRON_TRIANGLES = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [2, 0, 3]], np.int32)
# Clip coordinates of the cube dumped from Genova's renderSimpleCube test.
CUBE_CLIP = np.array([[-2.60648608, -3.22707772, 6.85085106, 6.85714293],
                      [-1.30324292, -0.992946863, 8.56856918, 8.5714283],
                      [-1.30324292, 3.97178817, 7.70971, 7.71428585],
                      [-2.60648608, 1.73765731, 5.991992, 6.0],
                      [1.30324292, -3.97178817, 6.27827835, 6.28571415],
                      [2.60648608, -1.73765731, 7.99599648, 8.0],
                      [2.60648608, 3.22707772, 7.13713741, 7.14285707],
                      [1.30324292, 0.992946863, 5.41941929, 5.4285717]], np.float32)
# NDC (w = 1) cube used by Genova's internal gradient test (28 x 21 image).
GRADIENT_CUBE_CLIP = np.array([[-0.43889722, -0.53184521, 0.85293502, 1.0],
                               [-0.37635487, 0.22206162, 0.90555805, 1.0],
                               [-0.22849123, 0.76811147, 0.80993629, 1.0],
                               [-0.2805393, -0.14092168, 0.71602166, 1.0],
                               [0.18631913, -0.62634289, 0.88603103, 1.0],
                               [0.16183566, 0.08129397, 0.93020856, 1.0],
                               [0.44147962, 0.53497446, 0.85076219, 1.0],
                               [0.53008741, -0.31276882, 0.77620775, 1.0]], np.float32)
# Euler angles in radians, as Genova's tests pass them.
CUBE_ANGLES = np.array([[-20.0, 0.0, 60.0], [45.0, 60.0, 0.0]], np.float32)


def barycentric_image(clip, triangles, backend, alpha_channel):
    """[H, W, 3 or 4] barycentrics of one clip-space mesh (+ a channel of ones)."""
    bary, _, _ = rasterizer.rasterize(tf.constant(clip[np.newaxis]), tf.constant(triangles),
                                      WIDTH, HEIGHT, backend=backend)
    image = bary[0].numpy()
    if alpha_channel:
        image = np.concatenate([image, np.ones_like(image[..., :1])], axis=-1)
    return image


def posed_cube():
    """World-space cube vertices and normals [2, 8, 3] for the two test rotations."""
    rotation = camera_utils.euler_matrices(CUBE_ANGLES)[:, :3, :3]
    vertices = tf.matmul(tf.stack([CUBE_VERTICES] * 2), rotation, transpose_b=True)
    unit = CUBE_VERTICES / np.linalg.norm(CUBE_VERTICES, axis=1, keepdims=True)
    normals = tf.matmul(tf.stack([unit] * 2), rotation, transpose_b=True)
    return vertices, normals


def unlit_cubes(backend):
    """[2, H, W, 4] Genova's testRendersTwoCubesInBatch."""
    perspective = camera_utils.perspective(WIDTH / HEIGHT, [40.0], [0.01], [10.0])
    center, up = [[0.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]
    projection = tf.concat([
        tf.matmul(perspective, camera_utils.look_at([[2.0, 3.0, 6.0]], center, up)),
        tf.matmul(perspective, camera_utils.look_at([[-3.0, 1.0, 6.0]], center, up))], axis=0)
    rgba = np.concatenate([CUBE_VERTICES * 0.5 + 0.5, np.ones((8, 1), np.float32)], axis=1)
    return rasterize_triangles.rasterize(
        tf.stack([CUBE_VERTICES] * 2), tf.stack([rgba] * 2), CUBE_TRIANGLES, projection,
        WIDTH, HEIGHT, [0.0, 0.0, 0.0, 0.0], backend=backend).numpy()


def gray_cubes(backend):
    """[2, H, W, 4] Genova's mesh_renderer testRendersSimpleCube."""
    vertices, normals = posed_cube()
    eye = [[0.0, 0.0, 6.0]] * 2
    return mesh_renderer.mesh_renderer(
        vertices, CUBE_TRIANGLES, normals, tf.ones_like(vertices), eye, [[0.0, 0.0, 0.0]] * 2,
        [[0.0, 1.0, 0.0]] * 2, tf.constant([[[0.0, 0.0, 6.0]], [[0.0, 0.0, 6.0]]]),
        tf.ones([2, 1, 3]), WIDTH, HEIGHT, specular_mode="genova", backend=backend).numpy()


def colored_cubes(backend, shininess=None):
    """[2, H, W, 4] Genova's testComplexShading (tone mapped RGB, alpha)."""
    vertices, normals = posed_cube()
    diffuse = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, 1, 0], [1, 0, 1],
                        [0, 1, 1], [0.5, 0.5, 0.5]], np.float32)
    specular = np.array([[0, 1, 0], [0, 0, 1], [1, 1, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1],
                         [0.5, 0.5, 0.5], [1, 0, 0]], np.float32)
    if shininess is None:
        shininess = 6.0 * tf.ones([2, 8])
    renders = mesh_renderer.mesh_renderer(
        vertices, CUBE_TRIANGLES, normals, tf.stack([diffuse] * 2),
        tf.constant([[0.0, 0.0, 6.0], [0.0, 0.2, 18.0]]),
        tf.constant([[0.0, 0.0, 0.0], [0.1, -0.1, 0.1]]),
        tf.constant([[0.0, 1.0, 0.0], [0.1, 1.0, 0.15]]),
        tf.constant([[[0.0, 0.0, 6.0], [1.0, 2.0, 6.0]], [[0.0, -2.0, 4.0], [1.0, 3.0, 4.0]]]),
        tf.constant([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]]]),
        WIDTH, HEIGHT, tf.stack([specular] * 2), shininess,
        tf.constant([[0.0, 0.0, 0.0], [0.1, 0.1, 0.2]]), tf.constant([40.0, 13.3]),
        tf.constant(0.1), tf.constant(25.0), specular_mode="genova", backend=backend)
    return tf.concat([mesh_renderer.tone_mapper(renders[..., :3], 0.7), renders[..., 3:]],
                     axis=3).numpy()


def render_golden(name, backend):
    """The [H, W, C] render that golden `name` (file stem) holds."""
    if name == "Simple_Triangle":
        return barycentric_image(TRIANGLE_CLIP, np.array([[0, 1, 2]], np.int32), backend, True)
    if name == "Perspective_Corrected_Triangle":
        clip = TRIANGLE_CLIP * np.array([[0.2], [0.5], [2.0]], np.float32)
        return barycentric_image(clip, np.array([[0, 1, 2]], np.int32), backend, True)
    if name == "External_Triangle":
        return barycentric_image(EXTERNAL_TRIANGLE_CLIP, np.array([[0, 1, 2]], np.int32),
                                 backend, False)
    if name == "Inside_Box":
        return barycentric_image(BOX_CLIP, BOX_TRIANGLES, backend, False)
    if name == "Simple_Tetrahedron":
        return barycentric_image(TETRAHEDRON_CLIP, TETRAHEDRON_TRIANGLES, backend, False)
    if name == "Barycentrics_Cube":
        return barycentric_image(CUBE_CLIP, CUBE_TRIANGLES, backend, False)
    stem, index = name.rsplit("_", 1)
    renders = {"Unlit_Cube": unlit_cubes, "Gray_Cube": gray_cubes,
               "Colored_Cube": colored_cubes}[stem](backend)
    return renders[int(index)]


GOLDENS = ("Simple_Triangle", "Perspective_Corrected_Triangle", "External_Triangle", "Inside_Box",
           "Simple_Tetrahedron", "Barycentrics_Cube", "Unlit_Cube_0", "Unlit_Cube_1",
           "Gray_Cube_0", "Gray_Cube_1", "Colored_Cube_0", "Colored_Cube_1")
# Goldens written by Genova's C++ test: uint8(trunc(b * 255)) must match byte for byte.
BYTE_EXACT = ("External_Triangle", "Inside_Box", "Simple_Tetrahedron", "Barycentrics_Cube")


def compare(golden_uint8, render):
    """Genova's soft comparison: (max channel difference, fraction of pixels with one > 0.01)."""
    expected = golden_uint8.astype(np.float64) / 255.0
    result = np.clip(render[..., :expected.shape[-1]], 0.0, 1.0)
    diff = np.abs(expected - result)
    return float(diff.max()), float(np.mean(np.any(diff > 0.01, axis=-1)))
