"""The helpers of google/tf_mesh_renderer's mesh_renderer/test_utils.py, for TF2 eager.

The two checks keep his rules and tolerances: an image matches its golden PNG when at most
max_outlier_fraction of its pixels have a channel (after clipping to [0, 1]) off by more than
pixel_error_threshold; Jacobians match when at most max_outlier_fraction of the entries have
|numerical - theoretical| / numerical > outlier_relative_error_threshold. `compute_gradient`
stands in for TF1's tf.test.compute_gradient(x, x_shape, y, y_shape, x_init_value, delta).
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import conformance_scenes  # noqa: E402  (tests/render: where the goldens are found)

TEST_DATA_DIRECTORY = conformance_scenes.GOLDEN_DIR


def check_jacobians_are_nearly_equal(theoretical, numerical, outlier_relative_error_threshold,
                                     max_outlier_fraction,
                                     include_jacobians_in_error_message=False):
    """(whether at most max_outlier_fraction of the entries are relative outliers, message).

    Args:
      theoretical, numerical: 2-D arrays of the same shape (autodiff, finite differences).
      outlier_relative_error_threshold: |numerical - theoretical| / numerical above it is an
        outlier (entries where numerical is 0 and theoretical is not count as outliers).
      max_outlier_fraction: the largest tolerated fraction of outliers.
      include_jacobians_in_error_message: append both matrices to the message.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        outliers = np.abs(numerical - theoretical) / numerical > outlier_relative_error_threshold
    outlier_fraction = np.count_nonzero(outliers) / np.prod(numerical.shape[:2])
    message = (f" {outlier_fraction:f} of theoretical gradients are relative outliers, but the "
               f"maximum allowable fraction is {max_outlier_fraction:f} ")
    if include_jacobians_in_error_message:
        message += (f"\nNumerical Jacobian:\n{numerical.T!r}\n"
                    f"Theoretical Jacobian:\n{theoretical.T!r}")
    return outlier_fraction <= max_outlier_fraction, message


def expect_image_file_and_render_are_near(baseline_path, result_image,
                                          max_outlier_fraction=0.001,
                                          pixel_error_threshold=0.01):
    """Asserts that result_image [H, W, C] matches the PNG at baseline_path (his soft check).

    Skips the test when the golden image is not present. On a mismatch the result is written
    to <tmp>/<golden name>_result.png.
    """
    if not os.path.isfile(baseline_path):
        pytest.skip(f"golden image {baseline_path} not present")
    with open(baseline_path, "rb") as handle:
        baseline_image = tf.io.decode_png(handle.read()).numpy()
    result_image = np.asarray(result_image)
    assert baseline_image.shape == result_image.shape, (
        f"Image shapes {baseline_image.shape} and {result_image.shape} do not match.")
    result_image = np.clip(result_image, 0.0, 1.0).copy(order="C")
    baseline_image = baseline_image.astype(float) / 255.0
    outlier_pixels = np.any(np.abs(baseline_image - result_image) > pixel_error_threshold, axis=2)
    outlier_fraction = np.count_nonzero(outlier_pixels) / np.prod(baseline_image.shape[:2])
    images_match = outlier_fraction <= max_outlier_fraction
    base_prefix = os.path.splitext(os.path.basename(baseline_path))[0]
    result_output_path = os.path.join(tempfile.gettempdir(), base_prefix + "_result.png")
    if not images_match:
        encoded = tf.io.encode_png(tf.cast(result_image * 255.0, tf.uint8))
        with open(result_output_path, "wb") as output_file:
            output_file.write(encoded.numpy())
    assert images_match, (f"{baseline_path} does not match. ({outlier_fraction:f} of pixels are "
                          f"outliers, {max_outlier_fraction:f} is allowed.). Result image written "
                          f"to {result_output_path}")


def compute_gradient(function, x_init_value, delta):
    """Theoretical and numerical Jacobians of y = function(x) at x_init_value.

    Same numbers and layout as TF1's tf.test.compute_gradient: two float32 arrays
    [x.size, y.size], the theoretical one from autodiff (one backward pass per element of y, run
    as a loop inside one tf.function), the numerical one from central differences
    (y(x + delta e_i) - y(x - delta e_i)) / (2 delta) in float32.
    """
    x_init_value = np.asarray(x_init_value, np.float32)
    traced = tf.function(function)

    @tf.function
    def jacobian(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = traced(x)
        return tape.jacobian(y, x, experimental_use_pfor=False)

    theoretical = jacobian(tf.constant(x_init_value)).numpy()
    theoretical = theoretical.reshape(-1, x_init_value.size).T
    numerical = np.zeros_like(theoretical)
    x = x_init_value.copy()
    flat = x.reshape(-1)
    for column in range(x.size):
        original = flat[column]
        flat[column] = original + delta
        y_plus = traced(tf.constant(x)).numpy()
        flat[column] = original - delta
        y_minus = traced(tf.constant(x)).numpy()
        flat[column] = original
        numerical[column] = ((y_plus - y_minus) / np.float32(2 * delta)).reshape(-1)
    return theoretical, numerical
