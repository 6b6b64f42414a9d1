"""dlib's 128-d face descriptor network (a ResNet-34-like metric net) in Keras.

Weights come from dlib's own file (dlib_face_recognition_resnet_model_v1.dat, which the PyPI package
face_recognition_models carries; face_gcn.nets.dlib_weights reads it) or from the npm package
@vladmandic/face-api, which carries the same network as TensorFlow.js weights
(model/face_recognition_model-weights_manifest.json, read by face_gcn.nets.tfjs_weights). The forward
pass (dlib's anet_type; src/faceRecognitionNet in face-api), rebuilt here layer for layer:

  x = (RGB 0-255 at 150 x 150 - mean RGB (122.782, 117.001, 104.298)) / divisor
      (divisor: 256 in dlib's input_rgb_image_sized, 255 in face-api; a non-trainable weight of the
      "normalize" layer, so each converted .weights.h5 carries its own)
  conv32_down: conv 7x7 stride 2 VALID + bias, per-channel scale (x w + b), ReLU; max-pool 3 / 2 VALID
  residual (conv32_1..3, conv64_1..3, conv128_1..2, conv256_1..2):
      relu(x + scale(conv3x3(relu(scale(conv3x3(x))))))      (SAME, stride 1)
  residual down (conv64_down, conv128_down, conv256_down, conv256_down_out):
      a = scale(conv3x3 SAME(relu(scale(conv3x3 stride 2 VALID(x)))))
      p = avg-pool 2 / 2 VALID of x, zero channels appended up to a's
      when a is a row and a column smaller than p, a zero row (bottom) and column (right) are
      appended to a; out = relu(a + p)   (dlib's add_prev: both zero-padded to the larger size)
  mean over the spatial axes (256 features), then fc [256, 128] (no bias).

Each conv + bias + scale is one Keras Conv2D here (kernel x w, bias x w + b: the same map, rounded
differently). Input: float RGB 0-255 [B, 150, 150, 3], as dlib's 150 x 150 face chip (other sizes
are resized, bilinear as face-api does: TF's legacy resize without half-pixel centres; dlib itself
only takes 150 x 150). Outputs, a dict: "descriptor" [B, 128], dlib's own (compared by Euclidean
distance, 0.6 for the same person), "embedding" [B, 128] = descriptor / ||descriptor|| (float32),
"features" [B, 256], the spatial mean the fc layer maps.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from face_gcn import fileio

PACKAGE = "face_gcn"
INPUT_SIZE = 150
DESCRIPTOR_SIZE = 128
FEATURE_SIZE = 256
FACE_API_DIVISOR = 255.0  # face-api: (x - mean) / 255
DLIB_DIVISOR = 256.0  # dlib/dnn/input.h, input_rgb_image_sized: (x - mean) / 256.0
MEAN_RGB = (122.782, 117.001, 104.298)
# (prefix, output channels, down-sampling) of the residual stages, in order
RESIDUAL_STAGES = (("conv32_1", 32, False), ("conv32_2", 32, False), ("conv32_3", 32, False),
                   ("conv64_down", 64, True), ("conv64_1", 64, False), ("conv64_2", 64, False),
                   ("conv64_3", 64, False), ("conv128_down", 128, True), ("conv128_1", 128, False),
                   ("conv128_2", 128, False), ("conv256_down", 256, True), ("conv256_1", 256, False),
                   ("conv256_2", 256, False), ("conv256_down_out", 256, True))


def _conv_names():
    """Every conv + scale unit's face-api prefix, in the order the network applies them."""
    names = ["conv32_down"]
    for prefix, _, _ in RESIDUAL_STAGES:
        names += [f"{prefix}/conv1", f"{prefix}/conv2"]
    return names


def _layer_name(prefix: str) -> str:
    return prefix.replace("/", "_")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualDownShortcut(keras.layers.Layer):
    """face-api's residual-down sum: relu(a' + p') with p = avg-pool 2/2 VALID of x, zero channels
    appended to p up to a's, and a zero row and column appended to a when p is larger."""

    def call(self, inputs):
        branch, x = inputs
        pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")
        extra = branch.shape[-1] - pooled.shape[-1]
        if extra:
            pooled = tf.pad(pooled, [[0, 0], [0, 0], [0, 0], [0, extra]])
        if branch.shape[1] != pooled.shape[1] or branch.shape[2] != pooled.shape[2]:
            branch = tf.pad(branch, [[0, 0], [0, 1], [0, 1], [0, 0]])
        return tf.nn.relu(pooled + branch)


def _to_network_input(images, divisor):
    """RGB 0-255 [B, H, W, 3] -> the normalised 150 x 150 input [B, 150, 150, 3]."""
    images = tf.cast(images, tf.float32)
    if images.shape[1] != INPUT_SIZE or images.shape[2] != INPUT_SIZE:
        images = tf.raw_ops.ResizeBilinear(images=images, size=[INPUT_SIZE, INPUT_SIZE],
                                           align_corners=False, half_pixel_centers=False)
    return (images - tf.constant(MEAN_RGB, tf.float32)) / tf.cast(divisor, tf.float32)


def _check_divisor(divisor) -> float:
    divisor = float(divisor)
    if not np.isfinite(divisor) or divisor <= 0:
        raise ValueError(f"the input divisor must be a positive number, got {divisor}")
    return divisor


@keras.saving.register_keras_serializable(package=PACKAGE)
class FaceApiInput(keras.layers.Layer):
    """Resize to 150 x 150 (TF's legacy bilinear, as face-api), subtract the mean RGB, / divisor.

    divisor: a non-trainable scalar weight (saved with the weights), 255 (face-api) or 256 (dlib).
    """

    def __init__(self, divisor: float = FACE_API_DIVISOR, **kwargs):
        super().__init__(**kwargs)
        self.initial_divisor = _check_divisor(divisor)

    def build(self, input_shape):
        self.divisor = self.add_weight(name="divisor", shape=(), trainable=False,
                                       initializer=keras.initializers.Constant(self.initial_divisor))

    def call(self, images):
        return _to_network_input(images, self.divisor)

    def get_config(self):
        return {**super().get_config(), "divisor": self.initial_divisor}

    def compute_output_shape(self, input_shape):
        return (input_shape[0], INPUT_SIZE, INPUT_SIZE, 3)


def build_face_descriptor(weights: str | os.PathLike | None = None, name: str = "face_descriptor") -> keras.Model:
    """The network: RGB 0-255 [B, H, W, 3] -> {"descriptor": [B, 128], "embedding": [B, 128] (unit
    length), "features": [B, 256]}.

    weights: a `.weights.h5` from `face-gcn convert-face-api` (or dlib_weights.packaged_weights());
    None leaves the initial weights (for load_face_api_weights / dlib_weights.load_dlib_weights).
    """
    images = keras.Input((None, None, 3), name="images")
    x = FaceApiInput(name="normalize")(images)
    x = keras.layers.Conv2D(32, 7, strides=2, padding="valid", name="conv32_down")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(3, 2, padding="valid", name="pool")(x)
    for prefix, channels, down in RESIDUAL_STAGES:
        branch = keras.layers.Conv2D(channels, 3, strides=2 if down else 1, padding="valid" if down else "same",
                                     name=_layer_name(f"{prefix}/conv1"))(x)
        branch = keras.layers.ReLU()(branch)
        branch = keras.layers.Conv2D(channels, 3, padding="same", name=_layer_name(f"{prefix}/conv2"))(branch)
        if down:
            x = ResidualDownShortcut(name=f"{prefix}_sum")([branch, x])
        else:
            x = keras.layers.ReLU()(keras.layers.Add(name=f"{prefix}_sum")([branch, x]))
    features = keras.layers.GlobalAveragePooling2D(name="mean")(x)
    descriptor = keras.layers.Dense(DESCRIPTOR_SIZE, use_bias=False, name="fc")(features)
    embedding = keras.layers.UnitNormalization(name="embedding", dtype="float32")(descriptor)
    outputs = {"descriptor": descriptor, "embedding": embedding, "features": features}
    model = keras.Model(images, outputs, name=name)
    if weights is not None:
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"face descriptor weights file not found: {weights}")
        fileio.refuse_lfs_pointer(weights, "face descriptor weights")
        try:
            model.load_weights(weights)
        except (ValueError, OSError) as error:
            raise ValueError(f"{weights} is not a face descriptor weights file (face-gcn convert-face-api "
                             f"writes one; files written before the input divisor was saved need "
                             f"converting again): {str(error).splitlines()[0][:200]}") from None
    return model


def load_face_api_weights(model: keras.Model, weights: dict[str, np.ndarray],
                          divisor: float = FACE_API_DIVISOR) -> None:
    """Assigns face-api's weights (names as in its manifest) to build_face_descriptor's layers.

    divisor: the input normalisation's, FACE_API_DIVISOR (face-api) or DLIB_DIVISOR (dlib's .dat).
    Raises ValueError naming a missing weight or a shape that does not fit.
    """
    divisor = _check_divisor(divisor)
    expected = {f"{prefix}/{part}" for prefix in _conv_names()
                for part in ("conv/filters", "conv/bias", "scale/weights", "scale/biases")} | {"fc"}
    missing = sorted(expected - set(weights))
    if missing:
        raise ValueError(f"face-api weights lack {len(missing)} of {len(expected)} tensors, e.g. {missing[:3]}: "
                         "not face_recognition_model's manifest")
    for prefix in _conv_names():
        layer = model.get_layer(_layer_name(prefix))
        filters = np.asarray(weights[f"{prefix}/conv/filters"], np.float32)
        bias = np.asarray(weights[f"{prefix}/conv/bias"], np.float32)
        scale = np.asarray(weights[f"{prefix}/scale/weights"], np.float32)
        shift = np.asarray(weights[f"{prefix}/scale/biases"], np.float32)
        kernel_shape = tuple(layer.kernel.shape)
        if filters.shape != kernel_shape or not bias.shape == scale.shape == shift.shape == (kernel_shape[-1],):
            raise ValueError(f"face-api weight {prefix}: filters {filters.shape}, bias {bias.shape}, scale "
                             f"{scale.shape} do not fit the layer's kernel {kernel_shape}")
        layer.set_weights([filters * scale, bias * scale + shift])
    fc = np.asarray(weights["fc"], np.float32)
    if fc.shape != (256, DESCRIPTOR_SIZE):
        raise ValueError(f"face-api weight fc has shape {fc.shape}, expected (256, {DESCRIPTOR_SIZE})")
    model.get_layer("fc").set_weights([fc])
    model.get_layer("normalize").divisor.assign(divisor)
