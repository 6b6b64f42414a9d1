"""A generic custom training loop: tf.function step, checkpoints with resume, TensorBoard, NaN guard.

The loop knows nothing about faces: it takes ``step_fn(batch) -> {name: scalar loss}`` whose ``"total"``
entry is minimised over ``variables``.
"""

from __future__ import annotations

import math
import os
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
    """MirroredStrategy when asked or when several GPUs are visible, the default strategy otherwise."""
    if mirrored or len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def exponential_decay(initial: float, decay_steps: int, decay_rate: float):
    """Learning rate initial * decay_rate ** (step / decay_steps) (continuous)."""
    return keras.optimizers.schedules.ExponentialDecay(initial, decay_steps, decay_rate)


class TrainLoop:
    """Runs ``step_fn`` on batches, applies gradients to ``variables``, checkpoints and logs.

    Args:
      step_fn: batch (dict of tensors) -> dict of scalar losses; must contain "total".
      variables: the trainable variables.
      optimizer: a Keras optimizer (its learning rate may be a schedule).
      workdir: checkpoints in workdir/checkpoints, TensorBoard events in workdir/events.
      checkpoint_every: steps between checkpoints (one is also written at the end).
      trackables: extra objects to checkpoint by name (e.g. the model).
      image_fn: optional batch -> {name: [B, H, W, C] float images in [0, 1]}, logged every summary_every steps.
      path_key: the batch key whose strings name the examples' source files (for the NaN error).
    """

    def __init__(self, step_fn: Callable, variables: Sequence[tf.Variable], optimizer, workdir: str,
                 checkpoint_every: int = 100, summary_every: int = 10, max_to_keep: int = 3,
                 trackables: Mapping | None = None, image_fn: Callable | None = None, path_key: str = "path"):
        if not variables:
            raise ValueError("no variables to train")
        self.step_fn, self.variables, self.optimizer = step_fn, list(variables), optimizer
        self.workdir, self.checkpoint_every, self.summary_every = workdir, checkpoint_every, summary_every
        self.image_fn, self.path_key = image_fn, path_key
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        objects = dict(trackables or {})
        self.checkpoint = tf.train.Checkpoint(step=self.step, optimizer=optimizer,
                                              variables={str(i): v for i, v in enumerate(self.variables)},
                                              **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(workdir, "checkpoints"),
                                                  max_to_keep=max_to_keep)
        self.writer = tf.summary.create_file_writer(os.path.join(workdir, "events"))
        self.optimizer.build(self.variables)  # slots exist before tracing and before a restore
        self._train_step = tf.function(self._apply)

    def restore(self) -> int:
        """Restores the latest checkpoint if there is one; returns the step it resumes from."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.step.numpy())

    def _apply(self, batch):
        with tf.GradientTape() as tape:
            losses = self.step_fn(batch)
            if "total" not in losses:
                raise ValueError(f"step_fn must return a 'total' loss, got {sorted(losses)}")
        gradients = tape.gradient(losses["total"], self.variables)
        pairs = [(g, v) for g, v in zip(gradients, self.variables) if g is not None]
        if not pairs:
            raise ValueError("the total loss does not depend on any trained variable")
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(l)) for l in losses.values()])
        # A non-finite step leaves the variables untouched; the host then stops with an error.
        def apply():
            self.optimizer.apply_gradients(pairs)
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        return losses, finite

    def _source_paths(self, batch) -> list[str]:
        if not isinstance(batch, Mapping) or self.path_key not in batch:
            return []
        values = np.asarray(batch[self.path_key]).reshape(-1)
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]

    def run(self, dataset: Iterable, num_steps: int, resume: bool = True, log=print) -> dict:
        """Trains until the global step reaches ``num_steps``; returns the last losses as floats.

        On resume the first ``step`` batches of ``dataset`` are skipped (data position restored for a
        deterministic dataset).
        """
        start = self.restore() if resume else int(self.step.numpy())
        if start:
            log(f"resuming from step {start}")
        if isinstance(dataset, tf.data.Dataset):
            dataset = dataset.skip(start)
        iterator = iter(dataset)
        bar = tqdm(total=num_steps, initial=start, desc="train", disable=None) if tqdm else None
        last: dict = {}
        try:
            while int(self.step.numpy()) < num_steps:
                try:
                    batch = next(iterator)
                except StopIteration:
                    log("dataset exhausted")
                    break
                losses, finite = self._train_step(batch)
                step = int(self.step.numpy())
                if not bool(finite):
                    bad = sorted(k for k, v in losses.items() if not np.all(np.isfinite(v.numpy())))
                    raise NonFiniteLossError(f"non-finite loss {bad} at step {step}; batch sources: "
                                             f"{self._source_paths(batch) or 'unknown'}")
                self.step.assign_add(1)
                step += 1
                last = {k: float(v.numpy()) for k, v in losses.items()}
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
        return last

    def _write_summaries(self, step: int, losses: Mapping[str, float], batch) -> None:
        with self.writer.as_default(step=step):
            for name, value in losses.items():
                _scalar(f"loss/{name}", value)
            learning_rate = self.optimizer.learning_rate
            if callable(learning_rate):
                learning_rate = learning_rate(step)
            _scalar("learning_rate", float(np.asarray(learning_rate)))
            if self.image_fn is not None:
                for name, images in self.image_fn(batch).items():
                    _images(name, images)


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
