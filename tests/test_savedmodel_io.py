"""face_gcn.savedmodel_io.load_signature on SavedModels the test writes: which signature is picked,
that it computes what the module computes, and each error."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn import savedmodel_io


class _Module(tf.Module):
    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(3.0)

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def times(self, x):
        return {"y": self.scale * x}

    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32), tf.TensorSpec([2], tf.float32)])
    def add(self, a, b):
        return {"y": a + b}


class _CustomError(ValueError):
    pass


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(path with signatures 'times' and 'add', path with 'serving_default' and 'times', path with none)."""
    module = _Module()
    root = tmp_path_factory.mktemp("savedmodels")
    paths = [str(root / name) for name in ("named", "default", "none")]
    tf.saved_model.save(module, paths[0], signatures={"times": module.times, "add": module.add})
    tf.saved_model.save(module, paths[1], signatures={"times": module.times, "serving_default": module.times})
    tf.saved_model.save(tf.Module(), paths[2])
    return paths


def test_picks_serving_default_else_the_first(saved):
    named, default, _ = saved
    picked = savedmodel_io.load_signature(default, role="test")
    assert picked.name == "serving_default" and picked.input_name == "x"
    assert picked.input_spec.shape.as_list() == [None, 4] and picked.input_spec.dtype == tf.float32
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(picked.function(x=tf.constant(x))["y"].numpy(), 3.0 * x)
    first = savedmodel_io.load_signature(named, role="test")
    assert first.name == next(iter(first.loaded.signatures)) and first.name in ("times", "add")
    assert savedmodel_io.load_signature(named, "times", role="test").name == "times"


def test_errors_name_the_problem(saved, tmp_path):
    named, _, empty = saved
    with pytest.raises(_CustomError, match="^widget SavedModel directory not found: "):
        savedmodel_io.load_signature(str(tmp_path / "absent"), role="widget", error=_CustomError)
    with pytest.raises(ValueError, match="could not load a SavedModel from"):
        savedmodel_io.load_signature(str(tmp_path), role="widget")
    with pytest.raises(ValueError, match="has no signatures"):
        savedmodel_io.load_signature(empty, role="widget")
    with pytest.raises(ValueError, match=r"has no signature 'nope' \(has \['add', 'times'\]\)"):
        savedmodel_io.load_signature(named, "nope", role="widget")
    with pytest.raises(ValueError, match=r"widget signature 'add' must take one image tensor, takes \['a', 'b'\]"):
        savedmodel_io.load_signature(named, "add", role="widget")
