"""A generic custom training loop: tf.function step, checkpoints with resume, TensorBoard, NaN guard.

The loop knows nothing about faces: it takes ``step_fn(batch) -> {name: scalar loss}`` and one or
more objectives, each minimising one named loss over its own variables with its own optimizer
(the generator's "total" and, for an adversarial setup, the critic's loss). Under a
tf.distribute strategy the step runs once per replica on that replica's share of the batch;
losses are averaged and gradients summed across replicas (each replica's loss is divided by the
number of replicas first, so the update equals the single-device update on the global batch).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from typing import Callable, Iterable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency, but the loop works without it
    tqdm = None


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the batch's source paths."""


def select_strategy(mirrored: bool = False) -> tf.distribute.Strategy:
    """The strategy for this process.

    MultiWorkerMirroredStrategy when TF_CONFIG describes several workers; MirroredStrategy over
    the local GPUs when asked or when several GPUs are visible (over the logical CPUs when there
    is no GPU and ``mirrored`` is set); the default (single-device) strategy otherwise.
    """
    tf_config = os.environ.get("TF_CONFIG", "")
    if tf_config and '"worker"' in tf_config:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1 or (mirrored and gpus):
        return tf.distribute.MirroredStrategy()
    if mirrored:
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(cpus if len(cpus) > 1 else None)
    return tf.distribute.get_strategy()


def exponential_decay(initial: float, decay_steps: int, decay_rate: float, staircase: bool = False):
    """Learning rate initial * decay_rate ** (step / decay_steps); staircase: the exponent floored."""
    return keras.optimizers.schedules.ExponentialDecay(initial, decay_steps, decay_rate, staircase=staircase)


@dataclasses.dataclass(frozen=True, eq=False)  # compared by identity
class Objective:
    """Minimise ``losses[loss_key]`` over ``variables`` with ``optimizer``.

    updates_before: extra updates of this objective alone, each on a fresh batch, before every
      joint step (WGAN-GP's several critic steps per generator step: critic_steps - 1).
    active: optional callable(step) -> bool, asked on the host before each step; a step where it
      is False leaves this objective's variables alone (its extra batches are still drawn, so
      the data position stays a function of the step). None: always active.
    """

    loss_key: str
    variables: Sequence[tf.Variable]
    optimizer: keras.optimizers.Optimizer
    updates_before: int = 0
    active: Callable[[int], bool] | None = None


def _remove_unfinished_checkpoints(directory: str) -> None:
    """Removes the ckpt-N_temp* folders and files a killed checkpoint write leaves behind (the
    finished checkpoints and the `checkpoint` index are kept)."""
    if not os.path.isdir(directory):
        return
    for entry in os.listdir(directory):
        if "_temp" in entry and entry.startswith("ckpt-"):
            stale = os.path.join(directory, entry)
            if os.path.isdir(stale):
                shutil.rmtree(stale, ignore_errors=True)
            else:
                os.remove(stale)


class TrainLoop:
    """Runs ``step_fn`` on batches, applies each objective's gradients, checkpoints and logs.

    Args:
      step_fn: batch (dict of tensors) -> dict of scalar losses; must contain "total" and the
        loss_key of every extra objective.
      variables, optimizer: the main objective, minimising "total".
      workdir: checkpoints in workdir/checkpoints, TensorBoard events in workdir/events.
      checkpoint_every: steps between checkpoints (one is also written at the end).
      trackables: extra objects to checkpoint by name (e.g. the model).
      image_fn: optional batch -> {name: [B, H, W, C] float images in [0, 1]}, logged every
        summary_every steps (on the first replica's share of the batch).
      path_key: the batch key whose strings name the examples' source files (for the NaN error).
      strategy: a tf.distribute strategy; variables and optimizers must have been created in
        its scope. None: the current (default) strategy.
      extra_objectives: further Objective()s (e.g. the critic), updated in the same step.
      on_step_start: optional callable(step) run on the host before each step (e.g. to set loss
        weights that follow a schedule, held in tf.Variables the step reads).

    After run(), ``steps_per_second`` is the training rate excluding the first (tracing) step.

    A step counts one update of the main objective; it consumes 1 + max(updates_before) batches.
    """

    def __init__(self, step_fn: Callable, variables: Sequence[tf.Variable], optimizer, workdir: str,
                 checkpoint_every: int = 100, summary_every: int = 10, max_to_keep: int = 3,
                 trackables: Mapping | None = None, image_fn: Callable | None = None, path_key: str = "path",
                 strategy: tf.distribute.Strategy | None = None, extra_objectives: Sequence[Objective] = (),
                 on_step_start: Callable[[int], None] | None = None):
        if not variables:
            raise ValueError("no variables to train")
        self.step_fn = step_fn
        self.strategy = strategy or tf.distribute.get_strategy()
        self.objectives = (Objective("total", list(variables), optimizer),) + tuple(extra_objectives)
        keys = [objective.loss_key for objective in self.objectives]
        if len(set(keys)) != len(keys):
            raise ValueError(f"objectives must minimise different losses, got {keys}")
        for objective in self.objectives:
            if not objective.variables:
                raise ValueError(f"objective {objective.loss_key!r} has no variables")
        self.variables, self.optimizer = self.objectives[0].variables, optimizer
        self.batches_per_step = 1 + max(objective.updates_before for objective in self.objectives)
        self.workdir, self.checkpoint_every, self.summary_every = workdir, checkpoint_every, summary_every
        self.image_fn, self.path_key, self.on_step_start = image_fn, path_key, on_step_start
        self.steps_per_second = float("nan")
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        objects = dict(trackables or {})
        tracked_variables = {f"{o.loss_key}/{i}": v for o in self.objectives for i, v in enumerate(o.variables)}
        optimizers = {o.loss_key: o.optimizer for o in self.objectives[1:]}
        self.checkpoint = tf.train.Checkpoint(step=self.step, optimizer=optimizer, variables=tracked_variables,
                                              extra_optimizers=optimizers, **objects)
        _remove_unfinished_checkpoints(os.path.join(workdir, "checkpoints"))
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(workdir, "checkpoints"),
                                                  max_to_keep=max_to_keep)
        self.writer = tf.summary.create_file_writer(os.path.join(workdir, "events"))
        with self.strategy.scope():
            for objective in self.objectives:  # slots exist before tracing and before a restore
                objective.optimizer.build(list(objective.variables))
        self._joint_steps = {}  # compiled per set of active objectives, on first use
        self._single_steps = {o.loss_key: self._compiled_step((o,)) for o in self.objectives if o.updates_before}

    def restore(self) -> int:
        """Restores the latest checkpoint if there is one; returns the step it resumes from."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.step.numpy())

    def _compiled_step(self, objectives):
        return tf.function(lambda batch: self._distributed_step(batch, objectives), autograph=False)

    def _replica_step(self, batch, objectives):
        replicas = self.strategy.num_replicas_in_sync
        with tf.GradientTape(persistent=len(objectives) > 1) as tape:
            losses = self.step_fn(batch)
            missing = [o.loss_key for o in objectives if o.loss_key not in losses]
            if missing:
                raise ValueError(f"step_fn must return the losses {missing}, got {sorted(losses)}")
            scaled = [o.optimizer.scale_loss(tf.cast(losses[o.loss_key], tf.float32) / replicas)
                      for o in objectives]
        gradients = [tape.gradient(loss, list(o.variables)) for loss, o in zip(scaled, objectives)]
        del tape
        for objective, grads in zip(objectives, gradients):
            if all(g is None for g in grads):
                raise ValueError(f"the {objective.loss_key!r} loss does not depend on any of its variables")
        # None gradients (variables a loss does not reach) become zeros so they can be all-reduced.
        gradients = [[tf.zeros_like(v) if g is None else g for g, v in zip(grads, o.variables)]
                     for grads, o in zip(gradients, objectives)]
        return {k: tf.cast(v, tf.float32) for k, v in losses.items()}, gradients

    def _distributed_step(self, batch, objectives):
        """One update of ``objectives`` (cross-replica context); returns (mean losses, all finite)."""
        losses, gradients = self.strategy.run(self._replica_step, args=(batch, objectives))
        mean = tf.distribute.ReduceOp.MEAN
        losses = {k: self.strategy.reduce(mean, v, axis=None) for k, v in losses.items()}
        gradients = [[self.strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in grads]
                     for grads in gradients]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(l)) for l in losses.values()])

        # A non-finite step leaves every variable untouched; the host then stops with an error.
        # (Applying in the cross-replica context keeps the optimizer's all-reduce out of the cond.)
        def apply():
            for objective, grads in zip(objectives, gradients):
                objective.optimizer.apply_gradients(zip(grads, objective.variables))
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        return losses, finite

    def _local(self, batch):
        """The first replica's share of a (possibly distributed) batch."""
        return tf.nest.map_structure(lambda v: self.strategy.experimental_local_results(v)[0], batch)

    def _source_paths(self, batch) -> list[str]:
        if not isinstance(batch, Mapping) or self.path_key not in batch:
            return []
        parts = self.strategy.experimental_local_results(batch[self.path_key])
        values = np.concatenate([np.asarray(p).reshape(-1) for p in parts])
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]

    def _check(self, losses, finite, batch, step: int) -> None:
        if not bool(finite):
            bad = sorted(k for k, v in losses.items() if not np.all(np.isfinite(v.numpy())))
            raise NonFiniteLossError(f"non-finite loss {bad} at step {step}; batch sources: "
                                     f"{self._source_paths(batch) or 'unknown'}")

    def run(self, dataset: Iterable, num_steps: int, resume: bool = True, log=print) -> dict:
        """Trains until the global step reaches ``num_steps``; returns the last losses as floats.

        On resume the batches the finished steps consumed are skipped (data position restored
        for a deterministic dataset). A tf.data dataset is distributed over the strategy's
        replicas here; its batch size is the global batch size.
        """
        start = self.restore() if resume else int(self.step.numpy())
        if start:
            log(f"resuming from step {start}")
        if isinstance(dataset, tf.data.Dataset):
            dataset = dataset.skip(start * self.batches_per_step)
            if self.strategy.num_replicas_in_sync > 1:
                dataset = self.strategy.experimental_distribute_dataset(dataset)
        iterator = iter(dataset)
        bar = tqdm(total=num_steps, initial=start, desc="train", disable=None) if tqdm else None
        last: dict = {}
        timed_steps, timed_seconds = 0, 0.0
        try:
            while int(self.step.numpy()) < num_steps:
                step = int(self.step.numpy())
                started = time.perf_counter()
                if self.on_step_start is not None:
                    self.on_step_start(step)
                active = tuple(o for o in self.objectives if o.active is None or o.active(step))
                try:
                    for objective in self.objectives:
                        for _ in range(objective.updates_before):
                            batch = next(iterator)
                            if objective in active:
                                losses, finite = self._single_steps[objective.loss_key](batch)
                                self._check(losses, finite, batch, step)
                    batch = next(iterator)
                except StopIteration:
                    log("dataset exhausted")
                    break
                keys = tuple(objective.loss_key for objective in active)
                if keys not in self._joint_steps:
                    self._joint_steps[keys] = self._compiled_step(active)
                losses, finite = self._joint_steps[keys](batch)
                self._check(losses, finite, batch, step)
                self.step.assign_add(1)
                step += 1
                last = {k: float(v.numpy()) for k, v in losses.items()}
                if step > start + 1:  # the first step of a run traces the tf.functions
                    timed_steps, timed_seconds = timed_steps + 1, timed_seconds + time.perf_counter() - started
                if step % self.summary_every == 0 or step == num_steps:
                    self._write_summaries(step, last, batch)
                if step % self.checkpoint_every == 0:
                    self.manager.save(checkpoint_number=step)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(total=f"{last['total']:.4g}")
            step = int(self.step.numpy())
            if self.manager.latest_checkpoint is None or not self.manager.latest_checkpoint.endswith(f"-{step}"):
                self.manager.save(checkpoint_number=step)
        finally:
            if bar is not None:
                bar.close()
            self.writer.flush()
            if timed_steps:
                self.steps_per_second = timed_steps / timed_seconds
        return last

    def _write_summaries(self, step: int, losses: Mapping[str, float], batch) -> None:
        with self.writer.as_default(step=step):
            for name, value in losses.items():
                _scalar(f"loss/{name}", value)
            for objective in self.objectives:
                learning_rate = objective.optimizer.learning_rate
                if callable(learning_rate):
                    learning_rate = learning_rate(step)
                tag = "learning_rate" if objective.loss_key == "total" else f"learning_rate/{objective.loss_key}"
                _scalar(tag, float(np.asarray(learning_rate)))
            if self.image_fn is not None:
                for name, images in self.image_fn(self._local(batch)).items():
                    _images(name, images)


def image_grid(columns: Sequence, max_rows: int = 4) -> tf.Tensor:
    """Side-by-side panels per example: columns of [B, H, W, 3] in [0, 1] -> [min(B, max_rows), H, W*N, 3].

    E.g. (input, coarse render, refined render) -> one "input | coarse | refined" strip per example.
    """
    columns = [tf.cast(tf.convert_to_tensor(c), tf.float32)[:max_rows] for c in columns]
    shapes = {tuple(c.shape[1:]) for c in columns}
    if not columns or len(shapes) != 1 or columns[0].shape.rank != 4:
        raise ValueError(f"columns must be equal [B, H, W, C] images, got {[c.shape for c in columns]}")
    return tf.concat(columns, axis=2)


# TensorBoard's summary formats written with tf.summary.write, so no tensorboard package is needed.
def _scalar(tag: str, value: float) -> None:
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=metadata)


def _images(tag: str, images, max_outputs: int = 4) -> None:
    """images: [B, H, W, C] floats in [0, 1] (C = 1, 3 or 4), stored as PNGs like tf.summary.image."""
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image summary {tag!r} must be [B, H, W, 1|3|4], got {images.shape}")
    encoded = tf.image.convert_image_dtype(tf.clip_by_value(images[:max_outputs], 0.0, 1.0), tf.uint8, saturate=True)
    pngs = [tf.io.encode_png(image) for image in tf.unstack(encoded)]
    size = [tf.as_string(tf.shape(images)[2]), tf.as_string(tf.shape(images)[1])]
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "images"
    tf.summary.write(tag, tf.stack(size + pngs), metadata=metadata)
