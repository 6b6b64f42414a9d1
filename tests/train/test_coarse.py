"""Coarse trainer: a short compact run learns, every loss term matches NumPy, FaceNet term runs."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.data import pipeline
from face_gcn.morphable import configured
from face_gcn.nets import facenet as facenet_lib
from face_gcn.nets import regressor as regressor_lib
from face_gcn.render import face_renderer
from face_gcn.synthesis import dataset as synthetic
from face_gcn.train import coarse

SIZE = 64
NUM_IMAGES = 16
# Per-block weights of the coefficient loss (losses.coarse.COEFFICIENT_BLOCK_WEIGHTS), in layout order.
BLOCKS = [(80, 1.0), (64, 2.0), (80, 1.0), (3, 25.0), (27, 40.0), (3, 200.0)]
DENG_68 = np.concatenate([np.ones(28), 20 * np.ones(3), np.ones(29), 20 * np.ones(8)])


@pytest.fixture(scope="module")
def model():
    return configured.load_demo()


@pytest.fixture(scope="module")
def data(model, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("synthetic"))
    synthetic.write_dataset(folder, model, NUM_IMAGES, seed=0,
                            config=synthetic.SyntheticConfig(image_size=SIZE), batch_size=NUM_IMAGES)
    return folder


@pytest.fixture(scope="module")
def facenet_weights(tmp_path_factory):
    """A randomly initialised FaceNet saved as weights (building it takes about 10 s)."""
    net = facenet_lib.build_facenet()
    path = str(tmp_path_factory.mktemp("facenet") / "facenet.weights.h5")
    net.save_weights(path)
    return net, path


def _config(data, *overrides):
    return coarse.build_config(None, [
        f"data.train={data}", f"data.crop_size={SIZE}", "data.batch_size=4", "data.shuffle_buffer=16",
        "nets.backbone=compact", "train.checkpoint_every=1000", *overrides])


def _scalars(workdir):
    """{tag: [values in step order]} from the TensorBoard event files."""
    found = {}
    for path in glob.glob(os.path.join(workdir, "events", "*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag.startswith("loss/"):
                    found.setdefault(value.tag[5:], {})[event.step] = float(tf.make_ndarray(value.tensor))
    return {tag: [steps[s] for s in sorted(steps)] for tag, steps in found.items()}


def _numpy_coefficient_loss(predicted, target, example_weights):
    per, start = np.zeros(len(predicted)), 0
    for size, weight in BLOCKS:
        per += weight * ((predicted[:, start:start + size] - target[:, start:start + size]) ** 2).mean(axis=1)
        start += size
    return float((per * example_weights).sum() / example_weights.sum())


def test_short_compact_run_lowers_losses_and_coefficient_error(data, tmp_path):
    workdir = str(tmp_path / "run")
    steps = 60
    result = coarse.train_coarse(_config(data, "loss.coefficients=1.0", "train.learning_rate=1e-3",
                                         f"train.steps={steps}", "train.summary_every=1"),
                                 workdir, log=lambda *_: None)
    history = _scalars(workdir)
    assert len(history["total"]) == steps
    for tag in ("total", "coefficients", "landmark68"):
        first, last = np.mean(history[tag][:5]), np.mean(history[tag][-5:])
        assert last < 0.6 * first, (tag, first, last)
    assert result["steps"] == steps and result["steps_run"] == steps
    assert result["steps_per_second"] > 0
    assert result["losses"]["total"] == pytest.approx(history["total"][-1], rel=1e-6)
    summary = json.load(open(os.path.join(workdir, coarse.SUMMARY_FILE), encoding="utf-8"))
    assert summary["steps"] == steps and summary["backbone"] == "compact"
    # The saved regressor, in inference mode, predicts the ground truth better than the untrained one
    # (all zeros: the mean face).
    assert result["regressor"] == os.path.join(workdir, "regressor.keras")
    trained = regressor_lib.load_regressor(result["regressor"])
    elements = list(pipeline.make_dataset(data, SIZE, batch_size=NUM_IMAGES, training=False))
    truth = synthetic.load_ground_truth(data)["coefficients"]
    predicted = regressor_lib.regress(trained, elements[0]["image"]).coefficients.numpy()
    ones = np.ones(NUM_IMAGES)
    assert _numpy_coefficient_loss(predicted, truth, ones) < 0.7 * _numpy_coefficient_loss(0 * truth, truth, ones)


def test_every_step_term_matches_numpy(model, data, facenet_weights):
    facenet, _ = facenet_weights
    batch = next(iter(pipeline.make_dataset(data, SIZE, batch_size=4, training=False)))
    truth = batch["has_ground_truth"].numpy().copy()
    truth[1] = 0.0  # one example as if it were a photo: no ground truth
    batch = dict(batch, has_ground_truth=tf.constant(truth))
    regressor = regressor_lib.build_regressor((SIZE, SIZE, 3), backbone="compact")
    rng = np.random.default_rng(0)
    head = regressor.get_layer("coefficients")
    head.set_weights([rng.normal(0, 1e-3, (256, 257)).astype(np.float32),
                      0.5 * batch["coefficients"].numpy().mean(axis=0)])
    weights = {name: float(w) for name, w in zip(sorted(coarse.SCHEMA["loss"]), rng.uniform(0.5, 2.0, 8))}
    losses = {k: v.numpy() for k, v in coarse.make_coarse_step(model, regressor, weights, SIZE, facenet)(batch).items()}

    coefficients = regressor_lib.regress(regressor, batch["image"], training=True).coefficients.numpy()
    render = face_renderer.render_coefficients(model, coefficients, image_size=SIZE)
    c = coefficients.astype(np.float64)
    images = batch["image"].numpy().astype(np.float64)
    rendered, alpha = render.image.numpy().astype(np.float64), render.alpha.numpy().astype(np.float64)
    mask = alpha * batch["mask"].numpy()[..., 0]
    distance = np.sqrt(((images / 255.0 - rendered) ** 2).sum(-1))
    scale = 224.0 / SIZE
    lm68 = (render.landmarks.numpy().astype(np.float64) - 0.5) * scale
    five = np.stack([lm68[:, 36:42].mean(1), lm68[:, 42:48].mean(1), lm68[:, 30], lm68[:, 48], lm68[:, 54]], 1)
    target5 = batch["landmarks"].numpy() * scale
    target68 = batch["landmarks68"].numpy() * scale
    per68 = (((lm68 - target68) ** 2).sum(-1) * DENG_68).mean(axis=1)
    albedo = render.albedo.numpy().astype(np.float64)
    skin = np.asarray(model.skin_mask, bool)
    gamma = c[:, 227:254].reshape(-1, 3, 9)
    a = facenet_lib.embed(facenet, images).embedding.numpy().astype(np.float64)
    composite = rendered * 255.0 * alpha[..., None] + images * (1 - alpha[..., None])
    b = facenet_lib.embed(facenet, composite).embedding.numpy().astype(np.float64)
    expected = {
        "photometric": (mask * distance).sum() / mask.sum(),
        "landmark": ((((five - target5) ** 2).sum(-1)) * [1, 1, 20, 1, 1]).mean(),
        "landmark68": (per68 * truth).sum() / truth.sum(),
        "regularisation": np.mean((c[:, :80] ** 2).sum(1) + 0.8 * (c[:, 80:144] ** 2).sum(1)
                                  + 0.017 * (c[:, 144:224] ** 2).sum(1)),
        "reflectance": np.mean([((x[skin] - x[skin].mean(0)) ** 2).sum(-1).mean() for x in albedo]),
        "gamma": np.mean((gamma - gamma.mean(axis=1, keepdims=True)) ** 2),
        "coefficients": _numpy_coefficient_loss(c, batch["coefficients"].numpy(), truth),
        "identity": np.mean(1 - (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)),
    }
    assert set(losses) == set(expected) | {"total"}
    for name, value in expected.items():
        assert value > 0, name
        assert losses[name] == pytest.approx(weights[name] * value, rel=2e-3, abs=1e-6), name
    assert losses["total"] == pytest.approx(sum(weights[n] * v for n, v in expected.items()), rel=2e-3)


def test_facenet_term_trains_and_runs_resume(data, facenet_weights, tmp_path):
    _, path = facenet_weights
    workdir = str(tmp_path / "run")
    config = _config(data, f"nets.facenet_weights={path}", "data.batch_size=2", "train.steps=2",
                     "train.summary_every=1")
    messages = []
    result = coarse.train_coarse(config, workdir, log=messages.append)
    assert "identity" in result["losses"] and np.isfinite(result["losses"]["identity"])
    assert result["losses"]["identity"] > 0 and result["steps_per_second"] is None  # < 3 steps
    assert not any("identity loss is skipped" in m for m in messages)
    assert os.path.isfile(os.path.join(workdir, "regressor.keras"))


def test_bad_backbone_is_a_clear_error(data, tmp_path):
    with pytest.raises(ValueError, match="nets.backbone: must be one of resnet50, compact"):
        coarse.train_coarse(_config(data, "nets.backbone=vgg"), str(tmp_path), log=lambda *_: None)
