"""Albedo read back from a photo: a face rendered with a known albedo and light gives that albedo back."""

import numpy as np
import pytest

from face_gcn.evaluation import albedo as albedo_lib
from face_gcn.morphable import coefficients as coeff_lib, configured, sampling
from face_gcn.morphable import formation
from face_gcn.render import face_renderer, lighting
from face_gcn.synthesis import dataset as synthetic

SIZE = 128


@pytest.fixture(scope="module")
def scene():
    model = configured.load_demo()
    rng = np.random.default_rng(5)
    coefficients = sampling.sample_coefficients(rng, 2, shape_scale=0.5, light_scale=0.5)
    albedo = formation.albedo_from_model(model, coeff_lib.split_coefficients(coefficients).tex).numpy()
    albedo = np.clip(albedo, 0.0, 1.0)
    render = synthetic.render_with_albedo(model, coefficients, albedo, np.ones(model.num_vertices), SIZE)
    return model, coefficients, albedo, render.image.numpy(), render.alpha.numpy()


def test_true_coefficients_give_the_albedo_back(scene):
    model, coefficients, albedo, image, alpha = scene
    read = albedo_lib.photo_albedo(model, coefficients, image, alpha)
    visible = read.visible & np.asarray(model.front_mask, bool)[None]
    assert visible.sum(axis=1).min() > 0.3 * model.num_vertices
    distance = np.sqrt(((read.quotient - albedo) ** 2).sum(-1))[visible]
    assert np.median(distance) < 0.01 and distance.mean() < 0.02, (np.median(distance), distance.mean())


def test_a_brighter_assumed_light_darkens_the_albedo_read_back(scene):
    model, coefficients, albedo, image, alpha = scene
    # Adding d to every channel's DC term scales Deng's shading by (1 + d A0 Y0 / s) where s is the
    # shading: compare against that formula (float64), computed from the true shading.
    brighter = coefficients.copy()
    gamma = coeff_lib.BLOCK_SLICES["gamma"]
    brighter[:, gamma.start:gamma.stop:9] += 0.3
    read = albedo_lib.photo_albedo(model, brighter, image, alpha)
    true_read = albedo_lib.photo_albedo(model, coefficients, image, alpha)
    visible = read.visible & true_read.visible & np.asarray(model.front_mask, bool)[None]
    normals = face_renderer.render_coefficients(model, coefficients, image_size=SIZE).normals
    gamma_values = coeff_lib.split_coefficients(coefficients).gamma
    shading = lighting.illuminate(np.ones_like(albedo, np.float32), normals, gamma_values).numpy().astype(np.float64)
    added = 0.3 * np.pi / np.sqrt(4.0 * np.pi)  # Deng's band-0 basis value a0 c0 times the added DC
    expected = np.clip(true_read.quotient * shading / (shading + added), 0.0, 1.0)
    np.testing.assert_allclose(read.quotient[visible], expected[visible], atol=2e-4)


def test_albedo_error_is_the_mean_euclidean_distance_over_the_mask():
    albedo = np.zeros((2, 3, 3))
    truth = np.zeros((2, 3, 3))
    truth[0, 0] = [3.0, 4.0, 0.0]      # distance 5
    truth[0, 1] = [0.0, 0.0, 1.0]      # distance 1
    truth[1, 2] = [2.0, 0.0, 0.0]      # distance 2
    mask = np.array([[True, True, False], [False, False, False]])
    errors = albedo_lib.albedo_error(albedo, truth, mask)
    assert errors[0] == pytest.approx(3.0) and np.isnan(errors[1])
    np.testing.assert_allclose(albedo_lib.albedo_error(albedo, truth, [True, False, True]), [2.5, 1.0])


def test_bad_shapes_are_named():
    model = configured.load_demo()
    with pytest.raises(ValueError, match="coefficients must be"):
        albedo_lib.photo_albedo(model, np.zeros((1, 10)), np.zeros((1, 64, 64, 3)))
    with pytest.raises(ValueError, match="images must be"):
        albedo_lib.photo_albedo(model, np.zeros((1, 257)), np.zeros((2, 64, 64, 3)))
    with pytest.raises(ValueError, match="albedo and truth"):
        albedo_lib.albedo_error(np.zeros((1, 4, 3)), np.zeros((1, 5, 3)), [True] * 4)
