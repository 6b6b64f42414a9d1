"""tf_errors.message_line keeps the line of a real TensorFlow error that says what failed."""

import pytest
import tensorflow as tf

from face_gcn import tf_errors
from face_gcn.data import tfrecords


def test_the_message_of_a_graph_error_not_its_header_or_node_names():
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def regroup(x):
        return tf.reshape(x, [-1, 7])

    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        regroup(tf.zeros([3, 5]))
    assert str(raised.value).startswith("Graph execution error")
    line = tf_errors.message_line(raised.value)
    assert "Input to reshape is a tensor with 15 values" in line
    assert "[Op:" not in line and "\n" not in line


def test_a_corrupted_record_is_named_by_its_offset(tmp_path):
    path = str(tmp_path / "shard.tfrecord")
    tfrecords.write_shard(path, [b"x" * 64, b"y" * 64])
    data = bytearray(open(path, "rb").read())  # noqa: SIM115
    data[40] ^= 0xFF  # inside the first payload: its CRC no longer matches
    (tmp_path / "shard.tfrecord").write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError) as raised:
        list(tf.data.TFRecordDataset(path))
    assert tf_errors.message_line(raised.value).startswith("corrupted record at")
    assert tfrecords.data_loss_message([path], raised.value).startswith(f"damaged training data in {path}: corrupted record at")
