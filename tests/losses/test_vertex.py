import numpy as np
import pytest

from face_gcn.losses.vertex import vertex_loss


def test_unweighted_is_mean_euclidean():
    c = np.zeros((1, 2, 3), np.float32)
    t = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]], np.float32)
    assert float(vertex_loss(c, t)) == pytest.approx(3.0)


def test_weighted_normalises_by_weight_sum_over_batch():
    rng = np.random.default_rng(2)
    c, t = rng.random((2, 5, 3)), rng.random((2, 5, 3))
    w = (rng.random((2, 5)) > 0.5).astype(np.float64)
    w[0, 0] = 1.0
    d = np.linalg.norm(c - t, axis=-1)
    got = vertex_loss(c.astype(np.float32), t.astype(np.float32), w.astype(np.float32))
    assert float(got) == pytest.approx(np.sum(w * d) / np.sum(w), rel=1e-5)


def test_no_visible_vertex_gives_zero():
    assert float(vertex_loss(np.zeros((1, 3, 3)), np.ones((1, 3, 3)), np.zeros((1, 3)))) == 0.0


def test_weight_shape_checked():
    with pytest.raises(ValueError):
        vertex_loss(np.zeros((1, 3, 3)), np.ones((1, 3, 3)), np.zeros((3,)))
