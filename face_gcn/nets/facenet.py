"""FaceNet (Inception-ResNet-v1, Sandberg's 20180402-114759 layout) as a frozen feature extractor.

The network definition is keras-facenet's `InceptionResNetV1` (never `keras_facenet.FaceNet()`,
which downloads). Weights come only from a local file: a Keras `.weights.h5` written by
`face-gcn convert-facenet`, or Sandberg's TF1 checkpoint via
face_gcn.nets.facenet_checkpoint.load_sandberg_checkpoint.

The wrapper model takes RGB images [B, H, W, 3] in [0, 255] of any size, resizes them
bilinearly to 160 x 160, scales them as (x - 127.5) / pixel_scale (Sandberg: 128;
keras-facenet: 127.5) and returns
  "embedding" [B, 512]: the L2-normalised bottleneck (identity loss, unit vectors),
  "features"  [B, 1792]: the global average pool (Sandberg's Logits/AvgPool_1a_8x8), the image
              feature the GCN decoder concatenates with the regressor's 2048-d pool5.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from face_gcn import fileio
from face_gcn.nets import recognition

INPUT_SIZE = 160
EMBEDDING_SIZE = 512
FEATURE_SIZE = 1792
PIXEL_MEAN = 127.5
SANDBERG_PIXEL_SCALE = 128.0
CORE_NAME = "inception_resnet_v1"
# FaceNet keeps the recognition networks' contract (face_gcn.nets.recognition): embed(model, images) runs it in
# inference mode on RGB [B, H, W, 3] in [0, 255] -> (embedding [B, 512] unit length, features [B, 1792])
FaceNetOutputs = recognition.RecognitionOutputs
embed = recognition.embed


@keras.saving.register_keras_serializable(package="face_gcn")
class FaceNetPreprocess(keras.layers.Layer):
    """[B, H, W, 3] RGB in [0, 255] -> [B, 160, 160, 3] as (resize(x) - 127.5) / pixel_scale."""

    def __init__(self, pixel_scale: float = SANDBERG_PIXEL_SCALE, size: int = INPUT_SIZE,
                 **kwargs):
        super().__init__(**kwargs)
        if pixel_scale <= 0:
            raise ValueError(f"pixel_scale must be positive, got {pixel_scale}")
        self.pixel_scale = float(pixel_scale)
        self.size = int(size)

    def call(self, images):
        images = tf.cast(images, tf.float32)
        if images.shape[1] != self.size or images.shape[2] != self.size:
            images = tf.image.resize(images, [self.size, self.size], method="bilinear")
        return (images - PIXEL_MEAN) / self.pixel_scale

    def get_config(self):
        return {**super().get_config(), "pixel_scale": self.pixel_scale, "size": self.size}


def build_facenet_core() -> keras.Model:
    """keras-facenet's Inception-ResNet-v1 (512-d, 23,497,424 parameters) with two outputs:
    [B, 160, 160, 3] scaled pixels -> ([B, 1792] AvgPool, [B, 512] bottleneck after BatchNorm,
    not normalised). Layer names are keras-facenet's (e.g. 'Block35_1_Branch_0_Conv2d_1x1')."""
    # Imported here: keras_facenet pulls in mtcnn/opencv, needed only when FaceNet is built.
    from keras_facenet.inception_resnet_v1 import InceptionResNetV1  # pylint: disable=import-outside-toplevel

    full = InceptionResNetV1(input_shape=(INPUT_SIZE, INPUT_SIZE, 3), classes=EMBEDDING_SIZE)
    return keras.Model(full.input, [full.get_layer("AvgPool").output,
                                    full.get_layer("Bottleneck_BatchNorm").output],
                       name=CORE_NAME)


def build_facenet(input_shape=(None, None, 3), pixel_scale: float = SANDBERG_PIXEL_SCALE,
                  weights: str | None = None, trainable: bool = False,
                  name: str = "facenet") -> keras.Model:
    """Builds FaceNet for RGB images [B, H, W, 3] in [0, 255] (any H, W; resized to 160).

    Args:
      input_shape: (H, W, 3); None for sizes fixed only at call time.
      pixel_scale: divisor after subtracting 127.5 (128 as in Sandberg's code).
      weights: optional local `.weights.h5` from `face-gcn convert-facenet`.
      trainable: False (default) freezes every weight, as in the paper.
      name: model name.

    Returns:
      A model returning a dict with "embedding" [B, 512] (L2-normalised) and
      "features" [B, 1792]. BatchNorm always runs in inference mode when frozen.
    """
    images = keras.Input(shape=tuple(input_shape), name="images")
    scaled = FaceNetPreprocess(pixel_scale, name="facenet_preprocess")(images)
    core = build_facenet_core()
    features, bottleneck = core(scaled)
    embedding = keras.layers.UnitNormalization(axis=-1, name="embedding")(bottleneck)
    model = keras.Model(images, {"embedding": embedding, "features": features}, name=name)
    if weights is not None:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"FaceNet weights file not found: {weights}")
        fileio.refuse_lfs_pointer(weights, "FaceNet weights")
        model.load_weights(weights)
    model.trainable = trainable
    return model
