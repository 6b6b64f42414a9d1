"""Coarse fit: pose recovery on generated faces, error reduction on a real photo, input checks."""

import numpy as np
import pytest

from face_gcn.fit import coarse_fit
from face_gcn.losses import photometric
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.render import face_renderer, lighting

from .conftest import generated_face

ANGLE_TOLERANCE_DEG = 3.0       # each Euler angle
SHIFT_TOLERANCE = 0.03          # x, y translation, model units (about 3 px at 224)

ANGLES = coeff_lib.BLOCK_SLICES["angles"]
TRANSLATION = coeff_lib.BLOCK_SLICES["translation"]


@pytest.fixture(scope="module")
def fitter(demo_model):
    return coarse_fit.CoarseFitter(demo_model, 224)


@pytest.mark.parametrize("seed", [1])
def test_recovers_pose_from_five_landmarks_and_pixels(demo_model, fitter, seed):
    image, mask, landmarks5, _, truth = generated_face(demo_model, seed)
    result = fitter.fit(image, mask, landmarks5)
    error = np.rad2deg(np.abs(result.coefficients[ANGLES] - truth[ANGLES]))
    assert np.all(error < ANGLE_TOLERANCE_DEG), (error, np.rad2deg(truth[ANGLES]))
    shift = np.abs(result.coefficients[TRANSLATION][:2] - truth[TRANSLATION][:2])
    assert np.all(shift < SHIFT_TOLERANCE), shift
    # the fitted face explains the photo: masked colour error at the level of the 8-bit noise
    assert result.losses["appearance"]["photometric"] < 0.03
    assert np.all(np.isfinite(result.coefficients))


def test_68_landmarks_accepted_and_pose_recovered(demo_model, fitter):
    image, mask, _, landmarks68, truth = generated_face(demo_model, 3)
    result = fitter.fit(image, mask, landmarks68)
    error = np.rad2deg(np.abs(result.coefficients[ANGLES] - truth[ANGLES]))
    assert np.all(error < ANGLE_TOLERANCE_DEG), error


def test_astronaut_render_covers_face_and_error_drops(demo_model, fitter, astronaut_crop):
    crop, mask, landmarks = astronaut_crop
    result = fitter.fit(crop, mask, landmarks)
    image = crop[None].astype(np.float32) / 255.0

    def error(coefficients):
        render = face_renderer.render_coefficients(demo_model, coefficients[None], 224)
        alpha = render.alpha.numpy()[0]
        loss = float(photometric.pixel_loss(image, render.image, render.alpha * mask[None].astype(np.float32)))
        return loss, alpha

    initial, _ = error(np.zeros(257, np.float32))
    final, alpha = error(result.coefficients)
    assert final < 0.7 * initial, (initial, final)
    covered, face = alpha > 0.5, mask > 0
    iou = (covered & face).sum() / (covered | face).sum()
    assert iou > 0.6, iou


def test_input_checks(demo_model, fitter):
    image = np.zeros((224, 224, 3), np.uint8)
    mask = np.ones((224, 224), np.uint8)
    with pytest.raises(ValueError, match="image must be"):
        fitter.fit(np.zeros((100, 100, 3)), mask, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="mask must be"):
        fitter.fit(image, np.ones((10, 10)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="landmarks must be"):
        fitter.fit(image, mask, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="unknown loss weights"):
        coarse_fit.FitConfig(weights={"photo": 1.0})
    with pytest.raises(ValueError, match="unknown blocks"):
        coarse_fit.FitConfig(stages=(coarse_fit.Stage("x", 1, {"pose": 0.1}),))


@pytest.fixture(scope="module")
def synthetic_faces(demo_model):
    from face_gcn.synthesis import dataset as synthetic
    return synthetic.generate_batch(demo_model, 5, "heldout", range(6), synthetic.SyntheticConfig(image_size=64))


def _perturbed(truth, seed):
    """The truth as a regressor would give it: pose 5 degrees / 0.03 units off, shape, expression and albedo at
    30%, light off by 0.05 per coefficient."""
    rng = np.random.default_rng(seed)
    initial = truth.copy()
    initial[:, ANGLES] += rng.normal(0.0, np.deg2rad(5.0), (len(truth), 3))
    initial[:, TRANSLATION] += rng.normal(0.0, 0.03, (len(truth), 3))
    for block in ("id", "exp", "tex"):
        initial[:, coeff_lib.BLOCK_SLICES[block]] *= 0.3
    initial[:, coeff_lib.BLOCK_SLICES["gamma"]] += rng.normal(0.0, 0.05, (len(truth), 27))
    return initial.astype(np.float32)


def test_regress_then_fit_recovers_pose_and_light(demo_model, synthetic_faces):
    faces = synthetic_faces
    truth = faces.coefficients
    initial = _perturbed(truth, 0)
    fitter = coarse_fit.CoarseFitter(demo_model, 64, coarse_fit.refinement_config(20, num_landmarks=68))
    result = fitter.fit_batch(faces.images, faces.masks, faces.landmarks68, initial)

    def angle_rmse(coefficients):
        return np.sqrt(np.mean(np.rad2deg(coefficients[:, ANGLES] - truth[:, ANGLES]) ** 2))

    def light_rmse(coefficients):
        gamma = coeff_lib.BLOCK_SLICES["gamma"]
        return np.sqrt(np.mean((coefficients[:, gamma] - truth[:, gamma]) ** 2))

    assert angle_rmse(result.coefficients) < 0.5 * angle_rmse(initial), (angle_rmse(initial),
                                                                        angle_rmse(result.coefficients))
    assert light_rmse(result.coefficients) < 0.85 * light_rmse(initial)
    assert set(result.losses) == {"landmarks", "joint"}
    assert result.losses["joint"]["photometric"].shape == (6,)


def test_a_face_fits_the_same_alone_and_in_a_batch(demo_model, synthetic_faces):
    faces = synthetic_faces
    initial = _perturbed(faces.coefficients, 1)
    fitter = coarse_fit.CoarseFitter(demo_model, 64, coarse_fit.refinement_config(8))
    together = fitter.fit_batch(faces.images[:3], faces.masks[:3], faces.landmarks[:3], initial[:3])
    alone = fitter.fit_batch(faces.images[1:2], faces.masks[1:2], faces.landmarks[1:2], initial[1:2])
    np.testing.assert_allclose(alone.coefficients[0], together.coefficients[1], atol=2e-3)
    assert not np.allclose(together.coefficients[0], together.coefficients[1], atol=2e-3)


def test_zero_steps_is_the_start_and_bad_batches_are_refused(demo_model, synthetic_faces):
    faces = synthetic_faces
    initial = _perturbed(faces.coefficients, 2)
    stages = coarse_fit.FitConfig(stages=(coarse_fit.Stage("none", 0, {"angles": 0.1}),))
    result = coarse_fit.CoarseFitter(demo_model, 64, stages).fit_batch(faces.images, faces.masks, faces.landmarks,
                                                                       initial)
    np.testing.assert_array_equal(result.coefficients, initial)
    assert coarse_fit.refinement_stages(0) == ()
    fitter = coarse_fit.CoarseFitter(demo_model, 64, coarse_fit.refinement_config(1))
    with pytest.raises(ValueError, match="landmarks must be"):
        fitter.fit_batch(faces.images, faces.masks, faces.landmarks[:2])
    with pytest.raises(ValueError, match="initial must be"):
        fitter.fit_batch(faces.images, faces.masks, faces.landmarks, initial[:2])


def test_solve_light_recovers_the_light_of_true_geometry_and_albedo(demo_model, synthetic_faces):
    """With pose, shape and albedo at the truth, the closed-form light lands near the true light
    (the synthetic albedo's detail and the sensor noise are what is left), from 0.05 off per
    coefficient; a face with no visible skin keeps its light."""
    faces = synthetic_faces
    truth = faces.coefficients.astype(np.float32)
    gamma = coeff_lib.BLOCK_SLICES["gamma"]
    start = truth.copy()
    start[:, gamma] += np.random.default_rng(3).normal(0.0, 0.05, (len(truth), 27))
    images = faces.images.astype(np.float32) / 255.0 if faces.images.dtype == np.uint8 else faces.images
    masks = faces.masks.astype(np.float32)
    masks[0] = 0.0  # no visible skin
    solved = coarse_fit.solve_light(demo_model, start, images, masks).numpy()
    normals = face_renderer.render_coefficients(demo_model, truth[1:], image_size=64).normals
    skin = np.asarray(demo_model.skin_mask, bool)

    def shading_error(coefficients):  # RMS over skin vertices; the high SH bands are ill-conditioned,
        shading = lighting.sh_shading(normals, coefficients[1:, gamma]).numpy()  # the shading is not
        return np.sqrt(np.mean((shading - lighting.sh_shading(normals, truth[1:, gamma]).numpy())[:, skin] ** 2))

    assert shading_error(solved) < 0.4 * shading_error(start), (shading_error(start), shading_error(solved))
    assert np.sqrt(np.mean((solved[1:, gamma] - truth[1:, gamma]) ** 2)) < 0.05
    np.testing.assert_allclose(solved[0], start[0], atol=1e-6)
    others = np.ones(257, bool)
    others[gamma] = False
    np.testing.assert_array_equal(solved[:, others], start[:, others])


def test_identity_term_with_dlibs_descriptor(demo_model):
    """With a recognition network the rendered stages add L_id (weighted 1 - cos), and it moves the fit."""
    from face_gcn.nets import recognition
    size = 112
    image, mask, landmarks5, _, _ = generated_face(demo_model, 5, size=size)
    config = coarse_fit.FitConfig(stages=coarse_fit.default_stages(10, 10, 0, 0))
    recognizer = recognition.build("face_descriptor")
    with_id = coarse_fit.CoarseFitter(demo_model, size, config, recognizer=recognizer).fit(image, mask, landmarks5)
    without = coarse_fit.CoarseFitter(demo_model, size, config).fit(image, mask, landmarks5)
    assert "identity" not in without.losses["shape"] and "identity" not in with_id.losses["pose"]
    assert 0.0 < with_id.losses["shape"]["identity"] <= 2.0 * config.weights["identity"]
    assert np.abs(with_id.coefficients - without.coefficients).max() > 1e-4
