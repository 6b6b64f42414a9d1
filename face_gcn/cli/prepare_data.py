"""`face-gcn prepare-data`: photos -> aligned 224x224 (or --crop_size) faces with masks, as
sharded TFRecords plus a manifest.

  face-gcn prepare-data --input photos/ --output_dir data/train --num_shards 16 --workers 2
  face-gcn prepare-data --input list.txt --output_dir data/hq --crop_size 512 \\
      --segmenter /models/face_parsing --segmenter_classes 1,2,3,4,5,10,11,12,13

MTCNN finds the face (the largest when there are several) and 5 landmarks; the photo is
aligned to the morphable model's 5 standard landmarks as Deng et al. do; the face-region mask
comes from the built-in skin-colour segmenter or a face-parsing SavedModel given by path.
Re-running the same command skips finished shards. See face_gcn/data/prepare.py.
"""

from __future__ import annotations

import os

from absl import app, flags

from face_gcn.cli import _photos
from face_gcn.cli._errors import fail

FLAGS = flags.FLAGS
PROG = "face-gcn prepare-data"
flags.DEFINE_string("input", None, "A folder of photos (searched recursively) or a .txt file "
                    "with one path a line (relative paths are relative to the list).")
flags.DEFINE_string("output_dir", None, "Where the TFRecord shards and manifest.json go.")
flags.DEFINE_integer("crop_size", 224, "Side of the aligned square crop in pixels (Deng: 224; "
                     "512 for CelebA-HQ keeps the same framing).")
flags.DEFINE_integer("num_shards", 8, "Number of TFRecord shards (at most one per photo).")
flags.DEFINE_integer("workers", max(1, (os.cpu_count() or 1)),
                     "Worker processes (1 = in this process).")
flags.DEFINE_string("segmenter", "builtin", _photos.SEGMENTER_HELP)
flags.DEFINE_list("segmenter_classes", [], "For a SavedModel returning class scores: the "
                  "class indices whose union is the face region.")
flags.DEFINE_integer("segmenter_input_size", 0, "Resize crops to this square size before the "
                     "SavedModel (0: feed the crop as it is).")
flags.DEFINE_string("morphable_model", None, "Morphable model (.npz) whose 5 standard "
                    "landmarks the photos are aligned to (default: $FACE_GCN_MORPHABLE_MODEL, "
                    "else the built-in demo model).")
flags.DEFINE_integer("min_face_size", 20, "Smallest face side MTCNN searches for, pixels.", lower_bound=1,
                     upper_bound=4096)
flags.DEFINE_boolean("landmarks68", False, "Also store dlib's 68 landmarks of each face (landmarks68/detected; "
                     "coarse.landmarks=detected68 fits to them). dlib's 68-point model was trained on iBUG "
                     "300-W, which forbids commercial use.")
flags.DEFINE_boolean("progress", True, "Show a progress bar.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.input:
        raise app.UsageError("--input is required (a folder of photos or a .txt file list)")
    if not FLAGS.output_dir:
        raise app.UsageError("--output_dir is required")
    if FLAGS.num_shards < 1 or FLAGS.workers < 1:
        raise app.UsageError("--num_shards and --workers must be at least 1")
    if not 16 <= FLAGS.crop_size <= 4096:
        raise app.UsageError(f"--crop_size must be in [16, 4096], got {FLAGS.crop_size}")
    segmenter = _photos.check_segmenter(FLAGS.segmenter, PROG)
    try:
        classes = [int(value) for value in FLAGS.segmenter_classes]
    except ValueError:
        raise app.UsageError("--segmenter_classes must be integers, e.g. 1,2,3") from None

    from face_gcn.data import prepare  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import model as model_lib  # pylint: disable=import-outside-toplevel

    try:
        files = prepare.list_inputs(FLAGS.input)
    except ValueError as error:
        fail(PROG, str(error))
    try:
        model = configured.load_configured(FLAGS.morphable_model)
    except (model_lib.MorphableModelError, OSError) as error:
        fail(PROG, f"cannot load the morphable model ({configured.describe(FLAGS.morphable_model)})"
              f": {error}")
    config = prepare.PrepareConfig(
        standard_landmarks=model.alignment_landmarks, crop_size=FLAGS.crop_size,
        segmenter=segmenter,
        segmenter_classes=tuple(classes), segmenter_input_size=FLAGS.segmenter_input_size,
        min_face_size=FLAGS.min_face_size, landmarks68=FLAGS.landmarks68)
    from face_gcn.data import masks  # pylint: disable=import-outside-toplevel
    if config.segmenter not in masks.BUILTINS:
        try:  # fail early and clearly, before any worker starts
            masks.make_segmenter(config.segmenter, face_classes=classes or None,
                                 input_size=FLAGS.segmenter_input_size or None)
        except ValueError as error:
            fail(PROG, str(error))
    from face_gcn import output_folder  # pylint: disable=import-outside-toplevel
    input_folders = [FLAGS.input] if os.path.isdir(FLAGS.input) else []
    try:
        with output_folder.OutputFolder(FLAGS.output_dir, PROG, inputs=input_folders, flag="--output_dir"):  # one run per folder
            manifest = prepare.prepare(files, FLAGS.output_dir, config, num_shards=FLAGS.num_shards,
                                       workers=FLAGS.workers, progress=FLAGS.progress)
    except output_folder.OutputFolderError as error:
        fail(PROG, str(error))
    reasons = ", ".join(f"{reason} {count}" for reason, count
                        in manifest["skipped_by_reason"].items()) or "none"
    print(f"prepare-data: {manifest['written']} written, {manifest['skipped']} skipped "
          f"({reasons}); {len(manifest['several_faces'])} with several faces (largest kept); "
          f"{manifest['num_shards']} shards ({len(manifest['shards_reused'])} reused) in "
          f"{FLAGS.output_dir}")
    if not manifest["written"]:
        fail(PROG, f"no photo could be prepared (see {os.path.join(FLAGS.output_dir, 'manifest.json')})")
