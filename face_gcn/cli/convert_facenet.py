"""`face-gcn convert-facenet`: David Sandberg's FaceNet checkpoint -> Keras weights file.

  face-gcn convert-facenet --checkpoint 20180402-114759/model-20180402-114759.ckpt-275 \\
      --out facenet_20180402.weights.h5

Then give the .weights.h5 to build_facenet(weights=...) (or the trainer's FaceNet flag). The
checkpoint stays with the user; nothing is downloaded.
"""

from __future__ import annotations

from absl import app, flags

from face_gcn import fileio
from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix (the path without .index / "
                    ".data-00000-of-00001), e.g. model-20180402-114759.ckpt-275.")
flags.DEFINE_string("out", None, "Output Keras weights file; must end in .weights.h5.")

_SUFFIX = ".weights.h5"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.checkpoint or not FLAGS.out:
        raise app.UsageError("--checkpoint and --out are required")
    if not FLAGS.out.endswith(_SUFFIX):
        raise app.UsageError(f"--out must end in {_SUFFIX}")
    # Imported after flag parsing so that --help stays instant.
    from face_gcn.nets import facenet, facenet_checkpoint  # pylint: disable=import-outside-toplevel

    model = facenet.build_facenet()
    try:
        count = facenet_checkpoint.load_sandberg_checkpoint(model, FLAGS.checkpoint)
    except (facenet_checkpoint.CheckpointMismatchError, OSError) as error:
        fail("face-gcn convert-facenet", str(error))
    with fileio.atomic_path(FLAGS.out) as tmp:
        model.save_weights(tmp, overwrite=True)
    print(f"wrote {FLAGS.out}: {count} values from {FLAGS.checkpoint}")


if __name__ == "__main__":
    app.run(main)
