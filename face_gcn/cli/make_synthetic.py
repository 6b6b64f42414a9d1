"""`face-gcn make-synthetic`: a synthetic training set rendered from the morphable model.

  face-gcn make-synthetic --out data/synthetic --num_images 20000 --num_heldout 1000

writes DIR/train and DIR/heldout, each with sharded TFRecords in the schema of prepare-data
(face_gcn.data.tfrecords: the training pipeline reads them unchanged; each record also carries
its ground-truth coefficients and 68 landmarks, the schema's optional fields), ground_truth.npz
(coefficients, ground-truth albedo with its high-frequency detail, the detail itself) and
manifest.json. Same flags, same files. See face_gcn/synthesis/dataset.py.
"""

from __future__ import annotations

import os

from absl import app, flags

from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
PROG = "face-gcn make-synthetic"
flags.DEFINE_string("out", None, "Output folder; DIR/train and DIR/heldout are written.")
flags.DEFINE_integer("num_images", 1000, "Training images.")
flags.DEFINE_integer("num_heldout", 100, "Held-out images (0: none), drawn from a separate "
                     "random stream of the same seed.")
flags.DEFINE_integer("image_size", 224, "Side of the square crop in pixels.")
flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives identical files.")
flags.DEFINE_integer("num_shards", 4, "TFRecord shards of the training split (the held-out "
                     "split gets at most this many, at most one per image).")
flags.DEFINE_string("morphable_model", None, "Morphable model (.npz) (default: "
                    "$FACE_GCN_MORPHABLE_MODEL, else the built-in demo model).")
flags.DEFINE_float("noise_std", 0.01, "Sensor noise standard deviation, fraction of 255.")
flags.DEFINE_integer("batch_size", 16, "Faces rendered at a time.")
flags.DEFINE_boolean("progress", True, "Show a progress bar.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.out:
        raise app.UsageError("--out is required")
    if FLAGS.num_images < 1 or FLAGS.num_heldout < 0:
        raise app.UsageError("--num_images must be >= 1 and --num_heldout >= 0")
    if FLAGS.num_shards < 1 or FLAGS.batch_size < 1:
        raise app.UsageError("--num_shards and --batch_size must be at least 1")
    if not 16 <= FLAGS.image_size <= 4096:
        raise app.UsageError(f"--image_size must be in [16, 4096], got {FLAGS.image_size}")
    if not 0 <= FLAGS.noise_std <= 1:  # also refuses NaN
        raise app.UsageError(f"--noise_std must be in [0, 1] (a fraction of 255), got {FLAGS.noise_std}")
    if FLAGS.seed < 0:
        raise app.UsageError(f"--seed must be >= 0, got {FLAGS.seed}")

    from face_gcn.synthesis import dataset as synthetic  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import model as model_lib  # pylint: disable=import-outside-toplevel

    try:
        model = configured.load_configured(FLAGS.morphable_model)
    except (model_lib.MorphableModelError, OSError) as error:
        fail(PROG, f"cannot load the morphable model ({configured.describe(FLAGS.morphable_model)})"
              f": {error}")
    config = synthetic.SyntheticConfig(image_size=FLAGS.image_size, noise_std=FLAGS.noise_std)
    splits = [("train", FLAGS.num_images)]
    if FLAGS.num_heldout:
        splits.append(("heldout", FLAGS.num_heldout))
    from face_gcn import output_folder  # pylint: disable=import-outside-toplevel
    try:
        with output_folder.OutputFolder(FLAGS.out, PROG):  # one run per folder
            for split, count in splits:
                manifest = synthetic.write_dataset(
                    os.path.join(FLAGS.out, split), model, count, FLAGS.seed, split=split,
                    config=config, num_shards=min(FLAGS.num_shards, count),
                    batch_size=FLAGS.batch_size, progress=FLAGS.progress)
                print(f"make-synthetic: {split}: {manifest['num_images']} images in "
                      f"{manifest['num_shards']} shards, {os.path.join(FLAGS.out, split)}")
    except (output_folder.OutputFolderError, ValueError) as error:
        fail(PROG, str(error))
