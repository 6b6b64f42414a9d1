"""Tests for the 257-coefficient layout: split/join against explicit index ranges."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.morphable import coefficients as coeffs_lib

# Deng's R-Net layout written out independently of the module.
EXPECTED_RANGES = {
    "id": (0, 80), "exp": (80, 144), "tex": (144, 224),
    "angles": (224, 227), "gamma": (227, 254), "translation": (254, 257),
}


def test_layout_constants():
    assert coeffs_lib.NUM_COEFFICIENTS == 257
    for name, (start, stop) in EXPECTED_RANGES.items():
        piece = coeffs_lib.BLOCK_SLICES[name]
        assert (piece.start, piece.stop) == (start, stop), name
        assert coeffs_lib.BLOCK_SIZES[name] == stop - start
    assert list(coeffs_lib.BLOCK_SIZES) == list(coeffs_lib.Coefficients._fields)


@pytest.mark.parametrize("leading", [(4,), (2, 3), ()])
def test_split_matches_index_ranges(leading):
    values = np.random.default_rng(0).normal(size=leading + (257,))
    blocks = coeffs_lib.split_coefficients(values)
    for name, (start, stop) in EXPECTED_RANGES.items():
        np.testing.assert_array_equal(getattr(blocks, name).numpy(), values[..., start:stop])


def test_join_inverts_split():
    values = np.random.default_rng(1).normal(size=(3, 257)).astype(np.float32)
    blocks = coeffs_lib.split_coefficients(values)
    np.testing.assert_array_equal(coeffs_lib.join_coefficients(*blocks).numpy(), values)
    np.testing.assert_array_equal(coeffs_lib.join(blocks).numpy(), values)
    np.testing.assert_array_equal(coeffs_lib.join_coefficients(**blocks._asdict()).numpy(),
                                  values)


def test_split_inside_tf_function_with_unknown_batch():
    @tf.function(input_signature=[tf.TensorSpec([None, 257], tf.float32)])
    def gamma_of(values):
        return coeffs_lib.split_coefficients(values).gamma

    values = np.arange(2 * 257, dtype=np.float32).reshape(2, 257)
    np.testing.assert_array_equal(gamma_of(values).numpy(), values[:, 227:254])


def test_split_rejects_wrong_size_and_dtype():
    with pytest.raises(ValueError, match=r"\[\.\.\., 257\]"):
        coeffs_lib.split_coefficients(np.zeros((2, 256), np.float32))
    with pytest.raises(ValueError, match="scalar"):
        coeffs_lib.split_coefficients(np.float32(1.0))
    with pytest.raises(ValueError, match="floating"):
        coeffs_lib.split_coefficients(np.zeros((2, 257), np.int32))


def test_join_rejects_bad_blocks():
    blocks = coeffs_lib.split_coefficients(np.zeros((2, 257), np.float32))._asdict()
    bad = dict(blocks, gamma=np.zeros((2, 26), np.float32))
    with pytest.raises(ValueError, match="'gamma'.*27"):
        coeffs_lib.join_coefficients(**bad)
    bad = dict(blocks, translation=np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="'translation'.*leading"):
        coeffs_lib.join_coefficients(**bad)
    bad = dict(blocks, tex=np.zeros((2, 80), np.float64))
    with pytest.raises(ValueError, match="dtype"):
        coeffs_lib.join_coefficients(**bad)
