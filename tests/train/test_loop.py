"""The generic loop on a line fit: loss drops, checkpoints resume exactly, events hold scalars and images."""

import glob
import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.train.loop import NonFiniteLossError, TrainLoop, exponential_decay


def line_dataset(nan_at=None):
    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    y = 3.0 * x - 0.5
    if nan_at is not None:
        y[nan_at * 8:(nan_at + 1) * 8] = np.nan
    paths = np.array([f"img{i}.png" for i in range(64)])
    return tf.data.Dataset.from_tensor_slices({"x": x, "y": y, "path": paths}).batch(8).repeat()


def make_loop(workdir, every=2, image=False):
    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(1)
    layer.build((None, 1))

    def step_fn(batch):
        return {"total": tf.reduce_mean(tf.square(layer(batch["x"]) - batch["y"]))}

    image_fn = (lambda batch: {"preview": tf.zeros([1, 4, 4, 3]) + 0.5}) if image else None
    optimizer = keras.optimizers.SGD(exponential_decay(0.2, 10, 0.9))
    loop = TrainLoop(step_fn, layer.trainable_variables, optimizer, str(workdir), checkpoint_every=every,
                     summary_every=1, image_fn=image_fn)
    return loop, layer


def read_events(workdir):
    tags = {}
    for path in glob.glob(os.path.join(workdir, "events", "*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append((event.step, value.metadata.plugin_data.plugin_name))
    return tags


def test_loss_drops_and_events_are_written(tmp_path):
    loop, _ = make_loop(tmp_path, image=True)
    first = loop.run(line_dataset(), 1, log=lambda *_: None)["total"]
    last = loop.run(line_dataset(), 30, log=lambda *_: None)["total"]
    assert last < 0.05 * first
    tags = read_events(str(tmp_path))
    assert "loss/total" in tags and "learning_rate" in tags
    assert [s for s, _ in tags["loss/total"]][-1] == 30
    assert tags["preview"][0][1] == "images"


def test_resume_continues_from_saved_step_with_identical_variables(tmp_path):
    loop, layer = make_loop(tmp_path / "a", every=3)
    loop.run(line_dataset(), 10, log=lambda *_: None)
    reference = [v.numpy().copy() for v in layer.trainable_variables]

    stopped, _ = make_loop(tmp_path / "b", every=3)
    stopped.run(line_dataset(), 6, log=lambda *_: None)  # saves 3 and 6, then the object is dropped
    del stopped
    resumed, layer_b = make_loop(tmp_path / "b", every=3)
    messages = []
    resumed.run(line_dataset(), 10, log=messages.append)
    assert messages[0] == "resuming from step 6"
    for got, want in zip([v.numpy() for v in layer_b.trainable_variables], reference):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_nan_guard_names_step_and_sources(tmp_path):
    loop, layer = make_loop(tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"step 2.*img16.png"):
        loop.run(line_dataset(nan_at=2), 5, log=lambda *_: None)
    assert all(np.all(np.isfinite(v.numpy())) for v in layer.trainable_variables)


SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_loop import line_dataset, make_loop
    loop, layer = make_loop({workdir!r}, every=1)
    slow = line_dataset().map(lambda b: b)
    def log(msg):
        print(msg, flush=True)
    class Slow:
        def __iter__(self):
            for i, batch in enumerate(slow.skip(int(loop.step.numpy()))):
                if i >= 2 and {slow}:
                    time.sleep(0.5)
                yield batch
    loop.run(Slow(), 12, log=log)
    print("done", [v.numpy().tolist() for v in layer.trainable_variables], flush=True)
""")


def test_sigkill_mid_run_then_resume(tmp_path):
    tests = os.path.dirname(__file__)
    workdir = str(tmp_path / "k")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(tests=tests, workdir=workdir, slow=True)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    checkpoints = os.path.join(workdir, "checkpoints", "checkpoint")
    for _ in range(600):
        if os.path.exists(checkpoints) and "ckpt-4" in open(checkpoints).read():
            break
        if proc.poll() is not None:
            break
        import time
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    assert saved is not None and 4 <= int(saved.rsplit("-", 1)[1]) < 12
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=tests, workdir=workdir, slow=False)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resuming from step" in out.stdout and "done" in out.stdout
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("-12")


DISTRIBUTED = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, keras
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {tests!r})
    from test_loop import line_dataset
    from face_gcn.train.loop import TrainLoop, select_strategy

    def train(strategy, workdir):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            layer = keras.layers.Dense(1)
            layer.build((None, 1))
            optimizer = keras.optimizers.Adam(0.05)
        def step_fn(batch):
            return {{"total": tf.reduce_mean(tf.square(layer(batch["x"]) - batch["y"]))}}
        images = lambda batch: {{"preview": tf.zeros([1, 4, 4, 3])}}
        loop = TrainLoop(step_fn, layer.trainable_variables, optimizer, workdir, strategy=strategy,
                         summary_every=2, image_fn=images)
        losses = loop.run(line_dataset(), 5, log=lambda *_: None)
        return [v.numpy().ravel().tolist() for v in layer.trainable_variables], losses["total"]

    mirrored = select_strategy(mirrored=True)
    print(json.dumps({{"replicas": mirrored.num_replicas_in_sync,
                      "mirrored": train(mirrored, {workdir!r} + "/m"),
                      "single": train(tf.distribute.get_strategy(), {workdir!r} + "/s")}}))
""")


def test_mirrored_over_two_logical_cpus_matches_single_device(tmp_path):
    script = DISTRIBUTED.format(tests=os.path.dirname(__file__), workdir=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    (mirrored, mirrored_loss), (single, single_loss) = result["mirrored"], result["single"]
    for got, want in zip(mirrored, single):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert mirrored_loss == pytest.approx(single_loss, rel=1e-5)
    assert single != [[0.0], [0.0]]


def test_extra_objective_updates_before_each_main_step_on_fresh_batches(tmp_path):
    keras.utils.set_random_seed(0)
    generator, critic = tf.Variable([0.0]), tf.Variable([0.0])
    seen = []

    def step_fn(batch):
        seen.append(None)  # traced once per tf.function, not per call
        return {"total": tf.reduce_sum(tf.square(generator - batch["x"])),
                "critic": tf.reduce_sum(tf.square(critic - batch["x"]))}

    dataset = tf.data.Dataset.range(100).map(lambda i: {"x": tf.cast([i], tf.float32)})
    main_opt, critic_opt = keras.optimizers.SGD(0.5), keras.optimizers.SGD(0.5)
    from face_gcn.train.loop import Objective
    loop = TrainLoop(step_fn, [generator], main_opt, str(tmp_path), summary_every=100,
                     extra_objectives=[Objective("critic", [critic], critic_opt, updates_before=2)])
    loop.run(dataset, 2, log=lambda *_: None)
    # step 1 uses batches 0,1 (critic only) and 2 (both); step 2 uses 3,4 and 5.
    assert int(main_opt.iterations.numpy()) == 2 and int(critic_opt.iterations.numpy()) == 6
    # SGD(0.5) on (v - x)^2 jumps to x: the generator sits at its last batch, 5; so does the critic.
    assert generator.numpy()[0] == pytest.approx(5.0) and critic.numpy()[0] == pytest.approx(5.0)
    # resuming continues at batch 6 (3 batches per step)
    loop2 = TrainLoop(step_fn, [generator], keras.optimizers.SGD(0.5), str(tmp_path), summary_every=100,
                      extra_objectives=[Objective("critic", [critic], keras.optimizers.SGD(0.5), updates_before=2)])
    loop2.run(dataset, 3, log=lambda *_: None)
    assert generator.numpy()[0] == pytest.approx(8.0)


def test_an_inactive_objective_is_left_alone_but_its_batches_are_drawn(tmp_path):
    """Objective.active (e.g. a critic that starts once s1 > 0): inactive steps update only the
    main objective, on the same batch positions as if it were active."""
    generator, critic = tf.Variable([0.0]), tf.Variable([-1.0])

    def step_fn(batch):
        return {"total": tf.reduce_sum(tf.square(generator - batch["x"])),
                "critic": tf.reduce_sum(tf.square(critic - batch["x"]))}

    dataset = tf.data.Dataset.range(100).map(lambda i: {"x": tf.cast([i], tf.float32)})
    critic_opt = keras.optimizers.SGD(0.5)
    from face_gcn.train.loop import Objective
    asked = []
    loop = TrainLoop(step_fn, [generator], keras.optimizers.SGD(0.5), str(tmp_path), summary_every=100,
                     extra_objectives=[Objective("critic", [critic], critic_opt, updates_before=1,
                                                 active=lambda step: asked.append(step) or step >= 2)])
    loop.run(dataset, 2, log=lambda *_: None)
    # steps 0 and 1 (batches 0-1, 2-3): the generator jumps to 1 then 3, the critic never moves
    assert asked == [0, 1] and generator.numpy()[0] == pytest.approx(3.0) and critic.numpy()[0] == -1.0
    assert int(critic_opt.iterations.numpy()) == 0
    loop.run(dataset, 3, log=lambda *_: None)  # step 2 (resumed: batches 4 (critic), 5 (both))
    assert generator.numpy()[0] == pytest.approx(5.0) and critic.numpy()[0] == pytest.approx(5.0)
    assert int(critic_opt.iterations.numpy()) == 2


def test_a_killed_checkpoint_write_is_cleaned_up_and_resume_works(tmp_path):
    generator = tf.Variable([0.0])
    dataset = tf.data.Dataset.range(100).map(lambda i: {"x": tf.cast([i], tf.float32)})
    step_fn = lambda batch: {"total": tf.reduce_sum(tf.square(generator - batch["x"]))}
    TrainLoop(step_fn, [generator], keras.optimizers.SGD(0.5), str(tmp_path), summary_every=100).run(
        dataset, 2, log=lambda *_: None)
    stale = tmp_path / "checkpoints" / "ckpt-3_temp"
    stale.mkdir()
    (stale / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half a checkpoint")
    messages = []
    TrainLoop(step_fn, [generator], keras.optimizers.SGD(0.5), str(tmp_path), summary_every=100).run(
        dataset, 3, log=messages.append)
    assert "resuming from step 2" in messages and not stale.exists()
    assert not any("_temp" in name for name in os.listdir(tmp_path / "checkpoints"))


def test_image_grid_puts_columns_side_by_side():
    from face_gcn.train.loop import image_grid
    a, b = np.zeros([6, 2, 3, 3], np.float32), np.ones([6, 2, 3, 3], np.float32)
    grid = image_grid([a, b], max_rows=4).numpy()
    assert grid.shape == (4, 2, 6, 3)
    np.testing.assert_array_equal(grid[:, :, :3], 0.0)
    np.testing.assert_array_equal(grid[:, :, 3:], 1.0)
    with pytest.raises(ValueError):
        image_grid([a, np.ones([6, 2, 4, 3])])
