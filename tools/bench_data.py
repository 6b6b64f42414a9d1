"""Times the data half of the coarse stage on CPU.

Rows:
  prepare-data, N workers      photos/s of the whole job (load, MTCNN, align, mask, encode,
                               write), 512x512 photos from skimage's astronaut, 224 crops;
                               "wall" includes starting the worker processes, "steady"
                               subtracts the wall time of a one-photo run
  prepare-data, in process     photos/s of FaceProcessor.process after a warm-up photo
  tf.data pipeline             images/s of make_dataset (parse, augment, batch 16) over the
                               shards just written, after 5 warm-up batches
  regressor / FaceNet forward  images/s of face_gcn.nets at batch 16 (ResNet-50 at 224,
                               the compact backbone at 64, FaceNet at 160; skipped when
                               face_gcn.nets is not importable)

  python tools/bench_data.py [--photos 24] [--workers 2] [--batch 16]
"""

from __future__ import annotations

import os
import tempfile
import time

from absl import app, flags
import numpy as np

FLAGS = flags.FLAGS
flags.DEFINE_integer("photos", 24, "photos for the prepare-data rows")
flags.DEFINE_integer("workers", 2, "worker processes for prepare-data")
flags.DEFINE_integer("batch", 16, "batch size of the pipeline and network rows")
flags.DEFINE_integer("batches", 30, "timed batches of the pipeline and network rows")


def make_photos(folder: str, count: int) -> list[str]:
    """Variants of the astronaut photo (shifted, scaled, mirrored), 512x512 PNG."""
    import cv2  # pylint: disable=import-outside-toplevel
    import skimage.data  # pylint: disable=import-outside-toplevel
    base = skimage.data.astronaut()
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        scale = rng.uniform(0.8, 1.2)
        shift = rng.uniform(-40, 40, 2)
        matrix = np.array([[scale, 0, 256 * (1 - scale) + shift[0]],
                           [0, scale, 256 * (1 - scale) + shift[1]]])
        photo = cv2.warpAffine(base, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)
        if index % 2:
            photo = photo[:, ::-1]
        path = os.path.join(folder, f"photo_{index:03d}.png")
        cv2.imwrite(path, cv2.cvtColor(np.ascontiguousarray(photo), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def row(name: str, rate: float | None, note: str = ""):
    value = f"{rate:9.1f}" if rate is not None else "        -"
    print(f"{name:<34} {value}  {note}")


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from face_gcn.data import pipeline, prepare  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    config = prepare.PrepareConfig(
        standard_landmarks=configured.load_configured().alignment_landmarks, crop_size=224)
    with tempfile.TemporaryDirectory() as scratch:
        os.makedirs(os.path.join(scratch, "photos"))
        photos = make_photos(os.path.join(scratch, "photos"), FLAGS.photos)
        print(f"{'row':<34} {'per s':>9}  note   (cpu count {os.cpu_count()})")

        start = time.perf_counter()
        manifest = prepare.prepare(photos, os.path.join(scratch, "out"), config,
                                   num_shards=4, workers=FLAGS.workers, progress=False,
                                   log=None)
        wall = time.perf_counter() - start
        row(f"prepare-data, {FLAGS.workers} workers (wall)", len(photos) / wall,
            f"{manifest['written']} written of {len(photos)}, 224 crops, incl. process start")
        start = time.perf_counter()
        prepare.prepare(photos[:1], os.path.join(scratch, "one"), config, num_shards=1,
                        workers=FLAGS.workers, progress=False, log=None)
        startup = time.perf_counter() - start
        row(f"prepare-data, {FLAGS.workers} workers (steady)",
            (len(photos) - 1) / max(wall - startup, 1e-9),
            f"(N - 1) / (wall N photos - wall 1 photo); start-up {startup:.1f} s")

        processor = prepare.FaceProcessor(config)
        processor.process(photos[0])
        start = time.perf_counter()
        for path in photos[1:9]:
            processor.process(path)
        row("prepare-data, in process (1 proc)", 8 / (time.perf_counter() - start),
            "after one warm-up photo")

        dataset = pipeline.make_dataset(os.path.join(scratch, "out"), 224, FLAGS.batch,
                                        augmentation=pipeline.Augmentation(), seed=0)
        iterator = iter(dataset)
        for _ in range(5):
            next(iterator)
        start = time.perf_counter()
        for _ in range(FLAGS.batches):
            next(iterator)
        row("tf.data pipeline (augmented)", FLAGS.batches * FLAGS.batch
            / (time.perf_counter() - start), f"batch {FLAGS.batch}, 224x224, PNG decode")

    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    for label, module_name, builder, size, kwargs in [
            ("regressor forward (ResNet-50)", "face_gcn.nets.regressor", "build_regressor", 224, {}),
            ("regressor forward (compact, 64)", "face_gcn.nets.regressor", "build_regressor", 64,
             {"input_shape": (64, 64, 3), "backbone": "compact"}),
            ("FaceNet forward", "face_gcn.nets.facenet", "build_facenet", 160, {})]:
        try:
            module = __import__(module_name, fromlist=[builder])
            model = getattr(module, builder)(**kwargs)
        except Exception as error:  # pylint: disable=broad-except
            row(label, None, f"skipped: {module_name} unavailable ({type(error).__name__}: "
                             f"{str(error)[:60]})")
            continue
        images = tf.random.uniform([FLAGS.batch, size, size, 3], 0, 255, seed=0)
        forward = tf.function(lambda x, m=model: m(x, training=False))
        tf.nest.map_structure(np.asarray, forward(images))  # trace and warm up
        runs = max(3, FLAGS.batches // 6)
        start = time.perf_counter()
        for _ in range(runs):
            tf.nest.map_structure(np.asarray, forward(images))
        row(label, runs * FLAGS.batch / (time.perf_counter() - start),
            f"batch {FLAGS.batch}, CPU, tf.function, {runs} timed calls")


if __name__ == "__main__":
    app.run(main)
