"""The frozen face-recognition network: one contract for L_id, the fit's identity term and the
texture GCN's image embedding.

Two networks keep it, both Keras models from RGB 0-255 images [B, H, W, 3] (any size; each resizes
to its own) to a dict with at least

  "embedding"  [B, D] unit length, what L_id and identity cosines compare;
  "features"   [B, F] the pooled features before the embedding head, what joins the regressor's
               pool features in the texture GCN's image embedding (E = 2048 + F).

  kind               network                                   D     F     weights
  "facenet"          Sandberg's FaceNet, Inception-ResNet-v1   512   1792  a local file (convert-facenet):
                     (the paper's choice)                                  the user brings it
  "face_descriptor"  dlib's face descriptor ResNet             128   256   dlib's own (CC0), carried by the
                                                                           face_recognition_models package
                                                                           and converted once, locally

A configuration names the network with one of CHOICES: "auto" is FaceNet when its weights are given
and dlib's descriptor otherwise; "none" turns identity off (L_id off, the embedding is the
regressor's features alone).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import keras
import tensorflow as tf

KINDS = ("facenet", "face_descriptor")
CHOICES = ("auto",) + KINDS + ("none",)
# the "features" width tells the two apart (FaceNet's AvgPool, dlib's spatial mean)
FEATURE_SIZES = {"facenet": 1792, "face_descriptor": 256}
NAMES = {"facenet": "FaceNet", "face_descriptor": "dlib's face descriptor"}


class RecognitionOutputs(NamedTuple):
    """embedding [B, D] unit length; features [B, F] (see the module docstring)."""

    embedding: tf.Tensor
    features: tf.Tensor


def embed(model: keras.Model, images) -> RecognitionOutputs:
    """Runs a recognition network in inference mode on RGB [B, H, W, 3] in [0, 255]."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [B, H, W, 3], got {images.shape}")
    outputs = model(images, training=False)
    return RecognitionOutputs(outputs["embedding"], outputs["features"])


def feature_size(model: keras.Model | None) -> int:
    """F of a recognition network's "features"; 0 for None (no network)."""
    return 0 if model is None else int(model.output["features"].shape[-1])


def kind_of(model: keras.Model | None) -> str | None:
    """"facenet" or "face_descriptor", from the width of the model's features; None for None."""
    if model is None:
        return None
    size = feature_size(model)
    for kind, expected in FEATURE_SIZES.items():
        if size == expected:
            return kind
    raise ValueError(f"not a recognition network of face_gcn: features of width {size} (expected one of "
                     f"{sorted(FEATURE_SIZES.values())})")


# an entry only each network's .weights.h5 holds: Keras 3 stores a layer's weights under layers/<its class
# name in snake case, numbered>, so the classes of our own layers tell the networks apart
_MARKER_LAYERS = {"facenet": "face_net_preprocess", "face_descriptor": "residual_down_shortcut"}


def weights_kind(path: str | os.PathLike) -> str | None:
    """The kind whose network a Keras .weights.h5 holds, from its layer names; None if neither's."""
    import h5py  # pylint: disable=import-outside-toplevel  (Keras' own dependency)
    try:
        with h5py.File(path, "r") as handle:
            layers = set(handle["layers"].keys()) if "layers" in handle else set()
    except OSError:
        return None
    return next((kind for kind, layer in _MARKER_LAYERS.items() if layer in layers), None)


def resolve(choice: str, facenet_weights: str = "") -> str | None:
    """The network a configuration asks for: a kind, or None for "none".

    choice: one of CHOICES; "auto" is "facenet" when facenet_weights is given, else "face_descriptor".
    """
    if choice not in CHOICES:
        raise ValueError(f"the recognizer must be one of {CHOICES}, got {choice!r}")
    if choice == "auto":
        return "facenet" if facenet_weights else "face_descriptor"
    if choice == "facenet" and not facenet_weights:
        raise ValueError("the recognizer 'facenet' needs its weights (a .weights.h5 from face-gcn convert-facenet)")
    return None if choice == "none" else choice


def build(kind: str, weights: str | os.PathLike | None = None) -> keras.Model:
    """A frozen recognition network of ``kind`` with its weights.

    weights: a local .weights.h5; FaceNet needs it, dlib's descriptor defaults to the packaged one
    (face_recognition_models, converted once into the cache: nets.dlib_weights.packaged_weights).
    """
    # imported here: FaceNet pulls in keras_facenet, the descriptor its weights package
    if kind == "facenet":
        from face_gcn.nets import facenet  # pylint: disable=import-outside-toplevel
        if not weights:
            raise ValueError("FaceNet needs its weights (a .weights.h5 from face-gcn convert-facenet)")
        return facenet.build_facenet(weights=os.fspath(weights))
    if kind == "face_descriptor":
        from face_gcn.nets import dlib_weights, face_descriptor  # pylint: disable=import-outside-toplevel
        model = face_descriptor.build_face_descriptor(weights=weights or dlib_weights.packaged_weights())
        model.trainable = False
        return model
    raise ValueError(f"recognition network kind must be one of {KINDS}, got {kind!r}")


def load(choice: str = "auto", facenet_weights: str = "", face_descriptor_weights: str = "") -> keras.Model | None:
    """resolve + build: the configured network, or None for "none"."""
    kind = resolve(choice, facenet_weights)
    if kind is None:
        return None
    return build(kind, facenet_weights if kind == "facenet" else face_descriptor_weights)
