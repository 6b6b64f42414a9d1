"""face_gcn.data.detection on a real photo (skimage's astronaut, one face)."""

import cv2
import numpy as np
import pytest
import skimage.data

from face_gcn.data import detection


def _astronaut(size):
    return cv2.resize(skimage.data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def single(detector):
    return detector.detect(_astronaut(256))


def test_one_face_with_landmarks_in_anatomical_order(single):
    assert single.num_faces == 1 and single.image_size == (256, 256)
    face = single.largest
    assert face.score > 0.9
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    x, y, w, h = face.box
    assert np.all((face.landmarks >= [x, y]) & (face.landmarks <= [x + w, y + h]))
    # the face in skimage's astronaut: eyes near (101, 50) and (123, 51) at 256 px
    np.testing.assert_allclose(face.landmarks[:2], [[101, 50], [123, 51]], atol=4)


def test_shrunk_detection_maps_back_to_original_pixels(detector, single):
    big = detection.FaceDetector(max_side=256)
    big._mtcnn = detector._mtcnn  # share the loaded networks
    found = big.detect(_astronaut(512))
    # the 512 photo was shrunk to 256 for detection: its landmarks are twice as far out
    expected = (single.largest.landmarks + 0.5) * 2 - 0.5
    np.testing.assert_allclose(found.largest.landmarks, expected, atol=1e-6)


def test_several_faces_largest_first(detector, single):
    two = np.full((256, 448, 3), 128, np.uint8)
    two[:, :256] = _astronaut(256)
    two[32:224, 256:] = _astronaut(192)
    found = detector.detect(two)
    assert found.num_faces == 2
    assert found.faces[0].area > found.faces[1].area
    np.testing.assert_allclose(found.largest.landmarks, single.largest.landmarks, atol=2)
    assert found.faces[1].landmarks[:, 0].min() > 256


def test_no_face_in_noise_and_bad_input(detector):
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (128, 128, 3)).astype(np.uint8), (9, 9), 3)
    assert detector.detect(noise).num_faces == 0
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((32, 32), np.uint8))
