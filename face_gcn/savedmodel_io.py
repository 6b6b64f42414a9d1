"""A user's TensorFlow SavedModel loaded by path: one signature taking one tensor, clear errors.

Shared by the networks users plug in (face_gcn.data.masks.SavedModelSegmenter,
face_gcn.evaluation.recognizers.SavedModelRecognizer). TensorFlow is imported only when called.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple


class Signature(NamedTuple):
    """A loaded signature. Keep the whole tuple alive: ``loaded`` owns the variables."""

    loaded: Any  # the object tf.saved_model.load returned
    name: str  # the signature name
    function: Any  # the concrete function; call it with function(**{input_name: tensor})
    input_name: str
    input_spec: Any  # tf.TensorSpec of the one input (shape, dtype)


def load_signature(path: str, signature: str | None = None, *, role: str,
                   error: type[ValueError] = ValueError) -> Signature:
    """Loads the SavedModel directory ``path`` and picks one signature with exactly one input.

    Args:
      path: the SavedModel directory.
      signature: signature name; None: "serving_default" if present, else the first one.
      role: what the model is for, used in messages ("recognizer", "segmenter").
      error: the ValueError (sub)class raised when the directory is missing, does not load, has
        no such signature, or the signature does not take exactly one tensor.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if not os.path.isdir(path):
        raise error(f"{role} SavedModel directory not found: {path}")
    try:
        loaded = tf.saved_model.load(path)
    except Exception as exc:  # pylint: disable=broad-except
        raise error(f"could not load a SavedModel from {path}: {exc}") from exc
    names = list(loaded.signatures.keys())
    if not names:
        raise error(f"SavedModel {path} has no signatures (export it with a serving signature)")
    if signature is None:
        signature = "serving_default" if "serving_default" in names else names[0]
    if signature not in names:
        raise error(f"SavedModel {path} has no signature {signature!r} (has {sorted(names)})")
    function = loaded.signatures[signature]
    inputs = function.structured_input_signature[1]
    if len(inputs) != 1:
        raise error(f"{role} signature {signature!r} must take one image tensor, takes {sorted(inputs)}")
    input_name, input_spec = next(iter(inputs.items()))
    return Signature(loaded, signature, function, input_name, input_spec)
