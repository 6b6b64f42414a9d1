"""tf.data training input over prepared TFRecord shards.

Each batch is a dict:
  image       [B, S, S, 3] float32 RGB in [0, 255]
  mask        [B, S, S, 1] float32 face-region mask in {0, 1}
  landmarks   [B, 5, 2] float32 crop pixels (moved with any shift)
  transform   [B, 2, 3] float32 original pixels -> (shifted) crop pixels
  source      [B] string
  coefficients      [B, 257] float32 ground-truth coefficients (zeros where absent)
  landmarks68       [B, 68, 2] float32 ground-truth crop pixels (zeros where absent; moved with
                    any shift where present)
  has_ground_truth  [B] float32, 1.0 for examples that carry the two fields above (synthetic)
  landmarks68_detected      [B, 68, 2] float32 dlib's 68, crop pixels (zeros where absent; moved with
                            any shift where present)
  has_landmarks68_detected  [B] float32, 1.0 for examples that carry them (prepare-data with dlib)
Augmentation (training only) is random but reproducible: every element's random numbers are
drawn by stateless ops from (seed, the element's position in the stream), so a fixed seed
gives the same batches whatever the parallelism.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import tensorflow as tf

from face_gcn.data import tfrecords


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """brightness: max additive change as a fraction of 255; contrast, saturation: max relative
    change of the factor (1 +- value); hue: max hue rotation as a fraction of a turn;
    max_shift: largest translation in pixels along each axis (integer, zero-filled)."""

    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.0
    max_shift: int = 8


def shard_files(pattern_or_dir: str) -> list[str]:
    """A folder of *.tfrecord shards or a glob pattern -> sorted file list."""
    if os.path.isdir(pattern_or_dir):
        pattern_or_dir = os.path.join(pattern_or_dir, "*.tfrecord")
    files = sorted(glob.glob(pattern_or_dir))
    if not files:
        raise ValueError(f"no TFRecord shards match {pattern_or_dir}")
    return files


def shift_image(image, dx, dy):
    """Translates [S, S, C] by integer (dx, dy) pixels (x right, y down), zero fill.

    Output pixel (y, x) = input pixel (y - dy, x - dx)."""
    size = tf.shape(image)[0]
    margin = tf.maximum(tf.abs(dx), tf.abs(dy))
    padded = tf.pad(image, [[margin, margin], [margin, margin], [0, 0]])
    return tf.slice(padded, [margin - dy, margin - dx, 0], [size, size, tf.shape(image)[2]])


def augment_example(example, seed, aug: Augmentation):
    """Colour jitter and shift of one parsed, float example; seed: [2] int32/int64."""
    image, mask = example["image"], example["mask"]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=6)
    scaled = image / 255.0
    if aug.brightness > 0:
        scaled = tf.image.stateless_random_brightness(scaled, aug.brightness, seeds[0])
    if aug.contrast > 0:
        scaled = tf.image.stateless_random_contrast(scaled, 1 - aug.contrast, 1 + aug.contrast,
                                                    seeds[1])
    if aug.saturation > 0:
        scaled = tf.image.stateless_random_saturation(scaled, 1 - aug.saturation,
                                                      1 + aug.saturation, seeds[2])
    if aug.hue > 0:
        scaled = tf.image.stateless_random_hue(scaled, aug.hue, seeds[3])
    image = tf.clip_by_value(scaled, 0.0, 1.0) * 255.0
    landmarks, transform = example["landmarks"], example["transform"]
    if aug.max_shift > 0:
        shift = tf.random.stateless_uniform([2], seeds[4], -aug.max_shift, aug.max_shift + 1,
                                            dtype=tf.int32)
        image = shift_image(image, shift[0], shift[1])
        mask = shift_image(mask, shift[0], shift[1])
        offset = tf.cast(shift, tf.float32)
        landmarks = landmarks + offset
        # Absent ground truth stays zero (has_ground_truth 0).
        landmarks68 = example["landmarks68"] + offset * example["has_ground_truth"]
        detected68 = example["landmarks68_detected"] + offset * example["has_landmarks68_detected"]
        example = dict(example, landmarks68=landmarks68, landmarks68_detected=detected68)
        transform = transform + tf.concat([tf.zeros([2, 2]), offset[:, None]], axis=1)
    return dict(example, image=image, mask=mask, landmarks=landmarks, transform=transform)


def _to_float(example):
    return {
        **{key: example[key] for key in ("coarse_coefficients", "embedding") if key in example},
        "image": tf.cast(example["image"], tf.float32),
        "mask": tf.cast(example["mask"], tf.float32),
        "landmarks": example["landmarks"],
        "transform": example["transform"],
        "source": example["source"],
        "coefficients": example["coefficients"],
        "landmarks68": example["landmarks68"],
        "has_ground_truth": example["has_ground_truth"],
        "landmarks68_detected": example["landmarks68_detected"],
        "has_landmarks68_detected": example["has_landmarks68_detected"],
    }


def make_dataset(shards, crop_size: int, batch_size: int, training: bool = True,
                 augmentation: Augmentation | None = None, seed: int = 0,
                 shuffle_buffer: int = 256, repeat: bool | None = None,
                 num_parallel_calls=tf.data.AUTOTUNE, drop_remainder: bool | None = None,
                 embedding_size: int = 0):
    """The input pipeline (module docstring).

    Args:
      shards: a folder, a glob pattern or a list of TFRecord files.
      training: shuffle (files and examples, with ``seed``), repeat and augment (when
        ``augmentation`` is given); otherwise one pass in file order.
      repeat, drop_remainder: default to ``training``.
      embedding_size: E > 0 reads a coarse cache (face-gcn prepare-coarse): batches also hold
        coarse_coefficients [B, 257] and embedding [B, E]; augmentation is refused (it would no
        longer match the cached coarse stage).
    """
    if embedding_size > 0 and training and augmentation is not None:
        raise ValueError("a coarse cache cannot be augmented: shifts and colour changes would no longer match "
                         "its stored coarse coefficients (set data.augment=false)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    files = shard_files(shards) if isinstance(shards, str) else list(shards)
    repeat = training if repeat is None else repeat
    drop_remainder = training if drop_remainder is None else drop_remainder
    if training:
        dataset = tf.data.Dataset.from_tensor_slices(files)
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                                     num_parallel_calls=num_parallel_calls, deterministic=True)
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    else:  # one pass, file after file, in order
        dataset = tf.data.TFRecordDataset(files)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(lambda record: _to_float(tfrecords.parse(record, crop_size, embedding_size)),
                          num_parallel_calls=num_parallel_calls, deterministic=True)
    if training and augmentation is not None:
        dataset = dataset.enumerate().map(
            lambda index, example: augment_example(
                example, tf.stack([tf.cast(seed, tf.int64), index]), augmentation),
            num_parallel_calls=num_parallel_calls, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
