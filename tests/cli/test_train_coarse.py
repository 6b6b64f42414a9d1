"""train-coarse end to end on tiny synthetic TFRecords: finite losses, checkpoints, events, resume."""

import glob
import os

import pytest

from face_gcn.synthesis import dataset as synthetic
from face_gcn.morphable import configured

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("syn"))
    synthetic.write_dataset(out, configured.load_demo(), 4, seed=0,
                            config=synthetic.SyntheticConfig(image_size=64), batch_size=4)
    return out


def test_train_coarse_runs_writes_checkpoints_and_resumes(tiny_data, tmp_path, run_subcommand):
    workdir = str(tmp_path / "run")
    args = ["--config", os.path.join(REPO, "experiments/coarse_demo.yaml"), "--workdir", workdir,
            "--set", f"data.train={tiny_data}", "--set", "train.steps=2"]
    result = run_subcommand("train_coarse", *args, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "perceptual identity loss is skipped" in result.stderr
    line = [l for l in result.stdout.splitlines() if l.startswith("final losses")][0]
    values = dict(item.split("=") for item in line[len("final losses: "):].split(", "))
    assert all(float(v) == float(v) and abs(float(v)) < float("inf") for v in values.values())
    assert {"photometric", "landmark", "landmark68", "regularisation", "reflectance", "gamma", "coefficients",
            "total"} <= set(values)
    assert "steps: 2, steps/s (first step excluded): n/a" in result.stdout  # too few steps to time
    assert f"regressor: {os.path.join(workdir, 'regressor.keras')}" in result.stdout
    assert os.path.isfile(os.path.join(workdir, "regressor.keras"))
    assert glob.glob(os.path.join(workdir, "checkpoints", "ckpt-2.index"))
    assert glob.glob(os.path.join(workdir, "events", "*"))
    again = run_subcommand("train_coarse", *args[:-1], "train.steps=3", cwd=REPO)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from step 2" in again.stderr
    assert glob.glob(os.path.join(workdir, "checkpoints", "ckpt-3.index"))
    assert "steps: 3," in again.stdout


def test_unknown_override_is_one_error_line(tmp_path, run_subcommand):
    result = run_subcommand("train_coarse", "--workdir", str(tmp_path), "--set", "train.stepz=1", cwd=REPO)
    assert result.returncode != 0
    assert "unknown config key 'train.stepz'" in result.stderr
