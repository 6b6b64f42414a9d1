"""face_gcn.data.alignment against independent computations."""

import numpy as np
import pytest

from face_gcn.data import alignment


def _project(points3d, scale, translation, rotation=np.eye(3)):
    """Orthographic image of model points: x right, image y down (model y up)."""
    rotated = points3d @ rotation.T
    return np.stack([scale * rotated[:, 0] + translation[0],
                     -scale * rotated[:, 1] + translation[1]], axis=1)


def _deng_pos(image_points, points3d, image_height):
    """Deng's POS written out in full: y flipped to point up (h - 1 - y), 8 unknowns."""
    flipped = np.stack([image_points[:, 0], image_height - 1 - image_points[:, 1]], axis=1)
    design = np.zeros((10, 8))
    design[0::2, 0:3] = points3d
    design[0::2, 3] = 1
    design[1::2, 4:7] = points3d
    design[1::2, 7] = 1
    k = np.linalg.lstsq(design, flipped.reshape(-1), rcond=None)[0]
    scale = 0.5 * (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7]))
    return scale, np.array([k[3], k[7]])


@pytest.mark.parametrize("crop_size", [224, 512])
def test_a_scaled_shifted_face_maps_to_the_standard_positions(standard_landmarks, crop_size):
    points = _project(standard_landmarks, 173.0, np.array([310.0, 205.0]))
    transform = alignment.alignment_transform(points, standard_landmarks, crop_size)
    aligned = alignment.apply_transform(transform, points)
    unit = 102.0 * crop_size / 224.0  # Deng: one model unit -> 102 px in the 224 crop
    expected = np.stack([unit * standard_landmarks[:, 0], -unit * standard_landmarks[:, 1]],
                        axis=1) + crop_size / 2 - 0.5  # pixel-index coordinates
    np.testing.assert_allclose(aligned, expected, atol=1e-9)


def test_rolled_and_turned_faces_keep_the_scale(standard_landmarks):
    roll = np.deg2rad(25)
    rotation = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0],
                         [0, 0, 1]])
    points = _project(standard_landmarks, 90.0, np.array([50.0, 80.0]), rotation)
    scale, translation = alignment.fit_scale_translation(points, standard_landmarks)
    assert scale == pytest.approx(90.0, rel=1e-9)
    np.testing.assert_allclose(translation, [50.0, 80.0], atol=1e-9)


def test_matches_deng_pos_on_noisy_points(standard_landmarks):
    rng = np.random.default_rng(3)
    height = 480
    for _ in range(5):
        points = _project(standard_landmarks, rng.uniform(50, 300), rng.uniform(100, 400, 2))
        points += rng.normal(0, 3, points.shape)
        scale, translation = alignment.fit_scale_translation(points, standard_landmarks)
        deng_scale, deng_t = _deng_pos(points, standard_landmarks, height)
        assert scale == pytest.approx(deng_scale, rel=1e-9)
        # Deng's t is in y-up coordinates: t_y(up) = h - 1 - t_y(down)
        np.testing.assert_allclose([translation[0], height - 1 - translation[1]], deng_t,
                                   atol=1e-7)


def test_inverse_round_trip():
    transform = np.array([[1.7, 0.0, -30.0], [0.0, 1.7, 12.5]])
    points = np.array([[0.0, 0.0], [10.0, -3.0], [223.0, 100.0]])
    back = alignment.apply_transform(alignment.invert_transform(transform),
                                     alignment.apply_transform(transform, points))
    np.testing.assert_allclose(back, points, atol=1e-12)


def _ramp(height, width):
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols, rows, (cols + rows) // 2], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("k, tolerance", [(1.0, 0), (2.5, 1.01), (0.3, 1.6)])
def test_warp_samples_the_photo_where_the_transform_says(k, tolerance):
    image = _ramp(200, 240)
    size = 48
    transform = np.array([[k, 0.0, -k * 20.0], [0.0, k, -k * 30.0]])
    crop = alignment.warp_to_crop(image, transform, size).astype(np.float64)
    inverse = alignment.invert_transform(transform)
    rows, cols = np.mgrid[0:size, 0:size]
    source = alignment.apply_transform(inverse, np.stack([cols.ravel(), rows.ravel()], 1))
    x, y = source[:, 0].reshape(size, size), source[:, 1].reshape(size, size)
    inside = (x >= 1) & (y >= 1) & (x <= 238) & (y <= 198)
    assert inside.mean() > 0.5
    expected = np.stack([x, y, (x + y) / 2], axis=-1)
    # channel 2 is floor((x+y)/2) in the photo: up to 0.5 lower than the linear value
    error = np.abs(crop - expected)[inside]
    assert error[:, :2].max() <= tolerance + 0.51
    assert error[:, 2].max() <= tolerance + 1.01
    assert np.all(crop[~((x > -1) & (y > -1) & (x < 240) & (y < 200))] == 0)


def test_bad_shapes_are_refused(standard_landmarks):
    with pytest.raises(ValueError, match=r"\[5, 2\]"):
        alignment.alignment_transform(np.zeros((4, 2)), standard_landmarks)
    with pytest.raises(ValueError, match="degenerate"):
        alignment.alignment_transform(np.zeros((5, 2)), standard_landmarks)


def test_a_face_rendered_by_our_camera_is_already_aligned():
    """Alignment and the renderer agree: aligning a frontal render of the mean face to the
    model's standard landmarks is (nearly) the identity map, centre included."""
    from face_gcn.morphable import configured
    from face_gcn.render import camera, face_renderer

    model = configured.load_demo()
    coefficients = np.zeros((1, 257), np.float32)
    # Shape formation recentres on the mean shape's centroid (as Deng); translating back by
    # it puts the mean face in the frame of the standard landmarks.
    coefficients[0, 254:] = model.mean_shape.mean(axis=0)
    render = face_renderer.render_coefficients(model, coefficients)
    marks = camera.to_pixel_indices(render.landmarks[0]).numpy().astype(np.float64)
    five = np.stack([marks[36:42].mean(0), marks[42:48].mean(0), marks[30], marks[48], marks[54]])
    transform = alignment.alignment_transform(five, model.alignment_landmarks)
    # Deng's 102 px per unit vs our camera's 1015 / (10 - z) ~ 101.5-107 px per unit.
    assert abs(transform[0, 0] - 1.0) < 0.06 and abs(transform[1, 1] - 1.0) < 0.06
    aligned = alignment.apply_transform(transform, five)
    # Deng's fit is affine (p ~ P X + t) while the camera is perspective: about 1-2 px apart.
    assert np.abs(aligned - five).max() < 2.0, aligned - five
