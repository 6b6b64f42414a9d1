"""face_gcn.data.pipeline against a Python reference reading the same TFRecords."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.data import pipeline, tfrecords

SIZE = 32


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two shards of synthetic faces; returns (files, reference dict source -> arrays)."""
    folder = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(7)
    files, records = [], {}
    for shard in range(2):
        serialized = []
        for item in range(5):
            source = f"photo_{shard}_{item}.png"
            rows, cols = np.mgrid[0:SIZE, 0:SIZE]
            image = np.stack([cols * 8, rows * 8, rng.integers(40, 200, (SIZE, SIZE))],
                             -1).astype(np.uint8)
            truth = {}
            if item % 2 == 0:  # mixed origins: some synthetic (ground truth), some photos
                truth = {"coefficients": rng.normal(size=257).astype(np.float32),
                         "landmarks68": rng.uniform(4, 28, (68, 2)).astype(np.float32)}
            if item % 3 == 0:  # some photos carry dlib's 68 (prepare-data), others only MTCNN's 5
                truth["landmarks68_detected"] = rng.uniform(4, 28, (68, 2)).astype(np.float32)
            example = tfrecords.FaceExample(
                image=image, mask=(rng.random((SIZE, SIZE)) > 0.5).astype(np.uint8),
                landmarks=rng.uniform(8, 24, (5, 2)).astype(np.float32),
                transform=np.array([[0.5, 0, 3.0], [0, 0.5, -2.0]]), original_size=(64, 64),
                num_faces=1, source=source, **truth)
            serialized.append(tfrecords.serialize(example))
        path = str(folder / f"faces-{shard:05d}-of-00002.tfrecord")
        tfrecords.write_shard(path, serialized)
        files.append(path)
    # the reference: protobuf + OpenCV, no TensorFlow parsing
    for path in files:
        for record in tf.data.TFRecordDataset(path):
            features = tf.train.Example.FromString(record.numpy()).features.feature
            image = cv2.imdecode(np.frombuffer(features["image/encoded"].bytes_list.value[0],
                                               np.uint8), cv2.IMREAD_COLOR)
            mask = cv2.imdecode(np.frombuffer(features["mask/encoded"].bytes_list.value[0],
                                              np.uint8), cv2.IMREAD_GRAYSCALE)
            has_truth = "coefficients" in features
            has_detected = tfrecords.DETECTED68_KEY in features
            records[features["source"].bytes_list.value[0].decode()] = {
                "coefficients": np.array(features["coefficients"].float_list.value, np.float32)
                if has_truth else np.zeros(257, np.float32),
                "landmarks68": np.array(features["landmarks68"].float_list.value,
                                        np.float32).reshape(68, 2)
                if has_truth else np.zeros((68, 2), np.float32),
                "has_ground_truth": np.float32(has_truth),
                "landmarks68_detected": np.array(features[tfrecords.DETECTED68_KEY].float_list.value,
                                                 np.float32).reshape(68, 2)
                if has_detected else np.zeros((68, 2), np.float32),
                "has_landmarks68_detected": np.float32(has_detected),
                "image": cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32),
                "mask": mask[..., None].astype(np.float32),
                "landmarks": np.array(features["landmarks"].float_list.value,
                                      np.float32).reshape(5, 2),
                "transform": np.array(features["transform"].float_list.value,
                                      np.float32).reshape(2, 3)}
    return str(folder), records


def _elements(dataset, batches):
    out = []
    for batch in dataset.take(batches):
        for i in range(batch["image"].shape[0]):
            out.append({key: value[i].numpy() for key, value in batch.items()})
    return out


def _reference_shift(array, dx, dy):
    shifted = np.zeros_like(array)
    height, width = array.shape[:2]
    for y in range(height):
        for x in range(width):
            if 0 <= y - dy < height and 0 <= x - dx < width:
                shifted[y, x] = array[y - dy, x - dx]
    return shifted


def test_evaluation_order_matches_the_reference_exactly(shards):
    folder, reference = shards
    elements = _elements(pipeline.make_dataset(folder, SIZE, batch_size=4, training=False), 10)
    assert [e["source"].decode() for e in elements] == sorted(reference)
    for element in elements:
        expected = reference[element["source"].decode()]
        assert element["image"].dtype == np.float32 and element["image"].shape == (SIZE, SIZE, 3)
        for key in ("image", "mask", "landmarks", "transform", "coefficients", "landmarks68",
                    "has_ground_truth", "landmarks68_detected", "has_landmarks68_detected"):
            np.testing.assert_array_equal(element[key], expected[key], err_msg=key)
    assert {float(e["has_ground_truth"]) for e in elements} == {0.0, 1.0}
    assert {float(e["has_landmarks68_detected"]) for e in elements} == {0.0, 1.0}


def test_training_shuffles_every_example_once_per_epoch(shards):
    folder, reference = shards
    dataset = pipeline.make_dataset(folder, SIZE, batch_size=5, training=True, seed=3,
                                    repeat=False)
    elements = _elements(dataset, 10)
    sources = [e["source"].decode() for e in elements]
    assert sorted(sources) == sorted(reference) and sources != sorted(reference)
    for element in elements:
        np.testing.assert_array_equal(element["image"], reference[element["source"].decode()]
                                      ["image"])


def test_augmentation_is_reproducible_and_in_range(shards):
    folder, _ = shards
    augmentation = pipeline.Augmentation(brightness=0.2, contrast=0.2, saturation=0.2,
                                         hue=0.05, max_shift=4)

    def take(seed):
        return _elements(pipeline.make_dataset(folder, SIZE, batch_size=4, seed=seed,
                                               augmentation=augmentation), 4)
    first, again, other = take(11), take(11), take(12)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a["image"], b["image"]) for a, b in zip(first, other))
    for element in first:
        assert element["image"].min() >= 0 and element["image"].max() <= 255
        assert set(np.unique(element["mask"])) <= {0.0, 1.0}


def test_shifts_move_image_mask_landmarks_and_transform_together(shards):
    folder, reference = shards
    augmentation = pipeline.Augmentation(brightness=0, contrast=0, saturation=0, max_shift=5)
    elements = _elements(pipeline.make_dataset(folder, SIZE, batch_size=5, seed=1,
                                               augmentation=augmentation), 4)
    shifts = set()
    for element in elements:
        expected = reference[element["source"].decode()]
        offset = element["landmarks"] - expected["landmarks"]
        dx, dy = np.round(offset[0]).astype(int)
        np.testing.assert_allclose(offset, np.broadcast_to([dx, dy], (5, 2)), atol=1e-5)
        assert abs(dx) <= 5 and abs(dy) <= 5
        shifts.add((dx, dy))
        np.testing.assert_array_equal(element["image"], _reference_shift(expected["image"], dx,
                                                                         dy))
        np.testing.assert_array_equal(element["mask"], _reference_shift(expected["mask"], dx, dy))
        np.testing.assert_allclose(element["transform"][:, 2],
                                   expected["transform"][:, 2] + [dx, dy], atol=1e-5)
        # Ground-truth landmarks move with the image; absent ones stay zero.
        np.testing.assert_allclose(element["landmarks68"], expected["landmarks68"]
                                   + expected["has_ground_truth"] * np.array([dx, dy]),
                                   atol=1e-5)
        np.testing.assert_allclose(element["landmarks68_detected"], expected["landmarks68_detected"]
                                   + expected["has_landmarks68_detected"] * np.array([dx, dy]), atol=1e-5)
        np.testing.assert_array_equal(element["coefficients"], expected["coefficients"])
        np.testing.assert_array_equal(element["has_ground_truth"], expected["has_ground_truth"])
    assert len(shifts) > 3


def test_brightness_adds_one_offset_per_image(shards):
    folder, reference = shards
    augmentation = pipeline.Augmentation(brightness=0.1, contrast=0, saturation=0, max_shift=0)
    for element in _elements(pipeline.make_dataset(folder, SIZE, batch_size=5, seed=2,
                                                   augmentation=augmentation), 2):
        expected = reference[element["source"].decode()]
        np.testing.assert_array_equal(element["landmarks"], expected["landmarks"])
        np.testing.assert_array_equal(element["mask"], expected["mask"])
        unclipped = (element["image"] > 0) & (element["image"] < 255)
        difference = (element["image"] - expected["image"])[unclipped]
        assert np.ptp(difference) < 1e-3 and abs(difference.mean()) <= 25.5 + 1e-3


def test_no_shards_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no TFRecord shards"):
        pipeline.make_dataset(str(tmp_path), SIZE, batch_size=2)
