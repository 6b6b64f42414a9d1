"""Image and identity metrics of the paper's evaluation protocol (section 5.2), in NumPy.

Everything is computed in float64. Image metrics compare an input photo with the render of its
reconstruction inside a face-region mask and return one value per image:

  masked_l1    mean over masked pixels of the mean absolute channel difference,
  masked_psnr  10 log10(data_range^2 / MSE), MSE over masked pixels and channels,
  masked_ssim  SSIM map (Wang et al. 2004: Gaussian window sigma 1.5, population covariance,
               K1 0.01, K2 0.03, channels averaged) of the full image, averaged over the mask.

An image whose mask is empty gets nan. Identity metrics work on recognition embeddings:
cosine_similarity per pair, and earth_movers_distance between the distributions of
same-identity and different-identity similarities.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # 11-tap window for sigma 1.5, as Wang et al. and skimage
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _images(name: str, value) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"{name} must be [B, H, W, 3], got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be a float array (e.g. uint8 / 255.0), got dtype "
                         f"{array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains nan or inf")
    return array.astype(np.float64, copy=False)


def _inputs(images, renders, mask):
    """Validated float64 images, renders [B, H, W, 3] and a bool mask [B, H, W]."""
    images = _images("images", images)
    renders = _images("renders", renders)
    if images.shape != renders.shape:
        raise ValueError(f"images and renders must have the same shape, got {images.shape} "
                         f"and {renders.shape}")
    mask = np.asarray(mask)
    if mask.ndim == 4 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.shape != images.shape[:3]:
        raise ValueError(f"mask must be [B, H, W] = {images.shape[:3]}, got shape {mask.shape}")
    if mask.dtype != np.bool_:
        if not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
            raise ValueError(f"mask must be bool or 0/1 numbers, got dtype {mask.dtype}")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError("mask values must be 0 or 1 (or bool)")
        mask = mask == 1
    return images, renders, mask


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """values [B, H, W], mask [B, H, W] bool -> [B] mean over the mask, nan where it is empty."""
    count = mask.sum(axis=(1, 2)).astype(np.float64)
    total = np.where(mask, values, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1.0), np.nan)


def _check_range(data_range) -> float:
    data_range = float(data_range)
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    return data_range


def masked_l1(images, renders, mask) -> np.ndarray:
    """Mean absolute difference inside the mask.

    Args:
      images: [B, H, W, 3] float, input photos in [0, 1].
      renders: [B, H, W, 3] float, renders in [0, 1].
      mask: [B, H, W] bool or 0/1 numbers; True inside the evaluated region.
    Returns:
      [B] float64: mean over masked pixels of mean_c |image - render|; nan for an empty mask.
    """
    images, renders, mask = _inputs(images, renders, mask)
    return _masked_mean(np.abs(images - renders).mean(axis=-1), mask)


def masked_psnr(images, renders, mask, data_range: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio inside the mask, in dB.

    Args:
      images, renders: [B, H, W, 3] float.
      mask: [B, H, W] bool or 0/1 numbers.
      data_range: the pixel value range (1.0 for [0, 1] images).
    Returns:
      [B] float64: 10 log10(data_range^2 / MSE), MSE over masked pixels and channels; inf when
      the masked pixels are identical, nan for an empty mask.
    """
    images, renders, mask = _inputs(images, renders, mask)
    data_range = _check_range(data_range)
    mse = _masked_mean(np.square(images - renders).mean(axis=-1), mask)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(data_range ** 2 / mse)


def ssim_map(images, renders, data_range: float = 1.0) -> np.ndarray:
    """Per-pixel SSIM, channels averaged (skimage's full map with gaussian_weights=True,
    use_sample_covariance=False, mode 'reflect').

    Args:
      images, renders: [B, H, W, 3] float.
      data_range: the pixel value range.
    Returns:
      [B, H, W] float64 SSIM map.
    """
    images = _images("images", images)
    renders = _images("renders", renders)
    if images.shape != renders.shape:
        raise ValueError(f"images and renders must have the same shape, got {images.shape} "
                         f"and {renders.shape}")
    data_range = _check_range(data_range)

    def blur(x):
        return ndimage.gaussian_filter(x, sigma=SSIM_SIGMA, truncate=SSIM_TRUNCATE,
                                       mode="reflect", axes=(1, 2))

    mean_x, mean_y = blur(images), blur(renders)
    var_x = blur(images * images) - mean_x * mean_x
    var_y = blur(renders * renders) - mean_y * mean_y
    cov_xy = blur(images * renders) - mean_x * mean_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ssim = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
            / ((mean_x ** 2 + mean_y ** 2 + c1) * (var_x + var_y + c2)))
    return ssim.mean(axis=-1)


def masked_ssim(images, renders, mask, data_range: float = 1.0) -> np.ndarray:
    """Structural similarity averaged over the mask.

    The SSIM map is computed on the full images (so the window sees pixels around the mask, as
    the paper's protocol of rendering into the photo does), then averaged over masked pixels.

    Args:
      images, renders: [B, H, W, 3] float.
      mask: [B, H, W] bool or 0/1 numbers.
      data_range: the pixel value range.
    Returns:
      [B] float64; 1 for identical images, nan for an empty mask.
    """
    images, renders, mask = _inputs(images, renders, mask)
    return _masked_mean(ssim_map(images, renders, data_range), mask)


def cosine_similarity(a, b) -> np.ndarray:
    """Row-wise cosine similarity.

    Args:
      a, b: [B, D] embeddings.
    Returns:
      [B] float64 in [-1, 1]; nan where either embedding is zero.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"embeddings must be two equal [B, D] arrays, got shapes {a.shape} "
                         f"and {b.shape}")
    if not (np.issubdtype(a.dtype, np.number) and np.issubdtype(b.dtype, np.number)):
        raise ValueError(f"embeddings must be numeric, got dtypes {a.dtype} and {b.dtype}")
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("embeddings contain nan or inf")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = np.einsum("bd,bd->b", a, b) / norms
    return np.where(norms > 0, np.clip(cosine, -1.0, 1.0), np.nan)


def _scores(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64).ravel()
    array = array[~np.isnan(array)]
    if array.size == 0:
        raise ValueError(f"{name} is empty (no values other than nan)")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains inf")
    return array


def earth_movers_distance(same_scores, different_scores) -> float:
    """1-D Wasserstein-1 distance between two empirical distributions (nan values ignored).

    The paper's EMD between the similarities of same-identity and of different-identity pairs:
    the integral over s of |F_same(s) - F_different(s)|, F the empirical CDFs.

    Args:
      same_scores: [N] similarities of same-identity pairs (any shape; flattened).
      different_scores: [M] similarities of different-identity pairs.
    Returns:
      float >= 0, in the units of the scores.
    """
    u = np.sort(_scores("same_scores", same_scores))
    v = np.sort(_scores("different_scores", different_scores))
    points = np.sort(np.concatenate([u, v]))
    widths = np.diff(points)
    cdf_u = np.searchsorted(u, points[:-1], side="right") / u.size
    cdf_v = np.searchsorted(v, points[:-1], side="right") / v.size
    return float(np.sum(np.abs(cdf_u - cdf_v) * widths))


def identity_emd(input_embeddings, render_embeddings, identities) -> float:
    """The paper's EMD between cosine(render i, input j) of same-identity pairs (i == j included) and of
    different-identity pairs.

    Args:
      input_embeddings, render_embeddings: [N, D] each, row i of the same image (a zero row counts as nan,
        left out).
      identities: [N] labels.
    Returns:
      float >= 0. Raises ValueError when there are no pairs of one kind (earth_movers_distance).
    """
    inputs = np.asarray(input_embeddings, np.float64)
    renders = np.asarray(render_embeddings, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        inputs = inputs / np.linalg.norm(inputs, axis=1, keepdims=True)
        renders = renders / np.linalg.norm(renders, axis=1, keepdims=True)
    similarity = renders @ inputs.T  # [render i, input j]
    labels = np.asarray(identities)
    same = labels[:, None] == labels[None, :]
    return earth_movers_distance(similarity[same], similarity[~same])


def summarize(values) -> dict:
    """{'mean', 'std', 'n'} of the non-nan values (std: population, ddof 0); mean and std are nan
    when no value is left. inf values (PSNR of identical images) are kept."""
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    if array.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    with np.errstate(invalid="ignore"):
        return {"mean": float(array.mean()), "std": float(array.std()), "n": int(array.size)}
