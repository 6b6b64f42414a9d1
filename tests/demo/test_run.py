"""The demo's configs agree with experiments/demo.yaml; its report helpers read real event files."""

import os

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.demo import report, run
from face_gcn.train import config as config_lib
from face_gcn.train import texture

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "..", "experiments")


def test_experiments_demo_yaml_is_what_the_demo_trains():
    from_file = config_lib.build_config(texture.SCHEMA, os.path.join(EXPERIMENTS, "demo.yaml"))
    assert from_file == run.texture_config("", "")


def test_settings_validation():
    with pytest.raises(ValueError, match="multiple of 32"):
        run.DemoSettings(image_size=100)
    with pytest.raises(ValueError, match="num_train"):
        run.DemoSettings(num_train=0)


def test_read_scalars_and_curves(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path / "events"))
    with writer.as_default():
        for step in range(1, 6):
            tf.summary.write("loss/total", tf.constant(1.0 / step), step=step,
                             metadata=_scalar_metadata())
    writer.flush()
    series = report.read_scalars(str(tmp_path))
    steps, values = zip(*series["loss/total"])
    assert steps == (1, 2, 3, 4, 5)
    np.testing.assert_allclose(values, [1.0, 0.5, 1 / 3, 0.25, 0.2], rtol=1e-6)
    svg = report.svg_curves({"total": series["loss/total"]})
    assert svg.startswith("<svg") and svg.count("<polyline") == 1
    assert "no curve" in report.svg_curves({"x": [(1, 1.0)]})


def _scalar_metadata():
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    return metadata
