"""Random coefficient vectors: layout, ranges, determinism."""

import numpy as np
import pytest

from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import sampling


def test_layout_ranges_and_determinism():
    first = sampling.sample_coefficients(np.random.default_rng(3), 64)
    again = sampling.sample_coefficients(np.random.default_rng(3), 64)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (64, 257) and first.dtype == np.float32
    blocks = coeff_lib.split_coefficients(first)
    angles = blocks.angles.numpy()
    assert np.all(np.abs(angles[:, 0]) <= sampling.MAX_PITCH + 1e-6)
    assert np.all(np.abs(angles[:, 1]) <= sampling.MAX_YAW + 1e-6)
    assert np.all(np.abs(angles[:, 2]) <= sampling.MAX_ROLL + 1e-6)
    translation = blocks.translation.numpy()
    assert np.all(np.abs(translation[:, :2]) <= sampling.MAX_SHIFT) and np.all(translation[:, 2] == 0)
    identity = blocks.id.numpy()
    assert abs(identity.std() - 1.0) < 0.05  # unit standard deviations by default
    gamma = blocks.gamma.numpy().reshape(64, 3, 9)
    assert np.all(gamma[:, :, 0] > -0.25)  # the DC term keeps faces lit (0.8 is added later)


def test_rejects_empty_batch():
    with pytest.raises(ValueError):
        sampling.sample_coefficients(np.random.default_rng(0), 0)
