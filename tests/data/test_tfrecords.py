"""face_gcn.data.tfrecords: written examples read back with plain protobuf + OpenCV."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.data import tfrecords


def _example(seed, size=24, source="photos/ä b.jpg"):
    rng = np.random.default_rng(seed)
    return tfrecords.FaceExample(
        image=rng.integers(0, 256, (size, size, 3)).astype(np.uint8),
        mask=rng.integers(0, 2, (size, size)).astype(np.uint8),
        landmarks=rng.uniform(0, size, (5, 2)).astype(np.float32),
        transform=np.array([[1.5, 0, -3.25], [0, 1.5, 7.0]]),
        original_size=(300, 200), num_faces=2, source=source)


def _read_with_protobuf(record):
    features = tf.train.Example.FromString(record).features.feature
    image = cv2.imdecode(np.frombuffer(features["image/encoded"].bytes_list.value[0], np.uint8),
                         cv2.IMREAD_UNCHANGED)
    mask = cv2.imdecode(np.frombuffer(features["mask/encoded"].bytes_list.value[0], np.uint8),
                        cv2.IMREAD_UNCHANGED)
    return {
        "image": cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "mask": mask,
        "landmarks": np.array(features["landmarks"].float_list.value).reshape(5, 2),
        "transform": np.array(features["transform"].float_list.value).reshape(2, 3),
        "original_size": list(features["original_size"].int64_list.value),
        "num_faces": features["num_faces"].int64_list.value[0],
        "crop_size": features["crop_size"].int64_list.value[0],
        "source": features["source"].bytes_list.value[0].decode("utf-8"),
    }


def test_round_trip_through_a_shard(tmp_path):
    examples = [_example(seed) for seed in range(3)]
    path = str(tmp_path / "shard.tfrecord")
    assert tfrecords.write_shard(path, [tfrecords.serialize(e) for e in examples]) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["shard.tfrecord"]  # no temp file left
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    for example, record in zip(examples, records):
        read = _read_with_protobuf(record)
        np.testing.assert_array_equal(read["image"], example.image)
        np.testing.assert_array_equal(read["mask"], example.mask)
        np.testing.assert_array_equal(read["landmarks"], example.landmarks)
        np.testing.assert_allclose(read["transform"], example.transform, rtol=1e-7)
        assert read["original_size"] == [300, 200] and read["num_faces"] == 2
        assert read["crop_size"] == 24 and read["source"] == "photos/ä b.jpg"
        parsed = tfrecords.parse(tf.constant(record), 24)
        np.testing.assert_array_equal(parsed["image"].numpy(), example.image)
        np.testing.assert_array_equal(parsed["mask"].numpy()[..., 0], example.mask)
        np.testing.assert_array_equal(parsed["landmarks"].numpy(), example.landmarks)
        assert parsed["source"].numpy().decode() == example.source


def test_bad_examples_are_refused():
    good = _example(0)
    with pytest.raises(ValueError, match="mask"):
        tfrecords.FaceExample(**dict(good.__dict__, mask=good.mask[:-1]))
    with pytest.raises(ValueError, match="image"):
        tfrecords.FaceExample(**dict(good.__dict__, image=good.image.astype(np.float32)))


def test_a_failed_write_leaves_nothing(tmp_path):
    def broken():
        yield tfrecords.serialize(_example(1))
        raise RuntimeError("worker died")
    with pytest.raises(RuntimeError):
        tfrecords.write_shard(str(tmp_path / "shard.tfrecord"), broken())
    assert list(tmp_path.iterdir()) == []
