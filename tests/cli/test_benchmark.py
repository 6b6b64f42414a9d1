"""`face-gcn benchmark` on a tiny model: every stage at every batch size, positive rates, the JSON layout."""

import json

import pytest

from face_gcn.cli import benchmark


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
        # no recognition network: the CNN bound is the regressor's rate
        bound = data["cnn_bound"][batch]
        assert bound["images_per_second"] == pytest.approx(rates["regressor"])
        assert bound["savedmodel_fraction"] == pytest.approx(rates["savedmodel"] / rates["regressor"])
        assert bound["python_fraction"] == pytest.approx(rates["python"] / rates["regressor"])
    assert data["reference"]["images_per_second"] == 50.0
    assert "SavedModel / bound" in result.stdout
    assert data["savedmodel_size_bytes"] > 1e6 and data["savedmodel"] is None
    cold = data["cold_start"]
    assert all(cold[key] > 0 for key in ("import_tensorflow_s", "load_s", "first_call_s"))
    assert abs(cold["total_s"] - cold["import_tensorflow_s"] - cold["load_s"] - cold["first_call_s"]) < 1e-6
    assert "reference: the paper, end to end" in result.stdout and "GTX 1080Ti" in result.stdout


def test_stages_alternate_round_by_round_after_their_warmup():
    log = []
    calls = {name: (lambda name=name: log.append(name)) for name in ("a", "b", "c")}
    medians = benchmark.time_interleaved(calls, repeats=3, warmup=1)
    assert log == ["a", "a", "b", "b", "c", "c"] + ["a", "b", "c"] * 3
    assert set(medians) == {"a", "b", "c"} and all(value >= 0 for value in medians.values())


def test_cnn_bound_runs_the_two_networks_one_after_the_other():
    rates = {"regressor": 12.0, "facenet": 36.0, "savedmodel": 6.0, "python": 7.2, "gcn": 20.0}
    bound = benchmark.cnn_bound(rates)
    assert bound["images_per_second"] == pytest.approx(9.0)  # 16 images: 16/12 + 16/36 s = 16/9 s
    assert bound["savedmodel_fraction"] == pytest.approx(6.0 / 9.0)
    assert bound["python_fraction"] == pytest.approx(0.8)


def test_usage_errors(tmp_path, run_subcommand):
    result = run_subcommand("benchmark", "--model", str(tmp_path), "--batch_sizes", "1,x", cache=tmp_path)
    assert result.returncode != 0 and "--batch_sizes must be integers" in result.stderr
    result = run_subcommand("benchmark", "--model", str(tmp_path), "--batch_sizes", "1", cache=tmp_path)
    assert result.returncode == 1 and "not a face-gcn model directory" in result.stderr.strip().splitlines()[-1]
