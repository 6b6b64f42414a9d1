"""`face-gcn convert-deng` as a user runs it: a frozen graph laid out like FaceReconModel.pb (narrow,
random weights) in, a .keras regressor out that the pipeline takes; clear one-line errors."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from face_gcn.nets import deng_graph, deng_reference_graph

SMALL = {"widths": (8, 16, 16, 32), "units": (2, 3, 2, 2)}


@pytest.fixture(scope="module")
def converted(tmp_path_factory, run_main):
    folder = tmp_path_factory.mktemp("convert_deng")
    graph = deng_reference_graph.write_graph(folder / "FaceReconModel.pb", seed=7, **SMALL)
    out = folder / "models" / "deng_regressor.keras"
    result = run_main("convert-deng", "--frozen_graph", graph, "--out", str(out), "--check_images", "2",
                      cache=folder / "cache")
    return graph, out, result


def _last_line(result):
    return result.stderr.strip().splitlines()[-1]


def test_converts_checks_and_writes(converted):
    graph, out, result = converted
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"rebuilt {graph} in Keras: resnet_v1_50 (units 2, 3, 2, 2;")
    assert "128 features" in lines[0]
    assert lines[1].startswith("check on 2 random images: max coefficient difference ")
    difference = float(lines[1].split("max coefficient difference ")[1].split()[0])
    assert difference < 1e-5
    assert lines[2].startswith(f"wrote {out}")
    assert os.listdir(out.parent) == [out.name]  # no temporary file left behind


@pytest.fixture(scope="module")
def converted_model(converted, tmp_path_factory):
    """A model directory holding the converted regressor (as `face-gcn train` writes it) and an
    aligned 224-px photo of a face: (model dir, photo, the frozen graph's coefficients of its crop)."""
    graph, out, result = converted
    assert result.returncode == 0, result.stderr[-3000:]
    from face_gcn.cli import _photos
    from face_gcn.graph import hierarchy as hierarchy_lib
    from face_gcn.morphable import configured
    from face_gcn.nets import gcn
    from face_gcn.reconstruction import forward, model_dir
    from face_gcn.train import texture

    folder = tmp_path_factory.mktemp("converted_model")
    # the train/prepare-coarse loader takes it for data.crop_size 224, like any .keras regressor
    regressor = texture.load_regressor({"regressor": str(out), "backbone": "resnet50"}, 224)
    morphable = configured.load_demo()
    hierarchy = hierarchy_lib.load_or_build_hierarchy(morphable.mean_shape, morphable.triangles, (4, 4, 4, 4))
    config = gcn.GCNConfig(embedding_size=128, decoder_widths=(4, 4, 4, 4, 4), refiner_widths=(4, 4, 4, 4),
                           refiner_latent=8, K=2)
    nets = forward.FaceGCN(morphable, regressor, gcn.build_texture_gcn(hierarchy, config), None, 224)
    model_path = str(folder / "model")
    model_dir.save_model_dir(model_path, nets, {"steps": 0})
    photo = folder / "astronaut.png"
    face = cv2.resize(skimage.data.astronaut(), (320, 320), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photo), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    crop = _photos.PhotoAligner(morphable.alignment_landmarks, 224).align(str(photo)).crop
    frozen = deng_graph.DengFrozenRegressor(graph, feature_size=None)
    return model_path, photo, crop, frozen(crop[None].astype(np.float32)).coefficients.numpy()[0]


@pytest.mark.slow
def test_reconstruct_with_the_converted_regressor(converted, converted_model, tmp_path, run_subcommand):
    """`face-gcn reconstruct`: the coefficients written for the aligned crop are the frozen graph's."""
    model_path, photo, crop, want = converted_model
    result = run_subcommand("reconstruct", str(photo), "--model", model_path, "--out", str(tmp_path / "out"),
                            "--fit_steps", "0", "--noprogress", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "astronaut.json").read_text())
    written = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / "astronaut.input.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(written, crop)
    np.testing.assert_allclose(record["coefficients"], want, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_fit_starts_from_the_converted_regressor(converted, converted_model, tmp_path, run_subcommand):
    """`face-gcn fit --regressor`: with no fitting steps the result is the regressor's start."""
    _, out, _ = converted
    _, photo, _, want = converted_model
    result = run_subcommand("fit", str(photo), "--out", str(tmp_path / "out"), "--regressor", str(out),
                            "--pose_steps", "0", "--shape_steps", "0", "--appearance_steps", "0",
                            "--refine_steps", "0", "--noprogress", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(json.loads((tmp_path / "out" / "astronaut.json").read_text())["coefficients"],
                               want, rtol=0, atol=1e-4)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["settings"]["regressor"] == str(out)
    result = run_subcommand("fit", str(photo), "--out", str(tmp_path / "bad"), "--regressor", str(photo),
                            cache=tmp_path / "cache")
    assert result.returncode == 1 and _last_line(result).startswith(
        f"face-gcn fit: error: cannot load the regressor {photo}"), result.stderr[-2000:]


@pytest.mark.slow
def test_export_and_benchmark_with_the_converted_regressor(converted_model, tmp_path, run_subcommand):
    """`face-gcn export`, the SavedModel loaded in a fresh process (stock TensorFlow, no face_gcn),
    then `face-gcn benchmark` on it."""
    model_path, _, crop, want = converted_model
    serving = tmp_path / "serving"
    result = run_subcommand("export", "--model", model_path, "--out", str(serving), cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    np.save(tmp_path / "crop.npy", crop)
    script = ("import sys, json, numpy as np, tensorflow as tf\n"
              "loaded = tf.saved_model.load(sys.argv[1])\n"
              "crop = np.load(sys.argv[2], allow_pickle=False)[None]\n"
              "print(json.dumps(loaded.signatures['serving_default'](images=tf.constant(crop))"
              "['coefficients'].numpy()[0].tolist()))\n")
    loaded = subprocess.run([sys.executable, "-c", script, str(serving), str(tmp_path / "crop.npy")],
                            capture_output=True, text=True, timeout=300, check=False)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    np.testing.assert_allclose(json.loads(loaded.stdout.strip().splitlines()[-1]), want, rtol=0, atol=1e-4)
    report = tmp_path / "bench.json"
    result = run_subcommand("benchmark", "--model", model_path, "--savedmodel", str(serving), "--batch_sizes", "1",
                            "--repeats", "1", "--warmup", "0", "--nocold_start", "--json", str(report),
                            cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    rates = json.loads(report.read_text())["images_per_second"]["1"]
    assert rates["regressor"] > 0 and rates["savedmodel"] > 0


@pytest.mark.slow
def test_train_coarse_fine_tunes_the_converted_regressor(converted, converted_model, tmp_path, run_main):
    """`face-gcn train-coarse` with nets.regressor_weights = the converted model: it trains that
    network (its outputs stay near the frozen graph's after two small steps; a new regressor would
    start at zero coefficients), and the result loads as a regressor."""
    _, out, _ = converted
    _, _, crop, want = converted_model
    from face_gcn.morphable import configured
    from face_gcn.nets import regressor as regressor_lib
    from face_gcn.synthesis import dataset as synthetic
    from face_gcn.train import coarse

    data = str(tmp_path / "data")
    synthetic.write_dataset(data, configured.load_demo(), 2, seed=1,
                            config=synthetic.SyntheticConfig(image_size=224))
    workdir = tmp_path / "run"
    result = run_main("train-coarse", "--workdir", str(workdir), "--set", f"data.train={data}",
                      "--set", f"nets.regressor_weights={out}", "--set", "data.batch_size=2",
                      "--set", "train.steps=2", "--set", "train.learning_rate=1e-5", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    tuned = regressor_lib.load_regressor(str(workdir / coarse.REGRESSOR_FILE))
    got = regressor_lib.regress(tuned, crop[None].astype(np.float32)).coefficients.numpy()[0]
    assert not np.array_equal(got, want)  # trained
    assert np.corrcoef(got, want)[0, 1] > 0.95 and np.abs(want).max() > 1e-2, (got[:5], want[:5])


def _write_graph_def(path, build):
    graph = tf.Graph()
    with graph.as_default():
        build()
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return str(path)


def _deng_names_only():
    """Deng's tensor names on a network that is not resnet_v1_50."""
    images = tf.compat.v1.placeholder(tf.float32, [None, 224, 224, 3], name="input_imgs")
    pooled = tf.reduce_mean(images, [1, 2], keepdims=True)
    pool5 = tf.tile(pooled, [1, 1, 1, 8], name="resnet_v1_50/pool5")
    tf.identity(tf.tile(tf.reshape(pool5, [-1, 24]), [1, 11])[:, :257], name="coeff")


def _other_names():
    images = tf.compat.v1.placeholder(tf.float32, [None, 224, 224, 3], name="images")
    tf.identity(tf.reduce_mean(images, [1, 2]), name="output")


def _assert_one_line_errors(tmp_path, run_subcommand, cases):
    out = tmp_path / "deng.keras"
    for path, message in cases:
        result = run_subcommand("convert_deng", "--frozen_graph", path, "--out", str(out), cache=tmp_path)
        assert result.returncode == 1, (path, result.stderr[-2000:])
        line = _last_line(result)
        assert line.startswith("face-gcn convert-deng: error: ") and message in line and path in line, line
        assert "Traceback" not in result.stderr
    assert not out.exists()


def test_missing_and_garbage_files_are_one_line_errors(tmp_path, run_subcommand):
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\xff\xfe this is not a protocol buffer \x00\x01")
    _assert_one_line_errors(tmp_path, run_subcommand, [(str(tmp_path / "absent.pb"), "frozen graph not found: "),
                                                       (str(garbage), "not a binary TensorFlow GraphDef")])


def test_graphs_that_are_not_dengs_are_one_line_errors(tmp_path, run_subcommand):
    _assert_one_line_errors(tmp_path, run_subcommand, [
        (_write_graph_def(tmp_path / "other.pb", _other_names), "missing tensors input_imgs:0, coeff:0"),
        (_write_graph_def(tmp_path / "names.pb", _deng_names_only), "no constant resnet_v1_50/conv1/weights")])


def test_a_graph_the_rebuild_does_not_reproduce_is_refused(tmp_path, run_subcommand):
    # Deng's names and weights, but the pixels are shifted before the network: the weights cannot
    # tell, the comparison does.
    graph = deng_reference_graph.write_graph(tmp_path / "shifted.pb", seed=7, input_offset=60.0, **SMALL)
    out = tmp_path / "deng.keras"
    result = run_subcommand("convert_deng", "--frozen_graph", graph, "--out", str(out), "--check_images", "1",
                            cache=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    line = _last_line(result)
    assert line.startswith(f"face-gcn convert-deng: error: the Keras model does not reproduce {graph}: "
                           "max coefficient difference "), line
    assert "nothing written" in line and not out.exists() and os.listdir(tmp_path) == ["shifted.pb"]


def test_train_given_the_frozen_graph_says_to_convert_it(converted, tmp_path, run_main):
    graph, _, _ = converted
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train-00000.tfrecord").write_bytes(b"")
    result = run_main("train", "--workdir", str(tmp_path / "run"), "--set", f"data.train={tmp_path / 'data'}",
                      "--set", f"nets.regressor={graph}", cache=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    line = _last_line(result)
    assert line.startswith(f"face-gcn train: error: {graph}: a frozen TF1 graph (.pb) is not a Keras regressor")
    assert "face-gcn convert-deng --frozen_graph" in line
