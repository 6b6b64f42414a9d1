"""camera_utils against closed-form NumPy matrices (gluLookAt, gluPerspective, Euler XYZ)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import camera_utils


def test_look_at_maps_eye_to_origin_and_center_to_minus_z():
    eye = np.array([[2.0, 3.0, 6.0], [-3.0, 1.0, 6.0]], np.float32)
    center = np.array([[0.0, 0.0, 0.0], [0.5, -0.2, 0.1]], np.float32)
    up = np.array([[0.0, 1.0, 0.0], [0.1, 1.0, 0.15]], np.float32)
    matrices = camera_utils.look_at(eye, center, up).numpy()
    for b in range(2):
        m = matrices[b]
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-6)
        np.testing.assert_allclose(m @ np.append(eye[b], 1.0), [0, 0, 0, 1], atol=1e-5)
        distance = np.linalg.norm(center[b] - eye[b])
        np.testing.assert_allclose(m @ np.append(center[b], 1.0), [0, 0, -distance, 1],
                                   atol=1e-5)
        # the up vector lands in the eye-space y-z plane with positive y
        rotated_up = m[:3, :3] @ up[b]
        assert abs(rotated_up[0]) < 1e-6 and rotated_up[1] > 0


def test_look_at_degenerate_raises():
    with pytest.raises(tf.errors.InvalidArgumentError):
        camera_utils.look_at([[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]])


def test_perspective_matches_glu_formula():
    fov, near, far, aspect = 40.0, 0.01, 10.0, 640 / 480
    m = camera_utils.perspective(aspect, [fov], [near], [far]).numpy()[0]
    f = 1.0 / math.tan(math.radians(fov) / 2)
    expected = np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                         [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
                         [0, 0, -1, 0]])
    np.testing.assert_allclose(m, expected, rtol=1e-5)
    for distance, ndc_z in ((near, -1.0), (far, 1.0)):
        clip = m @ np.array([0.0, 0.0, -distance, 1.0])
        np.testing.assert_allclose(clip[2] / clip[3], ndc_z, atol=1e-4)


def test_euler_matrices_are_rz_ry_rx_in_radians():
    angles = np.array([[-20.0, 0.0, 60.0], [0.3, -1.1, 2.0]], np.float32)
    m = camera_utils.euler_matrices(angles).numpy()
    for b, (ax, ay, az) in enumerate(angles.astype(np.float64)):
        rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
        ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
        rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
        np.testing.assert_allclose(m[b, :3, :3], rz @ ry @ rx, atol=1e-5)
        np.testing.assert_allclose(m[b, 3], [0, 0, 0, 1])
        np.testing.assert_allclose(m[b, :3, 3], 0)


def test_transform_homogeneous():
    rng = np.random.default_rng(0)
    matrices = rng.normal(size=(2, 4, 4)).astype(np.float32)
    points = rng.normal(size=(2, 5, 3)).astype(np.float32)
    out = camera_utils.transform_homogeneous(matrices, points).numpy()
    expected = np.einsum("bij,bnj->bni", matrices.astype(np.float64),
                         np.concatenate([points, np.ones((2, 5, 1))], -1))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        camera_utils.transform_homogeneous(matrices, points[..., :2])
