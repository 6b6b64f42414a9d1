"""The texture stage (Eq. 4-8): loss assembly against NumPy, learning, resume, ablation switches, CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.morphable import configured
from face_gcn.reconstruction import forward, model_dir
from face_gcn.synthesis import dataset as synthetic
from face_gcn.train import texture

SIZE = 64
SMALL = ["nets.backbone=compact", "nets.decoder_widths=[8,8,8,8,8]", "nets.refiner_widths=[8,8,8,8]",
         "nets.refiner_latent=16", "nets.chebyshev_order=3", "train.summary_every=2", "train.checkpoint_every=2",
         "data.augment=false", "data.shuffle_buffer=8", "nets.recognizer=none"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("texture_data"))
    synthetic.write_dataset(path, configured.load_demo(), 8, seed=3,
                            config=synthetic.SyntheticConfig(image_size=SIZE))
    return path


def make_config(data_dir, *overrides):
    return texture.build_config(None, [f"data.train={data_dir}", f"data.crop_size={SIZE}", "data.batch_size=2"]
                                + SMALL + list(overrides))


def first_batch(data_dir):
    from face_gcn.data import pipeline
    return next(iter(pipeline.make_dataset(data_dir, SIZE, 2, training=False)))


def numpy_norm_mean(a, b, w=None):
    d = np.sqrt(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum(-1))
    w = np.ones_like(d) if w is None else np.asarray(w, np.float64)
    return (d * w).sum() / w.sum()


def test_step_losses_match_numpy_eq4(data_dir, tmp_path):
    run, _ = texture.setup_texture_training(make_config(data_dir, "train.critic_steps=1"), str(tmp_path),
                                            log=lambda *_: None)
    batch = first_batch(data_dir)
    s1, s4 = tf.Variable(0.6), tf.Variable(0.4)
    loss_config = make_config(data_dir)["loss"]
    losses = texture.make_texture_step(run.nets, run.critic, loss_config, s1, s4)(batch)
    result = forward.reconstruct(run.nets, batch["image"], face_mask=batch["mask"], training=True)
    photo = batch["image"].numpy() / 255.0
    mask = result.refined_alpha.numpy() * batch["mask"].numpy()[..., 0]
    pixel = numpy_norm_mean(photo, result.refined_image.numpy(), mask)
    albedo = numpy_norm_mean(result.refined_albedo.numpy(), np.clip(result.coarse.albedo.numpy(), 0, 1))
    projected = numpy_norm_mean(result.refined_colors.numpy(), result.samples.colors.numpy(),
                                result.samples.visibility.numpy())
    assert losses["pixel"].numpy() == pytest.approx(pixel, rel=1e-4)
    assert losses["vertex_albedo"].numpy() == pytest.approx(albedo, rel=1e-4)
    assert losses["vertex_projected"].numpy() == pytest.approx(projected, rel=1e-4)
    assert losses["identity"].numpy() == 0.0  # nets.recognizer=none
    adv = losses["adversarial"].numpy()
    gcn_model = run.nets.texture_gcn
    fully_connected = [gcn_model.get_layer("decoder").get_layer("fc")] + \
        [gcn_model.get_layer("refiner").get_layer(name) for name in ("latent", "unlatent")]
    decay = 5e-4 * sum(np.sum(w.numpy().astype(np.float64) ** 2) / 2 for layer in fully_connected
                       for w in (layer.kernel, layer.bias))
    assert losses["regularization"].numpy() == pytest.approx(decay, rel=1e-4)
    expected = 0.6 * (pixel + 0.001 * adv) + 0.4 * (albedo + projected) + decay
    assert losses["total"].numpy() == pytest.approx(expected, rel=1e-4)
    assert "critic" in losses and np.isfinite(losses["critic"].numpy())


def test_identity_loss_on_dlib_descriptor_matches_numpy(data_dir, tmp_path):
    """nets.recognizer=auto without FaceNet weights: dlib's descriptor (packaged weights) gives L_id and its 256
    pooled features join the embedding; L_id = mean_b 1 - cos of its features of photo and composite."""
    from face_gcn.nets import recognition
    config = make_config(data_dir, "nets.recognizer=auto", "loss.adversarial=false")
    messages = []
    run, _ = texture.setup_texture_training(config, str(tmp_path), log=messages.append)
    assert recognition.kind_of(run.nets.recognizer) == "face_descriptor"
    assert any("dlib's face descriptor" in m for m in messages)
    assert run.nets.texture_gcn.inputs[0].shape[-1] == run.nets.regressor.output["features"].shape[-1] + 256
    batch = first_batch(data_dir)
    losses = texture.make_texture_step(run.nets, None, config["loss"], tf.Variable(1.0), tf.Variable(0.0))(batch)
    result = forward.reconstruct(run.nets, batch["image"], face_mask=batch["mask"], training=True)
    photo = batch["image"].numpy() / 255.0
    alpha = (result.refined_alpha.numpy() * batch["mask"].numpy()[..., 0])[..., None]
    composite = result.refined_image.numpy() * alpha + photo * (1 - alpha)
    real = recognition.embed(run.nets.recognizer, batch["image"]).features.numpy().astype(np.float64)
    fake = recognition.embed(run.nets.recognizer, composite * 255.0).features.numpy().astype(np.float64)
    cosine = (real * fake).sum(-1) / np.linalg.norm(real, axis=-1) / np.linalg.norm(fake, axis=-1)
    assert losses["identity"].numpy() == pytest.approx(np.mean(1.0 - cosine), rel=1e-3, abs=1e-6)
    assert losses["identity"].numpy() > 0
    # L_id reaches the GCNs: its gradient is not zero
    with tf.GradientTape() as tape:
        identity = texture.make_texture_step(run.nets, None, config["loss"], tf.Variable(1.0),
                                             tf.Variable(0.0))(batch)["identity"]
    gradients = tape.gradient(identity, run.nets.texture_gcn.trainable_variables)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in gradients if g is not None) > 0


def test_authors_objective_matches_numpy_and_the_mask_erosion(data_dir, tmp_path):
    """loss.objective=authors: s4 refine + s1 (project + 0.3 fill + 0.2 id + 0.5 sym + 0.01 var)
    + s3 adv + FC decay, every colour term in [-1, 1] units as the authors' code; and the authors'
    mask erosion (the default) only removes visible vertices."""
    import dataclasses
    from face_gcn.morphable import symmetry
    config = make_config(data_dir, "train.critic_steps=1", "loss.objective=authors")
    run, _ = texture.setup_texture_training(config, str(tmp_path), log=lambda *_: None)
    assert run.nets.mask_erosion == "authors"
    batch = first_batch(data_dir)
    s1, s4 = tf.Variable(0.6), tf.Variable(0.4)
    losses = texture.make_texture_step(run.nets, run.critic, config["loss"], s1, s4)(batch)
    result = forward.reconstruct(run.nets, batch["image"], face_mask=batch["mask"], training=True)
    signed = lambda c: 2.0 * np.asarray(c, np.float64) - 1.0
    vis = result.samples.visibility.numpy().astype(np.float64)[..., None]
    lit, albedo = np.clip(result.refined_colors.numpy(), 0, 1), result.refined_albedo.numpy()
    refine = np.abs(signed(albedo) - signed(np.clip(result.coarse.albedo.numpy(), 0, 1))).mean()
    project = np.abs(signed(lit) * vis - signed(result.samples.colors.numpy()) * vis * vis).mean()
    fill = np.abs((signed(lit) - signed(np.clip(result.coarse.colors.numpy(), 0, 1))) * (1 - vis)).mean()
    pairs = symmetry.model_mirror_pairs(run.nets.morphable)
    sym = np.sqrt(((signed(albedo)[:, pairs[:, 0]] - signed(albedo)[:, pairs[:, 1]]) ** 2).sum(-1)).mean()
    var = signed(albedo)[:, run.nets.morphable.skin_mask].var(axis=1).mean()
    for name, value in (("refine", refine), ("project", project), ("fill", fill), ("symmetry", sym),
                        ("skin_variance", var)):
        assert losses[name].numpy() == pytest.approx(value, rel=1e-4), name
    assert losses["identity"].numpy() == 0.0 and "vertex_albedo" not in losses
    expected = (0.4 * refine + 0.6 * (project + 0.3 * fill + 0.5 * sym + 0.01 * var)
                + 0.001 * losses["adversarial"].numpy() + losses["regularization"].numpy())
    assert losses["total"].numpy() == pytest.approx(expected, rel=1e-4)
    # L_pix is computed and logged but not trained
    assert losses["pixel"].numpy() > 0.05 and abs(losses["total"].numpy() - expected) < 1e-3 * losses["pixel"].numpy()
    plain = forward.reconstruct(dataclasses.replace(run.nets, mask_erosion="none"), batch["image"],
                                face_mask=batch["mask"])
    eroded, whole = result.samples.visibility.numpy(), plain.samples.visibility.numpy()
    assert np.all(eroded <= whole) and eroded.sum() < whole.sum()
    with pytest.raises(ValueError, match="loss.vertex"):
        texture.make_texture_step(run.nets, run.critic, dict(config["loss"], vertex=False), s1, s4)


def test_training_lowers_the_loss_and_resumes(data_dir, tmp_path):
    config = make_config(data_dir, "train.steps=1", "loss.schedule=constant", "loss.adversarial=false",
                         "train.learning_rate=3e-3", "train.checkpoint_every=100", "train.summary_every=100")
    run, dataset = texture.setup_texture_training(config, str(tmp_path / "a"), log=lambda *_: None)
    first = run.loop.run(dataset, 1, log=lambda *_: None)
    run.loop.run(dataset, 40, log=lambda *_: None)
    losses = [run.loop.step_fn(first_batch(data_dir)) for _ in range(1)][0]
    assert losses["pixel"].numpy() < 0.8 * first["pixel"]
    assert losses["vertex_projected"].numpy() < 0.8 * first["vertex_projected"]
    assert run.loop.steps_per_second > 0

    # a run with the critic checkpoints it and resumes at the saved step
    config = make_config(data_dir, "train.steps=2", "train.critic_steps=2")
    summary = texture.train_texture(config, str(tmp_path / "b"), log=lambda *_: None)
    assert summary["steps"] == 2 and "critic" in summary["losses"]
    messages = []
    config["train"]["steps"] = 3
    summary = texture.train_texture(config, str(tmp_path / "b"), log=messages.append)
    assert summary["steps"] == 3 and "resuming from step 2" in messages
    # ... exactly where it stopped: the penalty's mixes come from a generator that is checkpointed too
    # (the critic's terms differ between runs only by thread order, 5e-5 relative; see test_same_seed_same_run)
    straight = texture.train_texture(config, str(tmp_path / "c"), log=lambda *_: None)
    assert straight["steps"] == 3
    for key in ("critic", "critic_penalty", "critic_wasserstein", "adversarial", "pixel", "total"):
        assert summary["losses"][key] == pytest.approx(straight["losses"][key], rel=1e-3, abs=1e-6), key
    nets = model_dir.load_model_dir(str(tmp_path / "b" / texture.MODEL_SUBDIR))
    assert nets.image_size == SIZE and nets.recognizer is None


@pytest.mark.parametrize("refiner", ["fc", "uv_cnn"])
def test_table2_baseline_refiners_train(data_dir, tmp_path, refiner):
    config = make_config(data_dir, f"nets.refiner={refiner}", "nets.uv_resolution=32", "train.steps=1",
                         "loss.adversarial=false")
    summary = texture.train_texture(config, str(tmp_path), log=lambda *_: None)
    assert np.isfinite(summary["losses"]["total"]) and "critic" not in summary["losses"]


def test_config_errors_and_precision_policy(data_dir, tmp_path):
    with pytest.raises(ValueError, match="nets.refiner"):
        texture.setup_texture_training(make_config(data_dir, "nets.refiner=cnn"), str(tmp_path), log=lambda *_: None)
    with pytest.raises(ValueError, match="critic_steps"):
        texture.setup_texture_training(make_config(data_dir, "train.critic_steps=0"), str(tmp_path),
                                       log=lambda *_: None)
    with pytest.raises(ValueError, match="data.train"):
        texture.setup_texture_training(make_config("", "data.train="), str(tmp_path), log=lambda *_: None)
    assert texture.precision_policy(True, 1) == "mixed_float16"
    assert texture.precision_policy(True, 0) == "float32"
    assert texture.precision_policy(False, 2) == "float32"


def test_ground_truth_coarse_stage(data_dir, tmp_path):
    """nets.coarse_coefficients=ground_truth renders the coarse stage from the stored coefficients:
    the coarse render then matches the synthetic photo up to its detail and noise."""
    from face_gcn.evaluation import metrics
    run, _ = texture.setup_texture_training(make_config(data_dir, "nets.coarse_coefficients=ground_truth",
                                                        "train.critic_steps=1"), str(tmp_path), log=lambda *_: None)
    batch = first_batch(data_dir)
    losses = texture.make_texture_step(run.nets, run.critic, make_config(data_dir)["loss"], tf.Variable(1.0),
                                       tf.Variable(0.0), coarse_source="ground_truth")(batch)
    truth = forward.reconstruct(run.nets, batch["image"], face_mask=batch["mask"], training=True,
                                coefficients=batch["coefficients"])
    regressed = forward.reconstruct(run.nets, batch["image"], face_mask=batch["mask"])
    np.testing.assert_array_equal(truth.coefficients.numpy(), batch["coefficients"].numpy())
    photo = batch["image"].numpy() / 255.0
    mask = truth.refined_alpha.numpy() * batch["mask"].numpy()[..., 0]
    assert losses["pixel"].numpy() == pytest.approx(numpy_norm_mean(photo, truth.refined_image.numpy(), mask),
                                                    rel=1e-4)
    face = (batch["mask"].numpy()[..., 0] > 0.5) & (truth.coarse.alpha.numpy() > 0.5)
    true_psnr = metrics.masked_psnr(photo, np.clip(truth.coarse.image.numpy(), 0, 1), face)
    untrained_psnr = metrics.masked_psnr(photo, np.clip(regressed.coarse.image.numpy(), 0, 1), face)
    assert true_psnr.min() > 25.0 and true_psnr.min() > untrained_psnr.max() + 3.0, (true_psnr, untrained_psnr)
    summary = texture.train_texture(make_config(data_dir, "nets.coarse_coefficients=ground_truth", "train.steps=2"),
                                    str(tmp_path / "run"), log=lambda *_: None)
    assert np.isfinite(summary["losses"]["total"])
    with pytest.raises(ValueError, match="coefficients must be"):
        forward.reconstruct(run.nets, batch["image"], coefficients=np.zeros((1, 257), np.float32))


def test_ground_truth_coarse_stage_config_errors(data_dir, tmp_path):
    from face_gcn.data import tfrecords
    with pytest.raises(ValueError, match="augment=false"):
        texture.setup_texture_training(make_config(data_dir, "nets.coarse_coefficients=ground_truth",
                                                   "data.augment=true"), str(tmp_path), log=lambda *_: None)
    with pytest.raises(ValueError, match="nets.coarse_coefficients: must be one of"):
        texture.setup_texture_training(make_config(data_dir, "nets.coarse_coefficients=fit"), str(tmp_path),
                                       log=lambda *_: None)
    photos = tmp_path / "photos"
    photos.mkdir()
    example = tfrecords.FaceExample(image=np.zeros((SIZE, SIZE, 3), np.uint8), mask=np.ones((SIZE, SIZE), np.uint8),
                                    landmarks=np.full((5, 2), SIZE / 2, np.float32), transform=np.eye(2, 3),
                                    original_size=(SIZE, SIZE), num_faces=1, source="photo.png")
    tfrecords.write_shard(str(photos / "faces-00000-of-00001.tfrecord"), [tfrecords.serialize(example)] * 2)
    with pytest.raises(ValueError, match="stored coefficients"):
        texture.setup_texture_training(make_config(str(photos), "nets.coarse_coefficients=ground_truth"),
                                       str(tmp_path / "run"), log=lambda *_: None)


EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "..", "experiments")


def test_every_experiment_config_is_valid():
    names = sorted(f for f in os.listdir(EXPERIMENTS) if f.endswith(".yaml") and not f.startswith("coarse"))
    assert {"celeba_224.yaml", "celebahq_512.yaml", "demo.yaml"} <= set(names)
    assert sum(n.startswith("ablation_") for n in names) >= 4
    for name in names:
        config = texture.build_config(os.path.join(EXPERIMENTS, name))
        assert config["data"]["crop_size"] % 32 == 0, name


def test_train_cli_end_to_end(data_dir, tmp_path):
    workdir = str(tmp_path / "run")
    args = [sys.executable, "-m", "face_gcn.cli.main", "train", "--config", os.path.join(EXPERIMENTS, "demo.yaml"),
            "--workdir", workdir, "--data", data_dir, "--steps", "2", "--batch_size", "2",
            f"--set=data.crop_size={SIZE}"] + [f"--set={o}" for o in SMALL]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "trained 2 steps" in out.stdout
    meta = json.load(open(os.path.join(workdir, "model", "face_model.json")))
    assert meta["image_size"] == SIZE and meta["training"]["steps"] == 2
    bad = subprocess.run(args[:4] + ["--workdir", workdir, "--set", "train.nope=1"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "train.nope" in bad.stderr + bad.stdout
    negative = subprocess.run(args[:4] + ["--workdir", str(tmp_path / "none"), "--set", "train.steps=-5"],
                              capture_output=True, text=True, timeout=300)
    assert negative.returncode == 1 and "train.steps: must be >= 1, got -5" in negative.stderr.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / "none" / "model")


def test_mixed_precision_path_runs(data_dir, tmp_path, monkeypatch):
    """The GPU mixed-precision path (float16 CNNs, float32 GCNs, loss scaling), forced on the CPU."""
    import keras
    monkeypatch.setattr(texture, "precision_policy", lambda requested, gpus: "mixed_float16" if requested else "float32")
    config = make_config(data_dir, "train.mixed_precision=true", "train.steps=2", "train.critic_steps=2")
    run, dataset = texture.setup_texture_training(config, str(tmp_path), log=lambda *_: None)
    assert isinstance(run.loop.optimizer, keras.optimizers.LossScaleOptimizer)
    assert run.nets.regressor.dtype_policy.name == "mixed_float16" and run.critic.dtype_policy.name == "mixed_float16"
    assert run.nets.texture_gcn.dtype_policy.name == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after building
    losses = run.loop.run(dataset, 2, log=lambda *_: None)
    assert all(np.isfinite(v) for v in losses.values())


def test_optimisers_schedule_and_critic_start_are_the_authors(data_dir, tmp_path):
    """Defaults: Adam(0.9, 0.999, eps 1e-8) with per-variable clipping at 5 for both networks, the rate
    x 0.98 once per epoch (staircase; the critic's epoch is critic_steps of its iterations), s1/s4
    constant through each epoch counted in generator steps, the critic idle while s1 = 0."""
    run, _ = texture.setup_texture_training(make_config(data_dir, "train.critic_steps=3"), str(tmp_path / "a"),
                                            log=lambda *_: None)
    assert run.epoch_steps == 4  # 8 records, batch 2
    generator, critic = run.loop.objectives[0].optimizer, run.loop.objectives[1].optimizer
    for optimizer, decay_steps, betas in ((generator, 4, (0.9, 0.999)), (critic, 12, (0.9, 0.999))):
        assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon, optimizer.clipnorm) == (*betas, 1e-8, 5.0)
        rate = optimizer._learning_rate  # the schedule itself
        assert (rate.decay_steps, rate.decay_rate, rate.staircase) == (decay_steps, 0.98, True)
    critic_objective = run.loop.objectives[1]
    for step, s1 in ((0, 0.0), (3, 0.0), (4, 0.2), (7, 0.2), (8, 0.4)):
        run.loop.on_step_start(step)
        assert float(run.s1.numpy()) == pytest.approx(s1) and critic_objective.active(step) == (s1 > 0), step
    # epochs in batches (3 per step with critic_steps 3): step 2 has seen 6 batches, epoch 1
    run, _ = texture.setup_texture_training(
        make_config(data_dir, "train.critic_steps=3", "loss.epoch_unit=batches", "train.critic_start=always",
                    "train.critic_betas=[0.5,0.9]", "train.clip_norm=0", "train.decay_steps=7",
                    "train.decay_staircase=false"), str(tmp_path / "b"), log=lambda *_: None)
    run.loop.on_step_start(2)
    assert float(run.s1.numpy()) == pytest.approx(0.2) and run.loop.objectives[1].active is None
    critic = run.loop.objectives[1].optimizer
    assert (critic.beta_1, critic.beta_2, critic.clipnorm) == (0.5, 0.9, None)
    assert (critic._learning_rate.decay_steps, critic._learning_rate.staircase) == (21, False)
    for bad in ("loss.epoch_unit=images", "train.critic_start=later", "train.critic_betas=[0.5]",
                "train.clip_norm=-1"):
        with pytest.raises(ValueError):
            texture.setup_texture_training(make_config(data_dir, bad), str(tmp_path / "c"), log=lambda *_: None)


def test_same_seed_same_run(data_dir, tmp_path):
    """Seeded initialisation and data order: two runs of one config give the same losses.

    The critic's convolution gradients are summed by several CPU threads in an order that varies
    from run to run (also under tf.config.experimental.enable_op_determinism and without oneDNN);
    measured spread over repeated runs: up to 5e-5 relative on the critic's terms, none on the
    generator's. Hence two tolerances; another seed moves every term by far more than either."""
    config = make_config(data_dir, "train.steps=2", "train.critic_steps=2")
    first = texture.train_texture(config, str(tmp_path / "a"), log=lambda *_: None)["losses"]
    second = texture.train_texture(config, str(tmp_path / "b"), log=lambda *_: None)["losses"]
    assert first.keys() == second.keys()
    for key in first:
        critic_side = key.startswith("critic") or key == "adversarial"
        assert second[key] == pytest.approx(first[key], rel=1e-3 if critic_side else 1e-5, abs=1e-6), key
    # another seed draws other initial weights (setting up suffices; training a third run adds nothing)
    initial = [v.numpy() for v in texture.setup_texture_training(config, str(tmp_path / "c"), log=lambda *_: None)[0]
               .nets.texture_gcn.weights]
    config["data"]["seed"] = 1
    reseeded = texture.setup_texture_training(config, str(tmp_path / "d"), log=lambda *_: None)[0]
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(initial, reseeded.nets.texture_gcn.weights))


def test_coarse_cache_holds_the_fixed_coarse_stage_and_trains_without_the_cnns(data_dir, tmp_path):
    """prepare-coarse stores the regressor's embedding and the fitted coefficients next to the original records;
    training on the cache gives the same losses as training that runs the regressor and the fit per step."""
    from face_gcn.data import pipeline
    from face_gcn.fit import coarse_fit
    from face_gcn.nets import regressor as regressor_lib
    from face_gcn.reconstruction import coarse_cache
    regressor_path = str(tmp_path / "regressor.keras")
    regressor_lib.build_regressor((SIZE, SIZE, 3), backbone="compact").save(regressor_path)
    fixed = ["coarse.fit_steps=3", "coarse.landmarks=ground_truth68", f"nets.regressor={regressor_path}"]
    config = make_config(data_dir, *fixed, "train.critic_steps=1", "loss.adversarial=false")
    cache = str(tmp_path / "cache")
    # cached in batches of the step's size: the fit's float32 sums (the light solve's normal equations)
    # depend a little on the batch's make-up (2.7e-3 relative in vertex_albedo at batch 3)
    manifest = texture.prepare_coarse(config, data_dir, cache, batch_size=8, log=lambda *_: None)
    assert manifest["num_images"] == 8 and manifest["fit_steps"] == 3 and manifest["landmarks"] == "ground_truth68"
    assert coarse_cache.read_manifest(cache)["embedding_size"] == manifest["embedding_size"]

    run, _ = texture.setup_texture_training(config, str(tmp_path / "run"), log=lambda *_: None)
    source = next(iter(pipeline.make_dataset(data_dir, SIZE, 8, training=False)))
    cached = next(iter(pipeline.make_dataset(cache, SIZE, 8, training=False,
                                             embedding_size=manifest["embedding_size"])))
    np.testing.assert_array_equal(cached["image"].numpy(), source["image"].numpy())
    np.testing.assert_array_equal(cached["landmarks68"].numpy(), source["landmarks68"].numpy())
    regressed = regressor_lib.regress(run.nets.regressor, source["image"])
    np.testing.assert_allclose(cached["embedding"].numpy(), regressed.features.numpy(), atol=1e-5)
    # The cached coefficients are the regressor's after the fit: the fit's objective is lower there.
    objective = coarse_fit.refinement_config(3, 68)
    start, fitted = regressed.coefficients.numpy(), cached["coarse_coefficients"].numpy()
    assert not np.allclose(start, fitted)

    def total(coefficients):
        terms = coarse_fit.stage_terms(run.nets.morphable, tf.constant(coefficients), source["image"] / 255.0,
                                       source["mask"][..., 0], (source["landmarks68"] + 0.5) * (224 / SIZE),
                                       SIZE, True)
        return sum(objective.weights[name] * value.numpy() for name, value in terms.items())

    assert np.all(total(fitted) < total(start)), (total(start), total(fitted))

    # Same losses from the cache as from the regressor + fit run inside the step.
    s1, s4 = tf.Variable(0.5), tf.Variable(0.5)
    step = texture.make_texture_step(run.nets, None, config["loss"], s1, s4, landmarks="ground_truth68")
    from_cache, per_step = step(cached), step(source)
    for key in ("pixel", "vertex_albedo", "vertex_projected", "total"):
        assert from_cache[key].numpy() == pytest.approx(per_step[key].numpy(), rel=2e-3, abs=1e-5), key

    summary = texture.train_texture(make_config(cache, *fixed, "train.steps=2"), str(tmp_path / "cached_run"),
                                    log=lambda *_: None)
    assert np.isfinite(summary["losses"]["total"])
    meta = model_dir.read_meta(str(tmp_path / "cached_run" / texture.MODEL_SUBDIR))
    assert meta["coarse_fit_steps"] == 3


def test_coarse_cache_errors(data_dir, tmp_path):
    cache = str(tmp_path / "cache")
    texture.prepare_coarse(make_config(data_dir, "coarse.fit_steps=1"), data_dir, cache, log=lambda *_: None)
    with pytest.raises(ValueError, match="augment=false"):
        texture.setup_texture_training(make_config(cache, "coarse.fit_steps=1", "data.augment=true"),
                                       str(tmp_path / "a"), log=lambda *_: None)
    with pytest.raises(ValueError, match="fit_steps"):
        texture.setup_texture_training(make_config(cache, "coarse.fit_steps=2"), str(tmp_path / "b"),
                                       log=lambda *_: None)
    with pytest.raises(ValueError, match="coarse.landmarks: must be one of"):
        texture.setup_texture_training(make_config(data_dir, "coarse.landmarks=eyes"), str(tmp_path / "c"),
                                       log=lambda *_: None)
    with pytest.raises(ValueError, match="own"):
        texture.prepare_coarse(make_config(data_dir), data_dir, data_dir, log=lambda *_: None)
    run, _ = texture.setup_texture_training(make_config(data_dir, "coarse.fit_steps=1"), str(tmp_path / "d"),
                                            log=lambda *_: None)
    with pytest.raises(ValueError, match="needs landmarks"):
        forward.reconstruct(run.nets, first_batch(data_dir)["image"])
    with pytest.raises(ValueError, match="coefficients too"):
        forward.reconstruct(run.nets, first_batch(data_dir)["image"], embedding=np.zeros((2, 8), np.float32))
