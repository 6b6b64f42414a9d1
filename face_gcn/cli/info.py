"""`face-gcn info`: versions, the rasterizer in use, and the configured morphable model.

The model is loaded too: a missing or invalid one ends the command with exit code 1 and the reason.
"""

from __future__ import annotations

import platform

from absl import flags

from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
PROG = "face-gcn info"
flags.DEFINE_string("morphable_model", None,
                    "Path of a face_gcn morphable model (.npz); default: "
                    "$FACE_GCN_MORPHABLE_MODEL, else the built-in demo model.")


def report(model_path: str | None) -> list[tuple[str, str]]:
    """(label, value) rows describing this installation."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    import face_gcn  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.render import op_library  # pylint: disable=import-outside-toplevel

    gpus = tf.config.list_physical_devices("GPU")
    return [
        ("face_gcn", face_gcn.__version__),
        ("python", platform.python_version()),
        ("tensorflow", tf.__version__),
        ("keras", _version("keras")),
        ("numpy", np.__version__),
        ("devices", ", ".join(d.name for d in tf.config.list_physical_devices()) or "none"),
        ("gpu", f"{len(gpus)} visible" if gpus else "none (CPU only)"),
        ("rasterizer op", op_library.status()),
        ("morphable model", configured.describe(model_path)),
    ]


def _version(module_name: str) -> str:
    try:
        module = __import__(module_name)
        return getattr(module, "__version__", "unknown")
    except ImportError:
        return "not installed"


def main(argv):
    del argv
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable.model import MorphableModelError  # pylint: disable=import-outside-toplevel
    rows = report(FLAGS.morphable_model)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    try:
        model = configured.load_configured(FLAGS.morphable_model)
    except (MorphableModelError, OSError) as error:
        fail(PROG, f"the morphable model cannot be used ({configured.describe(FLAGS.morphable_model)}): {error}")
    print(f"{'':<{width}}  loads: {model.num_vertices} vertices, {model.num_triangles} triangles")
