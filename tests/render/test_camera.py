"""Tests for Deng's pose and camera against explicit float64 NumPy formulas."""

import math

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import camera


def _axis_rotations(ax, ay, az):
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rx, ry, rz


def _reference_rotation(angles):
    rx, ry, rz = _axis_rotations(*angles)
    return rz @ ry @ rx


def _random_posed(rng, batch=2, num=6):
    """Points in front of the camera, like a face near the origin."""
    return rng.uniform(-1.0, 1.0, size=(batch, num, 3))


def test_euler_rotation_matches_per_axis_product_batched():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-math.pi, math.pi, size=(2, 3, 3))
    got = camera.euler_rotation(angles).numpy()
    assert got.shape == (2, 3, 3, 3)
    for index in np.ndindex(2, 3):
        np.testing.assert_allclose(got[index], _reference_rotation(angles[index]), atol=1e-12)
        np.testing.assert_allclose(got[index] @ got[index].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(got[index]) == pytest.approx(1.0)


def test_rotation_acts_on_column_vectors():
    # A quarter turn about z takes +x to +y for column vectors (p' = R p).
    rotation = camera.euler_rotation([0.0, 0.0, math.pi / 2]).numpy()
    np.testing.assert_allclose(rotation @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-7)
    # Positive yaw (about y) turns the nose (+z) towards +x.
    rotation = camera.euler_rotation([0.0, math.pi / 2, 0.0]).numpy()
    np.testing.assert_allclose(rotation @ [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], atol=1e-7)


def test_rigid_transform_reproduces_deng_row_vector_form():
    rng = np.random.default_rng(1)
    vertices = rng.normal(size=(3, 5, 3))
    angles = rng.uniform(-1, 1, size=(3, 3))
    translation = rng.normal(size=(3, 3))
    got = camera.rigid_transform(vertices, angles, translation).numpy()
    for b in range(3):
        # Deng: rows times the transposed Rz Ry Rx, then add the translation.
        transposed = _reference_rotation(angles[b]).T
        expected = vertices[b] @ transposed + translation[b]
        np.testing.assert_allclose(got[b], expected, atol=1e-12)


def test_rotate_normals_matches_matrix_product():
    rng = np.random.default_rng(2)
    normals = rng.normal(size=(2, 4, 3))
    angles = rng.uniform(-1, 1, size=(2, 3))
    got = camera.rotate(normals, camera.euler_rotation(angles)).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], (_reference_rotation(angles[b]) @ normals[b].T).T,
                                   atol=1e-12)


def test_perspective_project_matches_formula():
    rng = np.random.default_rng(3)
    posed = _random_posed(rng)
    got = camera.perspective_project(posed).numpy()
    depth = 10.0 - posed[..., 2]
    np.testing.assert_allclose(got[..., 0], 1015.0 * posed[..., 0] / depth + 112.0, atol=1e-9)
    np.testing.assert_allclose(got[..., 1], 1015.0 * posed[..., 1] / depth + 112.0, atol=1e-9)
    # The origin lands on the principal point; +y goes up (larger v).
    origin = camera.perspective_project(np.zeros((1, 1, 3))).numpy()
    np.testing.assert_allclose(origin, [[[112.0, 112.0]]])
    up = camera.perspective_project(np.array([[[0.0, 0.1, 0.0]]])).numpy()
    assert up[0, 0, 1] > 112.0


def test_perspective_project_custom_camera():
    rng = np.random.default_rng(4)
    posed = _random_posed(rng)
    got = camera.perspective_project(posed, focal=500.0, center=(100.0, 60.0),
                                     camera_distance=5.0).numpy()
    depth = 5.0 - posed[..., 2]
    expected = np.stack([500.0 * posed[..., 0] / depth + 100.0,
                         500.0 * posed[..., 1] / depth + 60.0], axis=-1)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_to_image_coordinates_flips_v():
    uv = np.array([[0.0, 0.0], [10.5, 223.5], [112.0, 112.0]])
    got = camera.to_image_coordinates(uv, image_height=224).numpy()
    np.testing.assert_allclose(got, [[0.0, 224.0], [10.5, 0.5], [112.0, 112.0]])


def test_project_landmarks():
    rng = np.random.default_rng(5)
    posed = _random_posed(rng, num=10)
    indices = np.array([3, 0, 9, 3])
    got = camera.project_landmarks(posed, indices).numpy()
    chosen = posed[:, indices]
    depth = 10.0 - chosen[..., 2]
    expected = 1015.0 * chosen[..., :2] / depth[..., None] + 112.0
    np.testing.assert_allclose(got, expected, atol=1e-9)
    rows = camera.project_landmarks(posed, indices, image_height=224).numpy()
    np.testing.assert_allclose(rows[..., 1], 224.0 - expected[..., 1], atol=1e-9)
    with pytest.raises(ValueError, match=r"landmark_indices must lie in \[0, 10\)"):
        camera.project_landmarks(posed, [0, 10])


def _opengl_reference_clip(posed, fov_y, aspect, near, far, camera_z):
    """Look-at camera at (0, 0, camera_z) towards the origin, y up, standard GL frustum."""
    f = 1.0 / math.tan(fov_y / 2.0)
    projection = np.array([
        [f / aspect, 0, 0, 0],
        [0, f, 0, 0],
        [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
        [0, 0, -1, 0]])
    eye = posed - [0.0, 0.0, camera_z]
    homogeneous = np.concatenate([eye, np.ones(eye.shape[:-1] + (1,))], axis=-1)
    return homogeneous @ projection.T


def test_deng_clip_space_equals_opengl_perspective_with_deng_fov():
    rng = np.random.default_rng(6)
    posed = _random_posed(rng)
    got = camera.deng_clip_space(posed).numpy()
    expected = _opengl_reference_clip(posed, 2 * math.atan(112 / 1015), 1.0, 0.01, 50.0, 10.0)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    assert camera.field_of_view_y() == pytest.approx(2 * math.atan(112 / 1015))


@pytest.mark.parametrize("center,width,height", [(112.0, 224, 224), ((90.0, 70.0), 160, 128)])
def test_clip_space_ndc_lands_on_projected_pixels(center, width, height):
    rng = np.random.default_rng(7)
    posed = _random_posed(rng)
    clip = camera.deng_clip_space(posed, focal=800.0, center=center, image_width=width,
                                  image_height=height).numpy()
    ndc = clip[..., :3] / clip[..., 3:]
    uv = camera.perspective_project(posed, focal=800.0, center=center).numpy()
    # Rasterizer convention: column = (x_ndc + 1) W / 2, row (from NDC y = -1) = (y_ndc + 1) H / 2.
    np.testing.assert_allclose((ndc[..., 0] + 1) * width / 2, uv[..., 0], atol=1e-9)
    np.testing.assert_allclose((ndc[..., 1] + 1) * height / 2, uv[..., 1], atol=1e-9)
    # After the renderer's row flip (row 0 = top), rows equal to_image_coordinates.
    image = camera.to_image_coordinates(uv, image_height=height).numpy()
    np.testing.assert_allclose(height - (ndc[..., 1] + 1) * height / 2, image[..., 1], atol=1e-9)
    np.testing.assert_allclose(clip[..., 3], 10.0 - posed[..., 2], atol=1e-12)


def test_clip_space_depth_range():
    posed = np.array([[[0.0, 0.0, 10.0 - 0.01], [0.0, 0.0, 10.0 - 50.0], [0.0, 0.0, 0.0]]])
    clip = camera.deng_clip_space(posed).numpy()
    ndc_z = clip[..., 2] / clip[..., 3]
    np.testing.assert_allclose(ndc_z[0, :2], [-1.0, 1.0], atol=1e-9)
    assert -1.0 < ndc_z[0, 2] < 1.0
    with pytest.raises(ValueError, match="near < far"):
        camera.deng_clip_space(posed, near=5.0, far=1.0)


def _check_gradient(function, inputs):
    theoretical, numerical = tf.test.compute_gradient(function, [tf.constant(x) for x in inputs])
    for analytic, numeric in zip(theoretical, numerical):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6)


def test_rigid_transform_gradient():
    rng = np.random.default_rng(8)
    _check_gradient(camera.rigid_transform,
                    [rng.normal(size=(2, 3, 3)), rng.uniform(-1, 1, size=(2, 3)),
                     rng.normal(size=(2, 3))])


def test_perspective_project_and_clip_space_gradients():
    rng = np.random.default_rng(9)
    posed = _random_posed(rng, num=4)
    _check_gradient(camera.perspective_project, [posed])
    _check_gradient(camera.deng_clip_space, [posed])


def test_shape_errors():
    with pytest.raises(ValueError, match=r"angles must have shape \[\.\.\., 3\]"):
        camera.euler_rotation(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"vertices must have shape \[B, V, 3\]"):
        camera.rigid_transform(np.zeros((4, 3)), np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"translation must have shape \[B, 3\]"):
        camera.rigid_transform(np.zeros((1, 4, 3)), np.zeros((1, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"posed must have shape"):
        camera.perspective_project(np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match="floating"):
        camera.perspective_project(np.zeros((1, 4, 3), np.int32))


def test_to_pixel_indices_moves_centres_to_integers():
    xy = np.array([[0.5, 0.5], [223.5, 10.25]], np.float32)
    np.testing.assert_array_equal(camera.to_pixel_indices(xy).numpy(), [[0.0, 0.0], [223.0, 9.75]])
    with pytest.raises(ValueError):
        camera.to_pixel_indices(np.zeros((2, 3), np.float32))


def test_photo_window_clip_space_carries_the_crop_camera_back_to_the_photo():
    """Through an identity alignment it is the crop's camera; through a photo twice the crop's size it is
    Deng's camera at twice the size; a window shifts NDC by its offset; the projected points land on the
    inverse alignment of the crop's projections (rotation and scale, float64 reference)."""
    rng = np.random.default_rng(5)
    posed = rng.normal(0.0, 0.6, (1, 40, 3)).astype(np.float32)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(camera.photo_window_clip_space(posed, 224, identity, (0, 0, 224, 224)).numpy(),
                               camera.deng_clip_space(posed).numpy(), rtol=1e-5, atol=1e-4)
    halve = np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25]])  # photo index -> crop index of a 2x photo
    np.testing.assert_allclose(camera.photo_window_clip_space(posed, 224, halve, (0, 0, 448, 448)).numpy(),
                               camera.deng_clip_space(posed, focal=2 * camera.DENG_FOCAL, center=224.0,
                                                      image_width=448, image_height=448).numpy(),
                               rtol=1e-5, atol=1e-4)
    angle, scale = np.deg2rad(25.0), 0.7
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transform = np.hstack([linear, [[-30.0], [12.0]]])  # photo -> crop pixel indices
    window = (17, 9, 300, 260)
    clip = camera.photo_window_clip_space(posed, 96, transform, window).numpy()[0].astype(np.float64)
    column = (clip[:, 0] / clip[:, 3] + 1.0) * 0.5 * window[2] - 0.5 + window[0]
    row = (1.0 - clip[:, 1] / clip[:, 3]) * 0.5 * window[3] - 0.5 + window[1]
    # reference: the crop's pixel indices of each vertex, mapped back by the inverse affine in float64
    p = posed[0].astype(np.float64)
    focal, depth = camera.DENG_FOCAL * 96 / 224, camera.DENG_CAMERA_DISTANCE - p[:, 2]
    crop = np.stack([focal * p[:, 0] / depth + 48.0 - 0.5, 96 - (focal * p[:, 1] / depth + 48.0) - 0.5], 1)
    photo = np.linalg.solve(linear, (crop - transform[:, 2]).T).T
    np.testing.assert_allclose(np.stack([column, row], 1), photo, atol=2e-3)
    with pytest.raises(ValueError, match="positive"):
        camera.photo_window_clip_space(posed, 96, transform, (0, 0, 0, 10))
