"""Loads the compiled rasterizer op once; None (with one warning) when it is unavailable.

The shared library is built by `pip install` (setup.py build_ext) next to this file as
_rasterizer_ops.so. Set FACE_GCN_DISABLE_OP=1 to force the pure-TF fallback.
"""

from __future__ import annotations

import functools
import logging
import os

import tensorflow as tf

LIBRARY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_rasterizer_ops.so")
ENV_DISABLE = "FACE_GCN_DISABLE_OP"

_LOG = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def _load():
    if os.environ.get(ENV_DISABLE, "") not in ("", "0"):
        return None, f"disabled by ${ENV_DISABLE}"
    if not os.path.isfile(LIBRARY_PATH):
        return None, f"not built ({LIBRARY_PATH} missing; reinstall with " \
                     "`pip install --no-build-isolation -e .`)"
    try:
        return tf.load_op_library(LIBRARY_PATH), "loaded"
    except (tf.errors.NotFoundError, OSError) as error:
        return None, f"failed to load ({error})"


def load():
    """The loaded op module, or None; warns once when falling back to pure TF."""
    module, reason = _load()
    if module is None:
        _warn_once(reason)
    return module


@functools.lru_cache(maxsize=None)
def _warn_once(reason: str):
    _LOG.warning("face_gcn: compiled rasterizer op %s; using the slower pure-TF rasterizer.",
                 reason)


def status() -> str:
    """'loaded' or why the op is not in use."""
    return _load()[1]
