"""face_gcn.reconstruction.coarse_cache: the landmark sources of the coarse stage, detected68 included."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.reconstruction import coarse_cache


def _batch(has68):
    count = len(has68)
    return {"image": tf.constant(np.arange(count, dtype=np.float32)[:, None, None, None] * np.ones((1, 4, 4, 3),
                                                                                                      np.float32)),
            "mask": tf.ones([count, 4, 4, 1]), "landmarks": tf.fill([count, 5, 2], 5.0),
            "landmarks68": tf.fill([count, 68, 2], 1.0), "landmarks68_detected": tf.fill([count, 68, 2], 68.0),
            "has_landmarks68_detected": tf.constant(has68, tf.float32)}


def _run(images, masks, landmarks):
    """A stand-in coarse stage: coefficients carry the photo's number and the landmark count."""
    ids = images[:, 0, 0, 0]
    count = tf.fill(tf.shape(ids), float(landmarks.shape[1]))
    return tf.stack([ids, count], axis=1), tf.stack([ids, landmarks[:, 0, 0]], axis=1)


def test_detected68_fits_faces_without_them_with_their_5_in_order():
    coefficients, embedding, fallbacks = coarse_cache.run_coarse_stage(_run, _batch([1.0, 0.0, 1.0]), "detected68")
    np.testing.assert_array_equal(coefficients, [[0, 68], [1, 5], [2, 68]])
    np.testing.assert_array_equal(embedding, [[0, 68], [1, 5], [2, 68]])
    assert fallbacks == 1
    coefficients, _, fallbacks = coarse_cache.run_coarse_stage(_run, _batch([1.0, 0.0]), "detected")
    np.testing.assert_array_equal(coefficients, [[0, 5], [1, 5]])
    assert fallbacks == 0


def test_fit_landmarks_by_source():
    batch = _batch([1.0, 1.0])
    assert coarse_cache.fit_landmarks(batch, "detected").shape == (2, 5, 2)
    assert float(coarse_cache.fit_landmarks(batch, "ground_truth68")[0, 0, 0]) == 1.0
    assert float(coarse_cache.fit_landmarks(batch, "detected68")[0, 0, 0]) == 68.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="every face of the batch"):
        coarse_cache.fit_landmarks(_batch([1.0, 0.0]), "detected68")
    with pytest.raises(ValueError, match="landmark source must be one of"):
        coarse_cache.fit_landmarks(batch, "dlib")
