"""Coarse-trainer steps/s on this machine: compact backbone at 64 px and ResNet-50 at 224 px, batch 4.

Each row trains from scratch on synthetic faces (make-synthetic's generator, written to a
temporary folder) with train_coarse; steps/s is train_coarse's own figure: wall time per step
including data, summaries (every 10 steps) and checkpoints, excluding the first (tracing) step.

  python tools/bench_train_coarse.py [--compact_steps 40] [--resnet_steps 8]
"""

from __future__ import annotations

import os
import tempfile
import time

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_integer("compact_steps", 40, "training steps of the compact@64 row")
flags.DEFINE_integer("resnet_steps", 8, "training steps of the resnet50@224 row")
flags.DEFINE_integer("batch", 4, "batch size")


def bench(backbone: str, size: int, batch: int, steps: int) -> dict:
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.synthesis import dataset as synthetic  # pylint: disable=import-outside-toplevel
    from face_gcn.train import coarse  # pylint: disable=import-outside-toplevel
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "data")
        synthetic.write_dataset(data, configured.load_demo(), max(2 * batch, 8), seed=0,
                                config=synthetic.SyntheticConfig(image_size=size), batch_size=batch)
        config = coarse.build_config(None, [
            f"data.train={data}", f"data.crop_size={size}", f"data.batch_size={batch}",
            "data.shuffle_buffer=16", f"nets.backbone={backbone}", "loss.coefficients=1.0",
            f"train.steps={steps}", "train.checkpoint_every=1000", "train.summary_every=10"])
        start = time.perf_counter()
        result = coarse.train_coarse(config, os.path.join(scratch, "run"), log=lambda *_: None)
        result["wall"] = time.perf_counter() - start
    return result


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    device = "GPU" if tf.config.list_logical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    rows = []
    for backbone, size, steps in (("compact", 64, FLAGS.compact_steps),
                                  ("resnet50", 224, FLAGS.resnet_steps)):
        rows.append((backbone, size, steps, bench(backbone, size, FLAGS.batch, steps)))
    print(f"coarse trainer on {device}, batch {FLAGS.batch}; steps/s excludes the first (tracing) step")
    print(f"{'backbone':<10} {'size':>4} {'steps':>5} {'steps/s':>8} {'images/s':>9} {'run s':>7}  last total")
    for backbone, size, steps, result in rows:
        rate = result["steps_per_second"]
        print(f"{backbone:<10} {size:4d} {steps:5d} {rate:8.2f} {rate * FLAGS.batch:9.1f} "
              f"{result['wall']:7.1f}  {result['losses']['total']:.4g}")


if __name__ == "__main__":
    app.run(main)
