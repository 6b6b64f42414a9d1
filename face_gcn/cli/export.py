"""`face-gcn export`: a trained model as a SavedModel for TF Serving.

  face-gcn export --model runs/celeba/model --out serving/face_gcn/1
  face-gcn export --checkpoint runs/celeba --out serving/face_gcn/1   (a train workdir: uses its model/)

The SavedModel has three signatures, `serving_default` (uint8 [B, S, S, 3] aligned crops),
`serve_masked` (the crops and float32 [B, S, S] face masks, as in training) and `serve_encoded`
(string [B] of JPEG/PNG bytes), each returning vertices, refined and coarse colours,
coefficients, and a render with its coverage (--norender_outputs leaves the two images out); the
triangles are in assets/triangles.json. It holds stock TensorFlow ops only (the pure-TF
rasterizer). See face_gcn/export/serving.py.
"""

from __future__ import annotations

import os
import time

from absl import app, flags, logging

from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Model directory (written by `face-gcn train` to WORKDIR/model).")
flags.DEFINE_string("checkpoint", None, "A `face-gcn train` workdir; its model/ directory is exported "
                    "(alternative to --model).")
flags.DEFINE_string("out", None, "SavedModel directory to write (replaced if it is a SavedModel).")
flags.DEFINE_boolean("render_outputs", True, "Include the render and coverage images in every signature's "
                     "outputs; --norender_outputs leaves them out and the graph does not shade them (the mesh "
                     "is still rasterized for T_p's visibility).")

PROG = "face-gcn export"


def model_path(model: str | None, checkpoint: str | None) -> str:
    """The model directory named by --model or --checkpoint (WORKDIR -> WORKDIR/model)."""
    if bool(model) == bool(checkpoint):
        raise app.UsageError("give exactly one of --model (a model directory) and --checkpoint (a train workdir)")
    if model:
        return model
    candidate = os.path.join(checkpoint, "model")
    if os.path.isdir(candidate):
        return candidate
    if os.path.isfile(os.path.join(checkpoint, "face_model.json")):
        return checkpoint  # already a model directory
    raise ValueError(f"--checkpoint {checkpoint!r} has no model/ directory (train writes it at the end)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.out:
        raise app.UsageError("--out is required (the SavedModel directory to write)")
    try:
        path = model_path(FLAGS.model, FLAGS.checkpoint)
    except ValueError as error:
        fail(PROG, str(error))

    logging.set_verbosity(logging.WARNING)  # tf.saved_model.save logs every step at INFO
    from face_gcn.export import export  # pylint: disable=import-outside-toplevel
    from face_gcn.reconstruction import model_dir  # pylint: disable=import-outside-toplevel
    started = time.perf_counter()
    try:
        info = export.export_model_dir(path, FLAGS.out, render_outputs=FLAGS.render_outputs)
    except (model_dir.ModelDirError, export.ExportError) as error:
        fail(PROG, str(error))
    size = export.directory_size(FLAGS.out) / 2 ** 20
    print(f"export: {path} -> {FLAGS.out} ({size:.1f} MiB, image size {info['image_size']}, "
          f"{info['num_vertices']} vertices, signatures serving_default, serve_masked, serve_encoded) "
          f"in {time.perf_counter() - started:.1f} s")
