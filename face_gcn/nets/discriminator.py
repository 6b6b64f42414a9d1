"""The critic of the adversarial loss (Lin et al. 2020; layer sizes from the authors' code).

conv 1x1 -> 16, then 3x3 convs -> 32, 64, 128, 256; each of these five convs is followed by a
2x2 max-pool (224 -> 112 -> 56 -> 28 -> 14 -> 7); a 3x3 conv -> 512; every conv so far is
conv -> normalisation -> leaky ReLU(0.2) (then the pool); finally a (S/32)x(S/32) VALID conv
(7x7 for 224) -> one score per image. As the authors' image_disc: every conv has a bias and
He-normal weights; their batch norm (tf.contrib.layers.batch_norm, decay 0.9) has an offset but
no scale, epsilon 1e-3; trainable parameters at 224 px: 1,598,481.

Normalisation: the authors used batch-norm in the WGAN-GP critic ("batch", the default). The
gradient penalty is defined per sample, and batch-norm couples the samples of a batch, so WGAN-GP
practice (Gulrajani et al. 2017) is layer norm or none: ``normalization="layer"`` offers it.
"""

from __future__ import annotations

import keras

WIDTHS = (16, 32, 64, 128, 256)
TOP_WIDTH = 512
NORMALIZATIONS = ("batch", "layer", "none")


def _normalization(kind: str, name: str):
    if kind == "batch":
        return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, scale=False, name=name)
    if kind == "layer":
        # one group: statistics over (H, W, C) of each sample, scale and offset per channel
        return keras.layers.GroupNormalization(groups=1, name=name)
    return keras.layers.Identity(name=name)


def build_discriminator(image_size: int = 224, normalization: str = "batch", widths=WIDTHS,
                        top_width: int = TOP_WIDTH, name: str = "discriminator") -> keras.Model:
    """Images [B, S, S, 3] (S divisible by 2^len(widths)) -> scores [B] (unbounded, WGAN critic).

    Args:
      image_size: S in pixels (224 in the paper).
      normalization: "batch" (authors), "layer" or "none".
      widths: output channels of the pooled convs (first one 1x1, the others 3x3).
      top_width: channels of the last 3x3 conv.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    reduction = 2 ** len(widths)
    if image_size % reduction or image_size < reduction:
        raise ValueError(f"image_size must be a positive multiple of {reduction}, got {image_size}")
    images = keras.Input((image_size, image_size, 3), name="images")
    x = images
    for index, width in enumerate(widths):
        kernel = 1 if index == 0 else 3
        x = keras.layers.Conv2D(width, kernel, padding="same", kernel_initializer="he_normal", name=f"conv{index}")(x)
        x = _normalization(normalization, f"norm{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"lrelu{index}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = keras.layers.Conv2D(top_width, 3, padding="same", kernel_initializer="he_normal", name="conv_top")(x)
    x = _normalization(normalization, "norm_top")(x)
    x = keras.layers.LeakyReLU(0.2, name="lrelu_top")(x)
    side = image_size // reduction
    x = keras.layers.Conv2D(1, side, padding="valid", kernel_initializer="he_normal", name="score")(x)  # [B,1,1,1]
    scores = keras.layers.Reshape((), name="flatten_score")(x)
    return keras.Model(images, scores, name=name)
