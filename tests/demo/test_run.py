"""The demo's configs agree with experiments/demo.yaml; its report helpers read real event files."""

import os

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.demo import report, run
from face_gcn.train import texture

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "..", "experiments")


def test_experiments_demo_yaml_is_what_the_demo_trains():
    from_file = texture.build_config(os.path.join(EXPERIMENTS, "demo.yaml"))
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


def test_evaluate_heldout_with_the_true_coarse_stage(tiny_nets, tmp_path):
    """Scored with the held-out set's own coefficients, the coarse render matches the synthetic photos up
    to their detail and noise, and the coarse albedo error is that of the detail alone."""
    from face_gcn.morphable import configured
    from face_gcn.synthesis import dataset as synthetic
    heldout = str(tmp_path / "heldout")
    synthetic.write_dataset(heldout, configured.load_demo(), 3, seed=1, split="heldout",
                            config=synthetic.SyntheticConfig(image_size=tiny_nets.image_size))
    regressed = run.evaluate_heldout(tiny_nets, heldout, str(tmp_path / "a"), keep_images=0)
    true = run.evaluate_heldout(tiny_nets, heldout, str(tmp_path / "b"), keep_images=0,
                                coarse_coefficients="ground_truth")
    assert true["psnr_coarse"].min() > 25.0 > regressed["psnr_coarse"].max()
    # With the true coefficients the coarse albedo differs from the truth by the clipped detail only.
    detail = np.sqrt((synthetic.load_ground_truth(heldout)["detail"].astype(np.float64) ** 2).sum(-1))
    front = np.asarray(tiny_nets.morphable.front_mask, bool)
    assert np.all(true["albedo_error_coarse"] <= detail[:, front].mean(axis=1) + 1e-4)
    with pytest.raises(ValueError, match="coarse_coefficients"):
        run.evaluate_heldout(tiny_nets, heldout, str(tmp_path / "c"), coarse_coefficients="fit")


def test_improvement_keys_are_the_demos_departures_from_the_schema():
    for key in run.IMPROVEMENT_KEYS + run.AS_MEASURED_KEYS:
        section, name = key.split(".")
        assert key in run.TEXTURE_OVERRIDES and run.TEXTURE_OVERRIDES[key] != texture.SCHEMA[section][name], key
