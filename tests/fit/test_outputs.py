"""The overlay maps crop pixels back to the photo through the inverse alignment transform."""

import numpy as np

from face_gcn.data import alignment
from face_gcn.fit import outputs


def test_overlay_puts_crop_points_at_their_original_pixels():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 255, (90, 120, 3)).astype(np.uint8)
    transform = np.array([[1.7, 0.0, -40.0], [0.0, 1.7, -25.0]])  # original -> crop pixels
    render = np.zeros((64, 64, 3), np.float32)
    alpha = np.zeros((64, 64), np.float32)
    render[30:34, 20:24] = [1.0, 0.0, 0.0]
    alpha[10:50, 10:50] = 1.0
    result = outputs.overlay(original, render, alpha, transform)
    assert result.shape == original.shape and result.dtype == np.uint8
    # crop pixel centre (21.5, 31.5) -> original
    x, y = alignment.apply_transform(alignment.invert_transform(transform), [[21.5, 31.5]])[0]
    assert tuple(result[int(round(y)), int(round(x))]) == (255, 0, 0)
    # outside the covered square the photo is untouched
    x0, y0 = alignment.apply_transform(alignment.invert_transform(transform), [[5.0, 5.0]])[0]
    np.testing.assert_array_equal(result[int(y0), int(x0)], original[int(y0), int(x0)])


def test_composite_and_metrics_of_a_perfect_render():
    crop = np.random.default_rng(1).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    alpha = np.zeros((32, 32), np.float32)
    alpha[8:24, 8:24] = 1
    mask = np.ones((32, 32), np.uint8)
    render = crop.astype(np.float32) / 255.0 * alpha[..., None]
    composited = outputs.composite(render, alpha, crop / 255.0)
    np.testing.assert_allclose(composited, crop / 255.0, atol=1e-6)
    psnr, ssim = outputs.face_metrics(crop, composited, mask, alpha)
    assert psnr > 100 and abs(ssim - 1.0) < 1e-9
