import numpy as np
import pytest

from face_gcn.losses import identity
from face_gcn.losses.identity import identity_loss


def test_identity_loss_hand_computed():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]], np.float32)
    b = np.array([[0.0, 3.0], [2.0, 2.0], [-1.0, 0.0]], np.float32)
    # cosines 0, 1, -1 -> losses 1, 0, 2
    assert float(identity_loss(a, b)) == pytest.approx(1.0)


def test_identity_loss_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 16)), rng.normal(size=(4, 16))
    cos = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    got = identity_loss(a.astype(np.float32), b.astype(np.float32))
    assert float(got) == pytest.approx(np.mean(1 - cos), rel=1e-5)


def test_zero_embedding_is_finite():
    assert float(identity_loss(np.zeros((1, 4)), np.ones((1, 4)))) == pytest.approx(1.0)


def test_shape_mismatch():
    with pytest.raises(ValueError):
        identity_loss(np.zeros((2, 4)), np.zeros((2, 5)))


def test_identity_distances_per_example():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0], [1.0, 0.0]])
    np.testing.assert_allclose(identity.identity_distances(a, b).numpy(), [1.0, 0.0, 1.0], atol=1e-6)
