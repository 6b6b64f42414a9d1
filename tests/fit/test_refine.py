"""Test-time refinement: lowers the masked photometric error, keeps occluded vertices, blend formula."""

import numpy as np
import pytest
import scipy.sparse as sp

from face_gcn.fit import coarse_fit, refine
from face_gcn.synthesis import dataset


def masked_error(image, render, mask):
    """Mean per-pixel Euclidean colour distance over the mask (float64 NumPy)."""
    distance = np.linalg.norm(np.asarray(image, np.float64) - render, axis=-1)
    return float((distance * mask).sum() / mask.sum())


@pytest.fixture(scope="module")
def refined_sample(demo_model):
    # a face whose albedo carries detail the 3DMM basis cannot represent, over a background
    # detail three times the default: above what the 3DMM albedo basis and the fit can absorb
    batch = dataset.generate_batch(demo_model, 7, "train", [0],
                                   dataset.SyntheticConfig(noise_std=0.0, detail_scale=3.0))
    image, mask, landmarks = batch.images[0], batch.masks[0], batch.landmarks[0]
    fit = coarse_fit.fit_coefficients(demo_model, image, mask, landmarks)
    refiner = refine.TextureRefiner(demo_model, 224, refine.RefineConfig(steps=120))
    result = refiner.refine(image, mask, fit.coefficients)
    return batch, fit, result


def test_refinement_lowers_masked_error(demo_model, refined_sample):
    batch, fit, result = refined_sample
    image = batch.images[0] / 255.0
    coarse_render, alpha = refine.render_albedo(demo_model, fit.coefficients, result.coarse_albedo)
    refined_render, _ = refine.render_albedo(demo_model, fit.coefficients, result.albedo)
    region = alpha * batch.masks[0]
    coarse_error = masked_error(image, coarse_render, region)
    refined_error = masked_error(image, refined_render, region)
    assert refined_error < 0.92 * coarse_error, (coarse_error, refined_error)
    # and the refined albedo is closer to the ground-truth albedo at visible vertices
    visible = result.visibility > 0.5
    truth = batch.albedo[0]
    assert np.abs(result.albedo - truth)[visible].mean() < np.abs(result.coarse_albedo - truth)[visible].mean()


def test_occluded_vertices_keep_the_3dmm_albedo(refined_sample):
    _, _, result = refined_sample
    hidden = result.visibility < 0.5
    assert 0 < hidden.sum() < len(hidden)
    np.testing.assert_array_equal(result.albedo[hidden], result.coarse_albedo[hidden])
    assert np.all((result.albedo >= 0) & (result.albedo <= 1))
    assert np.all(np.isfinite(list(result.losses.values())))


def test_visibility_blend_matches_dense_formula():
    rng = np.random.default_rng(0)
    dense = rng.uniform(0, 1, (12, 12)) * (rng.uniform(0, 1, (12, 12)) < 0.4)
    dense = dense + dense.T
    dense[0, 1] = dense[1, 0] = 1.0
    vis = (rng.uniform(0, 1, 12) < 0.6).astype(np.float64)
    walk = dense / np.maximum(dense.sum(axis=1, keepdims=True), 1e-12)
    expected = vis * (walk @ (walk @ (walk @ vis)))
    np.testing.assert_allclose(refine.visibility_blend(vis, sp.csr_matrix(dense), 3), expected, atol=1e-6)
    np.testing.assert_allclose(refine.visibility_blend(vis, sp.csr_matrix(dense), 0), vis)


def test_refine_input_checks(demo_model):
    refiner = refine.TextureRefiner(demo_model, 224, refine.RefineConfig(steps=1))
    with pytest.raises(ValueError, match="image must be"):
        refiner.refine(np.zeros((64, 64, 3)), np.zeros((224, 224)), np.zeros(257))
    with pytest.raises(ValueError, match="coefficients must be"):
        refiner.refine(np.zeros((224, 224, 3)), np.zeros((224, 224)), np.zeros(200))
    with pytest.raises(ValueError):
        refine.RefineConfig(learning_rate=0.0)
