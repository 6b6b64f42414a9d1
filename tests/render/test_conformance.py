"""Conformance with google/tf_mesh_renderer's C++ kernel tests: their golden barycentric images.

His Python test suite (the Simple/Perspective triangles, the unlit, gray and coloured cubes, the
three gradient checks and the rotating cube) is ported in tests/render/genova_port and runs
against the drop-in API. Here: the four scenes of kernels/rasterize_triangles_impl_test.cc, which
require byte equality of uint8(trunc(b * 255)). Goldens live at
<repo>/../shared/conformance/tf_mesh_renderer (skipped when absent). Every scene runs with both
rasterizer backends ("op" skipped when the compiled library is not built).
"""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance_scenes as scenes  # noqa: E402

from face_gcn.render import op_library  # noqa: E402

GOLDEN_DIR = scenes.GOLDEN_DIR

BACKENDS = [
    "fallback",
    pytest.param("op", marks=pytest.mark.skipif(
        op_library.load() is None, reason=f"compiled op not available: {op_library.status()}")),
]


def _golden(name):
    path = os.path.join(GOLDEN_DIR, name + ".png")
    if not os.path.isfile(path):
        pytest.skip(f"golden image {path} not present")
    with open(path, "rb") as handle:
        return tf.io.decode_png(handle.read()).numpy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", scenes.GOLDENS)
def test_render_matches_golden(name, backend):
    golden = _golden(name)
    render = scenes.render_golden(name, backend)
    assert render.shape[:2] == golden.shape[:2]
    max_diff, outliers = scenes.compare(golden, render)
    # Genova's Python tolerance: at most 0.1 % of pixels with a channel off by more than 0.01.
    assert outliers <= 0.001, f"{name}: {outliers:.4%} outlier pixels (max diff {max_diff:.4f})"
    # Genova's C++ tests: uint8(trunc(b * 255)) equal byte for byte.
    np.testing.assert_array_equal((render[..., :3] * 255).astype(np.uint8), golden[..., :3])
