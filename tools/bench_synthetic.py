"""Times the synthetic dataset generator on CPU (built-in demo model).

Rows:
  generate_batch         images/s of rendering alone (detail, render, background, noise),
                         after one warm-up batch
  write_dataset          images/s of the whole job (rendering, PNG, TFRecord, ground truth)
  bytes per image        TFRecord and ground_truth.npz bytes per image
  detail residual        fraction of the detail's energy outside the albedo basis (+ mean)

  python tools/bench_synthetic.py [--images 64] [--image_size 224] [--batch 16]
"""

from __future__ import annotations

import os
import tempfile
import time

from absl import app, flags
import numpy as np

FLAGS = flags.FLAGS
flags.DEFINE_integer("images", 64, "images per timed row")
flags.DEFINE_integer("image_size", 224, "square image side, pixels")
flags.DEFINE_integer("batch", 16, "faces rendered at a time")


def main(argv):
    del argv
    from face_gcn.synthesis import dataset as synthetic  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel

    model = configured.load_demo()
    config = synthetic.SyntheticConfig(image_size=FLAGS.image_size)
    rows = []
    synthetic.generate_batch(model, 0, "train", range(FLAGS.batch), config)   # warm-up
    start = time.perf_counter()
    for first in range(0, FLAGS.images, FLAGS.batch):
        synthetic.generate_batch(model, 1, "train",
                                 range(first, min(first + FLAGS.batch, FLAGS.images)), config)
    elapsed = time.perf_counter() - start
    rows.append(("generate_batch", f"{FLAGS.images / elapsed:.1f} images/s"))
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        manifest = synthetic.write_dataset(folder, model, FLAGS.images, 2, config=config,
                                           num_shards=2, batch_size=FLAGS.batch)
        elapsed = time.perf_counter() - start
        rows.append(("write_dataset", f"{FLAGS.images / elapsed:.1f} images/s"))
        records = sum(os.path.getsize(os.path.join(folder, name)) for name in manifest["shards"])
        truth = os.path.getsize(os.path.join(folder, synthetic.GROUND_TRUTH_FILE))
        rows.append(("TFRecord bytes / image", f"{records / FLAGS.images / 1024:.1f} KiB"))
        rows.append(("ground_truth.npz bytes / image", f"{truth / FLAGS.images / 1024:.1f} KiB"))
        detail = synthetic.load_ground_truth(folder)["detail"]
    rows.append(("detail residual (all images)",
                 f"{synthetic.basis_residual_fraction(model, detail):.3f}"))
    each = [synthetic.basis_residual_fraction(model, d) for d in detail]
    rows.append(("detail residual per image min / median",
                 f"{min(each):.3f} / {np.median(each):.3f}"))
    print(f"model: {model.name}, V = {model.num_vertices}, image {FLAGS.image_size} px, "
          f"batch {FLAGS.batch}, {FLAGS.images} images, {os.cpu_count()} CPUs")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    app.run(main)
