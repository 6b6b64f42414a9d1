"""The coarse-stage regressor: ResNet-50 -> 257 morphable-model coefficients (Deng's layout).

Backbones: "resnet50" (Deng's, 2048 features, the default) or "compact" (5 strided
conv + batch-norm + ReLU blocks of widths 32, 64, 128, 256, 256, global average pool: 256
features; about 1.0 M parameters with the head, for CPU demos and tests at small sizes such as 64 px).

Coefficient order (face_gcn.morphable.coefficients): identity 80 | expression 64 | texture 80 |
angles 3 | SH gamma 27 | translation 3.

Preprocessing (inside the model): the input is RGB in [0, 255]; it is flipped to BGR and the
ImageNet 'caffe' channel means are subtracted (B 103.939, G 116.779, R 123.68), which is what
keras.applications.ResNet50 expects and close to Deng's network, which takes BGR in [0, 255].
Nothing is ever downloaded: the backbone starts random unless `weights` names a local file.

Deng et al.'s released network (FaceReconModel.pb, a TF1 frozen graph) is used through
`face-gcn convert-deng`, which rebuilds it in Keras (face_gcn.nets.deng_keras): the .keras file it
writes takes and gives what build_regressor's models do and loads with load_regressor. The .pb
itself is refused here with a message naming that command.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import keras
import tensorflow as tf

from face_gcn import fileio, keras_io

NUM_COEFFICIENTS = 257
FEATURE_SIZE = 2048  # ResNet-50 global average pool (Deng's resnet_v1_50/pool5)
BACKBONES = ("resnet50", "compact")
COMPACT_WIDTHS = (32, 64, 128, 256, 256)
# Faster-moving batch-norm statistics than Keras' 0.99, so the short demo runs leave usable
# inference-mode statistics behind.
COMPACT_BN_MOMENTUM = 0.9
INPUT_SIZE = 224
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
CONVERT_DENG_HINT = ("a frozen TF1 graph (.pb) is not a Keras regressor; convert Deng's FaceReconModel.pb "
                     "once with `face-gcn convert-deng --frozen_graph FaceReconModel.pb --out deng_regressor.keras` "
                     "and use the .keras file")


class RegressorOutputs(NamedTuple):
    """coefficients [B, 257] (Deng layout); features [B, F] (pool5, for the GCN decoder;
    F = feature_size(backbone): 2048 for ResNet-50)."""

    coefficients: tf.Tensor
    features: tf.Tensor


@keras.saving.register_keras_serializable(package="face_gcn")
class RgbToCaffeBgr(keras.layers.Layer):
    """[B, H, W, 3] RGB in [0, 255] -> [B, H, W, 3] BGR minus the ImageNet channel means."""

    def call(self, images):
        bgr = tf.reverse(tf.cast(images, tf.float32), axis=[-1])
        return bgr - tf.constant(CAFFE_BGR_MEAN, tf.float32)


@keras.saving.register_keras_serializable(package="face_gcn")
class RgbToBgr(keras.layers.Layer):
    """[B, H, W, 3] RGB -> [B, H, W, 3] BGR, values unchanged (Deng's network takes BGR in [0, 255])."""

    def call(self, images):
        return tf.reverse(tf.cast(images, tf.float32), axis=[-1])


def _refuse_frozen_graph(path: str) -> None:
    if path.endswith(".pb"):
        raise ValueError(f"{path}: {CONVERT_DENG_HINT}")


def feature_size(backbone: str = "resnet50") -> int:
    """Length F of the pooled feature vector of a backbone (2048 resnet50, 256 compact)."""
    sizes = {"resnet50": FEATURE_SIZE, "compact": COMPACT_WIDTHS[-1]}
    if backbone not in sizes:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    return sizes[backbone]


def build_compact_backbone(input_shape, name: str = "compact") -> keras.Model:
    """[B, H, W, 3] (caffe-BGR) -> [B, ceil(H/32), ceil(W/32), 256]: five blocks of 3x3 conv
    stride 2 (no bias) + batch-norm + ReLU, widths COMPACT_WIDTHS, He-normal init."""
    inputs = keras.Input(shape=input_shape, name=f"{name}_input")
    x = inputs
    for i, width in enumerate(COMPACT_WIDTHS):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False,
                                kernel_initializer="he_normal", name=f"conv{i + 1}")(x)
        x = keras.layers.BatchNormalization(momentum=COMPACT_BN_MOMENTUM, name=f"bn{i + 1}")(x)
        x = keras.layers.ReLU(name=f"relu{i + 1}")(x)
    return keras.Model(inputs, x, name=name)


def build_regressor(input_shape=(INPUT_SIZE, INPUT_SIZE, 3), weights: str | None = None,
                    name: str = "regressor", backbone: str = "resnet50") -> keras.Model:
    """Builds the regressor as a Keras model.

    Args:
      input_shape: (H, W, 3) of the RGB input; Deng uses 224 x 224.
      weights: optional local `.weights.h5` file written by `model.save_weights` of a model
        built by this function (same backbone and input shape), or a whole regressor `.keras`
        file (train-coarse's regressor.keras, convert-deng's output), which is loaded as it is:
        its own layers, whatever `backbone` says; its input shape must be `input_shape`.
      name: model name.
      backbone: "resnet50" (default; nested layer named "resnet50") or "compact" (nested layer
        named "compact"; see the module docstring).

    Returns:
      A model mapping images [B, H, W, 3] (float32 RGB, 0-255) to a dict with
      "coefficients" [B, 257] and "features" [B, F], F = feature_size(backbone). The coefficient
      head is zero-initialised, so an untrained model outputs all-zero coefficients, i.e. the
      mean face, neutral pose and Deng's default lighting.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (H, W, 3), got {input_shape}")
    feature_size(backbone)  # validates the name
    if weights is not None:
        _refuse_frozen_graph(weights)
        if weights.endswith(".keras"):
            model = load_regressor(weights)
            if tuple(model.input.shape[1:]) != input_shape:
                raise ValueError(f"{weights}: the regressor takes {tuple(model.input.shape[1:])} images, "
                                 f"expected {input_shape}")
            return model
    images = keras.Input(shape=input_shape, name="images")
    preprocessed = RgbToCaffeBgr(name="rgb_to_caffe_bgr")(images)
    if backbone == "resnet50":
        net = keras.applications.ResNet50(include_top=False, weights=None,
                                          input_shape=input_shape, name="resnet50")
    else:
        net = build_compact_backbone(input_shape)
    features = keras.layers.GlobalAveragePooling2D(name="pool5")(net(preprocessed))
    coefficients = keras.layers.Dense(NUM_COEFFICIENTS, kernel_initializer="zeros",
                                      bias_initializer="zeros", name="coefficients")(features)
    model = keras.Model(images, {"coefficients": coefficients, "features": features}, name=name)
    if weights is not None:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"regressor weights file not found: {weights}")
        fileio.refuse_lfs_pointer(weights, "regressor weights")
        model.load_weights(weights)
    return model


def load_regressor(path: str) -> keras.Model:
    """Loads a whole regressor saved with ``model.save(path)`` (a ``.keras`` file, e.g. the
    ``regressor.keras`` that train-coarse writes in its workdir)."""
    _refuse_frozen_graph(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"regressor file not found: {path}")
    fileio.refuse_lfs_pointer(path, "regressor")
    if not path.endswith(".keras"):
        raise ValueError(f"expected a .keras file, got {path}")
    return keras_io.load_keras_file(path, "regressor", custom_objects={"RgbToCaffeBgr": RgbToCaffeBgr,
                                                                        "RgbToBgr": RgbToBgr})


def regress(model: keras.Model, images, training: bool = False) -> RegressorOutputs:
    """Runs `model` (from build_regressor) on RGB images [B, H, W, 3] in [0, 255]."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [B, H, W, 3], got {images.shape}")
    outputs = model(images, training=training)
    return RegressorOutputs(outputs["coefficients"], outputs["features"])
