"""`face-gcn benchmark` on a tiny model: every stage at every batch size, positive rates, the JSON layout."""

import json

import pytest


SIZE = 64


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return tiny_model_dir[1]


def test_json_has_every_stage_and_batch_size(model, tmp_path, run_subcommand):
    out = tmp_path / "bench.json"
    result = run_subcommand("benchmark", "--model", model, "--batch_sizes", "1,2", "--repeats", "1", "--warmup", "0",
                            "--json", str(out), cache=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["batch_sizes"] == [1, 2] and data["image_size"] == SIZE
    stages = {"savedmodel", "python", "detection", "align_mask", "regressor", "gcn", "render"}
    for batch in ("1", "2"):
        rates = data["images_per_second"][batch]
        assert set(rates) == stages | {"photos_with_detection"}  # no FaceNet in this model
        assert all(value > 0 for value in rates.values())
        seconds = data["seconds_per_batch"][batch]
        for stage in stages:  # images/s is the batch over the seconds one batch takes
            assert abs(rates[stage] * seconds[stage] - int(batch)) < 1e-6 * int(batch)
        # the photos' rate cannot beat its slowest part
        assert rates["photos_with_detection"] < min(rates["detection"], rates["savedmodel"])
    assert data["reference"]["images_per_second"] == 50.0
    assert data["savedmodel_size_bytes"] > 1e6 and data["savedmodel"] is None
    cold = data["cold_start"]
    assert all(cold[key] > 0 for key in ("import_tensorflow_s", "load_s", "first_call_s"))
    assert abs(cold["total_s"] - cold["import_tensorflow_s"] - cold["load_s"] - cold["first_call_s"]) < 1e-6
    assert "reference: the paper, end to end" in result.stdout and "GTX 1080Ti" in result.stdout


def test_usage_errors(tmp_path, run_subcommand):
    result = run_subcommand("benchmark", "--model", str(tmp_path), "--batch_sizes", "1,x", cache=tmp_path)
    assert result.returncode != 0 and "--batch_sizes must be integers" in result.stderr
    result = run_subcommand("benchmark", "--model", str(tmp_path), "--batch_sizes", "1", cache=tmp_path)
    assert result.returncode == 1 and "not a face-gcn model directory" in result.stderr.strip().splitlines()[-1]
