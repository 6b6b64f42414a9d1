"""Backend dispatch of face_gcn.render.rasterizer."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import op_library, rasterizer

CLIP = np.array([[[-0.6, -0.7, 0.1, 1.0], [0.8, -0.5, 0.2, 1.0], [0.1, 0.9, 0.3, 1.0]]],
                np.float32)
TRIANGLES = np.array([[0, 1, 2]], np.int32)


def test_auto_picks_the_op_exactly_when_it_loads():
    expected = "op" if op_library.load() is not None else "fallback"
    assert rasterizer.backend_in_use("auto") == expected
    assert rasterizer.backend_in_use("fallback") == "fallback"


def test_unknown_backend_raises():
    with pytest.raises(ValueError, match="backend"):
        rasterizer.rasterize(CLIP, TRIANGLES, 8, 8, backend="opengl")


@pytest.mark.skipif(op_library.load() is None, reason="compiled op not available")
def test_backends_agree():
    results = [rasterizer.rasterize(CLIP, TRIANGLES, 17, 13, backend=b)
               for b in ("op", "fallback")]
    np.testing.assert_array_equal(results[0][1].numpy(), results[1][1].numpy())
    np.testing.assert_allclose(results[0][0].numpy(), results[1][0].numpy(), atol=1e-6)


@pytest.mark.parametrize("backend", ["fallback", pytest.param("op", marks=pytest.mark.skipif(
    op_library.load() is None, reason="compiled op not available"))])
def test_both_backends_reject_out_of_range_indices(backend):
    with pytest.raises(tf.errors.InvalidArgumentError):
        rasterizer.rasterize(CLIP, np.array([[0, 1, 5]], np.int32), 8, 8, backend=backend)
