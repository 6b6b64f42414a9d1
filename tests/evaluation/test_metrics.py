"""face_gcn.evaluation.metrics against scikit-image, SciPy and dense NumPy formulas."""

import numpy as np
import pytest
from scipy import stats
from skimage import metrics as skmetrics

from face_gcn.evaluation import metrics


def _random_batch(seed=0, batch=3, height=24, width=20):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (batch, height, width, 3))
    # renders correlated with the images so SSIM is far from 0
    renders = np.clip(images + rng.normal(0, 0.1, images.shape), 0, 1)
    mask = rng.uniform(size=(batch, height, width)) < 0.6
    return images, renders, mask


def test_l1_against_dense_loop():
    images, renders, mask = _random_batch()
    expected = []
    for b in range(images.shape[0]):
        values = [np.mean(np.abs(images[b, i, j] - renders[b, i, j]))
                  for i in range(images.shape[1]) for j in range(images.shape[2]) if mask[b, i, j]]
        expected.append(sum(values) / len(values))
    np.testing.assert_allclose(metrics.masked_l1(images, renders, mask), expected, rtol=1e-12)


def test_psnr_against_skimage_on_masked_pixels():
    images, renders, mask = _random_batch(seed=1)
    got = metrics.masked_psnr(images, renders, mask)
    for b in range(images.shape[0]):
        expected = skmetrics.peak_signal_noise_ratio(images[b][mask[b]], renders[b][mask[b]],
                                                     data_range=1.0)
        assert got[b] == pytest.approx(expected, rel=1e-12)
    got255 = metrics.masked_psnr(images * 255, renders * 255, mask, data_range=255.0)
    np.testing.assert_allclose(got255, got, rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 24, 20), (1, 11, 13), (1, 40, 33)])
def test_ssim_against_skimage_full_map(shape):
    images, renders, mask = _random_batch(seed=2, batch=shape[0], height=shape[1],
                                          width=shape[2])
    got = metrics.masked_ssim(images, renders, mask)
    for b in range(images.shape[0]):
        _, full = skmetrics.structural_similarity(
            images[b], renders[b], data_range=1.0, channel_axis=-1, gaussian_weights=True,
            sigma=1.5, use_sample_covariance=False, full=True)
        expected = full.mean(axis=-1)[mask[b]].mean()
        assert got[b] == pytest.approx(expected, rel=1e-10)
        assert 0.05 < got[b] < 1.0


def test_ssim_full_mask_matches_skimage_map_mean_and_data_range():
    images, renders, _ = _random_batch(seed=3, batch=1)
    _, full = skmetrics.structural_similarity(
        images[0] * 255, renders[0] * 255, data_range=255.0, channel_axis=-1,
        gaussian_weights=True, use_sample_covariance=False, full=True)
    ones = np.ones(images.shape[:3], np.float32)
    got = metrics.masked_ssim(images * 255, renders * 255, ones, data_range=255.0)
    assert got[0] == pytest.approx(full.mean(), rel=1e-10)


def test_identical_images_and_empty_mask():
    images, _, mask = _random_batch(seed=4, batch=2)
    mask[1] = False
    psnr = metrics.masked_psnr(images, images, mask)
    ssim = metrics.masked_ssim(images, images, mask)
    l1 = metrics.masked_l1(images, images, mask)
    assert psnr[0] == np.inf and np.isnan(psnr[1])
    assert ssim[0] == pytest.approx(1.0, abs=1e-12) and np.isnan(ssim[1])
    assert l1[0] == 0.0 and np.isnan(l1[1])


def test_hand_values():
    images = np.zeros((1, 4, 4, 3))
    renders = np.zeros((1, 4, 4, 3))
    renders[0, 0, 0] = [0.3, 0.6, 0.9]   # inside the mask
    renders[0, 3, 3] = 1.0                # outside the mask: ignored
    mask = np.zeros((1, 4, 4))
    mask[0, :2, :2] = 1
    assert metrics.masked_l1(images, renders, mask)[0] == pytest.approx(0.6 / 4)
    mse = (0.09 + 0.36 + 0.81) / 3 / 4
    assert metrics.masked_psnr(images, renders, mask)[0] == pytest.approx(
        10 * np.log10(1 / mse))


def test_mask_forms_are_equivalent():
    images, renders, mask = _random_batch(seed=5)
    ref = metrics.masked_l1(images, renders, mask)
    np.testing.assert_array_equal(metrics.masked_l1(images, renders, mask.astype(np.uint8)), ref)
    np.testing.assert_array_equal(metrics.masked_l1(images, renders, mask.astype(np.float32)),
                                  ref)
    np.testing.assert_array_equal(metrics.masked_l1(images, renders, mask[..., None]), ref)


@pytest.mark.parametrize("fn", [metrics.masked_l1, metrics.masked_psnr, metrics.masked_ssim])
def test_validation(fn):
    images, renders, mask = _random_batch(seed=6, batch=1)
    with pytest.raises(ValueError, match="must be \\[B, H, W, 3\\]"):
        fn(images[0], renders[0], mask[0])
    with pytest.raises(ValueError, match="same shape"):
        fn(images, renders[:, :-1], mask)
    with pytest.raises(ValueError, match="float"):
        fn((images * 255).astype(np.uint8), renders, mask)
    with pytest.raises(ValueError, match="mask must be"):
        fn(images, renders, mask[:, :-1])
    with pytest.raises(ValueError, match="0 or 1"):
        fn(images, renders, mask * 0.5)
    bad = images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="nan or inf"):
        fn(bad, renders, mask)


def test_psnr_ssim_reject_bad_range():
    images, renders, mask = _random_batch(seed=7, batch=1)
    for fn in (metrics.masked_psnr, metrics.masked_ssim):
        with pytest.raises(ValueError, match="data_range"):
            fn(images, renders, mask, data_range=0)


def test_cosine_similarity():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(5, 7))
    b = rng.normal(size=(5, 7))
    b[2] = 3 * a[2]
    b[3] = -a[3]
    a[4] = 0
    got = metrics.cosine_similarity(a, b.astype(np.float32))
    for i in range(4):
        expected = sum(a[i] * b[i]) / np.sqrt(sum(a[i] ** 2) * sum(b[i] ** 2))
        assert got[i] == pytest.approx(expected, rel=1e-6)
    assert got[2] == pytest.approx(1.0) and got[3] == pytest.approx(-1.0)
    assert np.isnan(got[4])
    with pytest.raises(ValueError, match="\\[B, D\\]"):
        metrics.cosine_similarity(a, b[:, :3])
    with pytest.raises(ValueError, match="\\[B, D\\]"):
        metrics.cosine_similarity(a[0], b[0])


@pytest.mark.parametrize("sizes", [(10, 10), (7, 31), (1, 5), (50, 3)])
def test_emd_against_scipy(sizes):
    rng = np.random.default_rng(sizes[0] * 100 + sizes[1])
    same = rng.normal(0.7, 0.1, sizes[0])
    different = rng.normal(0.1, 0.2, sizes[1])
    got = metrics.earth_movers_distance(same, different)
    assert got == pytest.approx(stats.wasserstein_distance(same, different), rel=1e-12)
    assert got == pytest.approx(metrics.earth_movers_distance(different, same), rel=1e-12)


def test_emd_hand_cases_and_ties():
    assert metrics.earth_movers_distance([0.5, 0.5], [0.5]) == 0.0
    # shifting a distribution by d moves it by d
    values = np.array([0.1, 0.4, 0.4, 0.9])
    assert metrics.earth_movers_distance(values, values + 0.25) == pytest.approx(0.25)
    tied = [0.2, 0.2, 0.2, 0.6]
    assert metrics.earth_movers_distance(tied, [0.2, 0.6, 0.6]) == pytest.approx(
        stats.wasserstein_distance(tied, [0.2, 0.6, 0.6]))
    # nan values are ignored
    assert metrics.earth_movers_distance([0.0, np.nan], [1.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty"):
        metrics.earth_movers_distance([], [1.0])
    with pytest.raises(ValueError, match="empty"):
        metrics.earth_movers_distance([1.0], [np.nan])
    with pytest.raises(ValueError, match="inf"):
        metrics.earth_movers_distance([1.0], [np.inf])


def test_summarize():
    got = metrics.summarize([1.0, np.nan, 3.0])
    assert got == {"mean": 2.0, "std": 1.0, "n": 2}
    empty = metrics.summarize([np.nan])
    assert empty["n"] == 0 and np.isnan(empty["mean"]) and np.isnan(empty["std"])
    assert metrics.summarize(np.array([[1.0, 2.0], [3.0, 4.0]]))["n"] == 4
    assert metrics.summarize([np.inf, 30.0])["mean"] == np.inf
