"""The scenes of google/tf_mesh_renderer's C++ kernel tests, rebuilt with face_gcn's rasterizer.

Numbers (geometry, image size) are those of kernels/rasterize_triangles_impl_test.cc; each scene
function returns the [H, W, 3] barycentric image that the named golden PNG holds. His Python
tests' scenes are in tests/render/genova_port.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from face_gcn.render import rasterizer

# Genova's golden PNGs (Apache-2.0), kept outside the repository: <repo>/../shared/conformance.
GOLDEN_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                           "..", "shared", "conformance", "tf_mesh_renderer"))

WIDTH, HEIGHT = 640, 480

CUBE_TRIANGLES = np.array([[0, 1, 2], [2, 3, 0], [3, 2, 6], [6, 7, 3], [7, 6, 5], [5, 4, 7],
                           [4, 5, 1], [1, 0, 4], [5, 6, 2], [2, 1, 5], [7, 4, 0], [0, 3, 7]],
                          np.int32)
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


def barycentric_image(clip, triangles, backend):
    """[H, W, 3] barycentrics of one clip-space mesh at WIDTH x HEIGHT."""
    bary, _, _ = rasterizer.rasterize(tf.constant(clip[np.newaxis]), tf.constant(triangles),
                                      WIDTH, HEIGHT, backend=backend)
    return bary[0].numpy()


SCENES = {
    "External_Triangle": (EXTERNAL_TRIANGLE_CLIP, np.array([[0, 1, 2]], np.int32)),
    "Inside_Box": (BOX_CLIP, BOX_TRIANGLES),
    "Simple_Tetrahedron": (TETRAHEDRON_CLIP, TETRAHEDRON_TRIANGLES),
    "Barycentrics_Cube": (CUBE_CLIP, CUBE_TRIANGLES),
}
GOLDENS = tuple(SCENES)


def render_golden(name, backend):
    """The [H, W, 3] render that golden `name` (file stem) holds."""
    clip, triangles = SCENES[name]
    return barycentric_image(clip, triangles, backend)


def compare(golden_uint8, render):
    """Genova's soft comparison: (max channel difference, fraction of pixels with one > 0.01)."""
    expected = golden_uint8.astype(np.float64) / 255.0
    result = np.clip(render[..., :expected.shape[-1]], 0.0, 1.0)
    diff = np.abs(expected - result)
    return float(diff.max()), float(np.mean(np.any(diff > 0.01, axis=-1)))
