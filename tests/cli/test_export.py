"""`face-gcn export` as a user runs it: a train workdir in, a SavedModel out; clear one-line errors."""

import json
import os

import pytest


SIZE = 64


@pytest.fixture(scope="module")
def workdir(tiny_model_dir):
    return tiny_model_dir[0]


def test_checkpoint_workdir_to_savedmodel(workdir, tmp_path, run_subcommand):
    out = tmp_path / "serving" / "1"
    result = run_subcommand("export", "--checkpoint", str(workdir), "--out", str(out), cache=tmp_path,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "signatures serving_default, serve_masked, serve_encoded" in result.stdout
    assert (out / "saved_model.pb").is_file() and (out / "variables").is_dir()
    info = json.loads((out / "face_gcn_export.json").read_text())
    assert info["image_size"] == SIZE and info["source_model"] == str(workdir / "model")
    assert os.listdir(out.parent) == ["1"]  # no staging folder left behind


def test_clear_errors(workdir, tmp_path, run_subcommand):
    result = run_subcommand("export", "--out", str(tmp_path / "x"), cache=tmp_path, timeout=240)
    assert result.returncode != 0 and "exactly one of --model" in result.stderr
    result = run_subcommand("export", "--model", str(workdir / "model"), "--checkpoint", str(workdir),
                            "--out", str(tmp_path / "x"), cache=tmp_path, timeout=240)
    assert result.returncode != 0 and "exactly one of --model" in result.stderr
    result = run_subcommand("export", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "x"), cache=tmp_path,
                            timeout=240)
    assert result.returncode == 1 and "has no model/ directory" in result.stderr
    result = run_subcommand("export", "--model", str(tmp_path), "--out", str(tmp_path / "x"), cache=tmp_path,
                            timeout=240)
    assert result.returncode == 1 and "not a face-gcn model directory" in result.stderr.strip().splitlines()[-1]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    result = run_subcommand("export", "--model", str(workdir / "model"), "--out", str(tmp_path / "taken"),
                            cache=tmp_path, timeout=240)
    assert result.returncode == 1 and "refusing to replace" in result.stderr
