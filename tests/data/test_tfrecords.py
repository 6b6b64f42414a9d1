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


def _with_truth(seed, size=24):
    rng = np.random.default_rng(100 + seed)
    base = _example(seed, size)
    return tfrecords.FaceExample(**dict(
        base.__dict__, coefficients=rng.normal(size=257).astype(np.float32),
        landmarks68=rng.uniform(0, size, (68, 2)).astype(np.float32)))


def _old_format_record(example):
    """A record as written before the optional fields existed: only the original keys."""
    proto = tf.train.Example.FromString(tfrecords.serialize(example))
    for key in ("coefficients", "landmarks68"):
        if key in proto.features.feature:
            del proto.features.feature[key]
    return proto.SerializeToString()


def test_ground_truth_fields_round_trip_and_default_to_zero(tmp_path):
    with_truth, without = _with_truth(0), _example(1)
    record = tfrecords.serialize(with_truth)
    features = tf.train.Example.FromString(record).features.feature
    np.testing.assert_array_equal(np.array(features["coefficients"].float_list.value, np.float32),
                                  with_truth.coefficients)
    np.testing.assert_array_equal(np.array(features["landmarks68"].float_list.value,
                                           np.float32).reshape(68, 2), with_truth.landmarks68)
    assert "coefficients" not in tf.train.Example.FromString(
        tfrecords.serialize(without)).features.feature
    assert tfrecords.serialize(with_truth) == record  # deterministic bytes
    parsed = tfrecords.parse(tf.constant(record), 24)
    np.testing.assert_array_equal(parsed["coefficients"].numpy(), with_truth.coefficients)
    np.testing.assert_array_equal(parsed["landmarks68"].numpy(), with_truth.landmarks68)
    assert parsed["has_ground_truth"].dtype == tf.float32 and parsed["has_ground_truth"] == 1.0
    for old in (tfrecords.serialize(without), _old_format_record(with_truth)):
        parsed = tfrecords.parse(tf.constant(old), 24)
        assert parsed["has_ground_truth"].numpy() == 0.0
        np.testing.assert_array_equal(parsed["coefficients"].numpy(), np.zeros(257))
        np.testing.assert_array_equal(parsed["landmarks68"].numpy(), np.zeros((68, 2)))
        np.testing.assert_array_equal(parsed["landmarks"].numpy(),
                                      (with_truth if old != tfrecords.serialize(without)
                                       else without).landmarks)
    # Mixed origins batch together through tf.data.
    path = str(tmp_path / "mixed.tfrecord")
    tfrecords.write_shard(path, [record, tfrecords.serialize(without)])
    batch = next(iter(tf.data.TFRecordDataset(path).map(lambda r: tfrecords.parse(r, 24))
                      .batch(2)))
    np.testing.assert_array_equal(batch["has_ground_truth"].numpy(), [1.0, 0.0])
    assert batch["coefficients"].shape == (2, 257) and batch["landmarks68"].shape == (2, 68, 2)


def test_ground_truth_fields_are_validated():
    good = _with_truth(0)
    with pytest.raises(ValueError, match="together"):
        tfrecords.FaceExample(**dict(good.__dict__, landmarks68=None))
    with pytest.raises(ValueError, match=r"coefficients must be \[257\]"):
        tfrecords.FaceExample(**dict(good.__dict__, coefficients=good.coefficients[:-1]))
    with pytest.raises(ValueError, match=r"landmarks68 must be \[68, 2\]"):
        tfrecords.FaceExample(**dict(good.__dict__, landmarks68=good.landmarks68[:5]))
    proto = tf.train.Example.FromString(tfrecords.serialize(good))
    del proto.features.feature["coefficients"].float_list.value[-1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="coefficients must have 0 or 257"):
        tfrecords.parse(tf.constant(proto.SerializeToString()), 24)


def test_detected_68_round_trip_independently_of_the_ground_truth():
    import dataclasses
    points = np.random.default_rng(5).uniform(0, 24, (68, 2)).astype(np.float32)
    photo = dataclasses.replace(_example(3), landmarks68_detected=points)
    record = tfrecords.serialize(photo)
    stored = tf.train.Example.FromString(record).features.feature[tfrecords.DETECTED68_KEY].float_list.value
    np.testing.assert_array_equal(np.array(stored, np.float32).reshape(68, 2), points)
    parsed = tfrecords.parse(tf.constant(record), 24)
    np.testing.assert_array_equal(parsed["landmarks68_detected"].numpy(), points)
    assert parsed["has_landmarks68_detected"].numpy() == 1.0 and parsed["has_ground_truth"].numpy() == 0.0
    synthetic = dataclasses.replace(_with_truth(3), landmarks68_detected=points)
    parsed = tfrecords.parse(tf.constant(tfrecords.serialize(synthetic)), 24)
    np.testing.assert_array_equal(parsed["landmarks68"].numpy(), synthetic.landmarks68)  # the truth stays apart
    np.testing.assert_array_equal(parsed["landmarks68_detected"].numpy(), points)
    for old in (tfrecords.serialize(_example(3)), _old_format_record(_with_truth(3))):  # records without the field
        parsed = tfrecords.parse(tf.constant(old), 24)
        assert parsed["has_landmarks68_detected"].numpy() == 0.0
        np.testing.assert_array_equal(parsed["landmarks68_detected"].numpy(), np.zeros((68, 2)))
    with pytest.raises(ValueError, match=r"landmarks68_detected must be a finite \[68, 2\]"):
        dataclasses.replace(photo, landmarks68_detected=points[:5])
    with pytest.raises(ValueError, match="landmarks68_detected must be a finite"):
        dataclasses.replace(photo, landmarks68_detected=np.full((68, 2), np.nan, np.float32))
    proto = tf.train.Example.FromString(record)
    del proto.features.feature[tfrecords.DETECTED68_KEY].float_list.value[-1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="must have 0 or 136"):
        tfrecords.parse(tf.constant(proto.SerializeToString()), 24)


def test_coarse_cache_fields_round_trip_and_are_required_when_asked_for():
    import dataclasses
    base = _with_truth(2)
    cached = dataclasses.replace(base, coarse_coefficients=np.arange(257, dtype=np.float32),
                                 embedding=np.linspace(-1, 1, 6, dtype=np.float32))
    parsed = tfrecords.parse(tf.constant(tfrecords.serialize(cached)), 24, embedding_size=6)
    np.testing.assert_array_equal(parsed["coarse_coefficients"].numpy(), cached.coarse_coefficients)
    np.testing.assert_array_equal(parsed["embedding"].numpy(), cached.embedding)
    assert "embedding" not in tfrecords.parse(tf.constant(tfrecords.serialize(cached)), 24)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tfrecords.parse(tf.constant(tfrecords.serialize(base)), 24, embedding_size=6)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tfrecords.parse(tf.constant(tfrecords.serialize(cached)), 24, embedding_size=5)
    with pytest.raises(ValueError, match="together"):
        dataclasses.replace(base, coarse_coefficients=np.zeros(257, np.float32))


def test_record_count_from_the_framing_and_truncation_named(tmp_path):
    path = str(tmp_path / "shard.tfrecord")
    payloads = [b"", b"x" * 7, bytes(range(256)) * 40]
    assert tfrecords.write_shard(path, payloads) == 3
    assert tfrecords.count_framed_records(path) == 3
    assert tfrecords.count_records([path, path]) == 6
    # TensorFlow's reader agrees on what the framing holds
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == payloads
    data = open(path, "rb").read()  # noqa: SIM115
    for cut, complete in ((len(data) - 1, 2), (12 + 0 + 4 + 5, 1), (3, 0)):
        (tmp_path / "cut.tfrecord").write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"cut.tfrecord: truncated.*\({complete} complete records\)"):
            tfrecords.count_framed_records(str(tmp_path / "cut.tfrecord"))
    (tmp_path / "empty.tfrecord").write_bytes(b"")
    assert tfrecords.count_framed_records(str(tmp_path / "empty.tfrecord")) == 0
