"""Converting David Sandberg's FaceNet checkpoint (20180402-114759) onto keras-facenet's layers.

Sandberg's TF1 slim variables (src/models/inception_resnet_v1.py) are named, e.g.
  InceptionResnetV1/Conv2d_1a_3x3/weights                 [3, 3, 3, 32]
  InceptionResnetV1/Conv2d_1a_3x3/BatchNorm/moving_mean   [32]   (beta, moving_mean,
                                                                  moving_variance; no gamma)
  InceptionResnetV1/Repeat/block35_3/Branch_2/Conv2d_0c_3x3/weights
  InceptionResnetV1/Repeat_1/block17_10/Conv2d_1x1/biases (the block's up-projection)
  InceptionResnetV1/Repeat_2/block8_5/...   and the last, unrepeated  InceptionResnetV1/Block8/...
  InceptionResnetV1/Mixed_6a/Branch_1/Conv2d_0b_3x3/weights
  InceptionResnetV1/Bottleneck/weights [1792, 512] and InceptionResnetV1/Bottleneck/BatchNorm/*
Keras layers are named by keras-facenet: 'Block35_3_Branch_2_Conv2d_0c_3x3',
'Block35_3_Branch_2_Conv2d_0c_3x3_BatchNorm', 'Block8_6_Conv2d_1x1', 'Mixed_6a_Branch_1_...',
'Bottleneck', 'Bottleneck_BatchNorm'. Kernel layouts agree ([kh, kw, in, out] and [in, out]).
Variables outside InceptionResnetV1/ (the softmax 'Logits', 'centers', 'global_step') and
optimizer slots are ignored.
"""

from __future__ import annotations

import glob
import os
import re

import keras
import numpy as np
import tensorflow as tf

from face_gcn import fileio

SCOPE = "InceptionResnetV1"
_REPEAT_SCOPES = {"Block35": "Repeat/block35", "Block17": "Repeat_1/block17",
                  "Block8": "Repeat_2/block8"}
_LAST_BLOCK8 = 6  # keras-facenet's Block8_6 is Sandberg's unrepeated InceptionResnetV1/Block8
_BLOCK = re.compile(r"^(Block35|Block17|Block8)_(\d+)_(.+)$")
_MIXED = re.compile(r"^(Mixed_6a|Mixed_7a)_(.+)$")
_BRANCH = re.compile(r"^Branch_(\d+)_(.+)$")
_WEIGHT_NAMES = {"kernel": "weights", "bias": "biases", "beta": "beta",
                 "moving_mean": "moving_mean", "moving_variance": "moving_variance"}
_OPTIMIZER_MARKERS = ("/RMSProp", "/Adam", "/Momentum", "/Adagrad", "ExponentialMovingAverage")


class CheckpointMismatchError(ValueError):
    """The checkpoint does not hold the variables the network needs."""


def _branch_path(rest: str) -> str:
    match = _BRANCH.match(rest)
    return f"Branch_{match.group(1)}/{match.group(2)}" if match else rest


def sandberg_scope(layer_name: str) -> str:
    """keras-facenet layer name -> Sandberg variable scope, e.g.
    'Block17_2_Branch_1_Conv2d_0b_1x7_BatchNorm' ->
    'InceptionResnetV1/Repeat_1/block17_2/Branch_1/Conv2d_0b_1x7/BatchNorm'."""
    suffix = ""
    if layer_name.endswith("_BatchNorm"):
        layer_name, suffix = layer_name[: -len("_BatchNorm")], "/BatchNorm"
    block = _BLOCK.match(layer_name)
    mixed = _MIXED.match(layer_name)
    if block:
        kind, index, rest = block.group(1), int(block.group(2)), block.group(3)
        if kind == "Block8" and index == _LAST_BLOCK8:
            scope = "Block8"
        else:
            scope = f"{_REPEAT_SCOPES[kind]}_{index}"
        path = f"{scope}/{_branch_path(rest)}"
    elif mixed:
        path = f"{mixed.group(1)}/{_branch_path(mixed.group(2))}"
    else:
        path = layer_name
    return f"{SCOPE}/{path}{suffix}"


def _weighted_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _weighted_layers(layer)
        elif layer.weights:
            yield layer


def variable_mapping(model: keras.Model) -> list[tuple[keras.Variable, str]]:
    """Every weight of the FaceNet layers in `model` (nested models included) paired with its
    Sandberg checkpoint variable name."""
    pairs = []
    for layer in _weighted_layers(model):
        scope = sandberg_scope(layer.name)
        for weight in layer.weights:
            short = weight.path.rsplit("/", 1)[-1]
            if short not in _WEIGHT_NAMES:
                raise CheckpointMismatchError(f"layer {layer.name}: no checkpoint counterpart "
                                              f"for weight {weight.path}")
            pairs.append((weight, f"{scope}/{_WEIGHT_NAMES[short]}"))
    return pairs


def load_sandberg_checkpoint(model: keras.Model, checkpoint_prefix: str,
                             allow_unused: bool = False) -> int:
    """Copies Sandberg's checkpoint into `model` (build_facenet or build_facenet_core).

    Args:
      model: a Keras model containing keras-facenet's Inception-ResNet-v1 layers.
      checkpoint_prefix: e.g. '.../model-20180402-114759.ckpt-275' (the .index/.data files).
      allow_unused: if False, InceptionResnetV1/ variables that no Keras weight takes are an
        error (they would mean a different architecture).

    Returns:
      The number of values copied. Nothing is assigned unless every weight matched.
    """
    prefix = os.fspath(checkpoint_prefix)
    if not os.path.isfile(prefix + ".index"):
        raise FileNotFoundError(f"checkpoint not found: {prefix}.index (give the prefix, e.g. "
                                "model-20180402-114759.ckpt-275)")
    for part in [prefix + ".index"] + sorted(glob.glob(glob.escape(prefix) + ".data-*")):
        fileio.refuse_lfs_pointer(part, "FaceNet checkpoint file", CheckpointMismatchError)
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        raise CheckpointMismatchError(f"{prefix} is not a readable TensorFlow checkpoint "
                                      f"({error.message if hasattr(error, 'message') else error})") from None
    pairs = variable_mapping(model)
    missing = [name for _, name in pairs if name not in shapes]
    if missing:
        shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise CheckpointMismatchError(f"{prefix}: {len(missing)} of {len(pairs)} variables "
                                      f"missing: {shown}")
    wrong = [f"{name} {tuple(shapes[name])} vs {tuple(weight.shape)}" for weight, name in pairs
             if tuple(shapes[name]) != tuple(weight.shape)]
    if wrong:
        raise CheckpointMismatchError(f"{prefix}: shape mismatch (checkpoint vs Keras): "
                                      + "; ".join(wrong[:8]))
    used = {name for _, name in pairs}
    unused = sorted(name for name in shapes if name.startswith(SCOPE + "/") and name not in used
                    and not any(marker in name for marker in _OPTIMIZER_MARKERS))
    if unused and not allow_unused:
        raise CheckpointMismatchError(f"{prefix}: {len(unused)} network variables have no Keras "
                                      f"counterpart: {', '.join(unused[:8])}")
    values = [(weight, reader.get_tensor(name)) for weight, name in pairs]
    for weight, value in values:
        weight.assign(np.asarray(value, dtype=weight.dtype))
    return int(sum(value.size for _, value in values))
