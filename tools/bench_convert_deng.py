"""Benchmark of `face-gcn convert-deng` on a frozen graph of Deng's true size (resnet_v1_50 + the
seven heads, random weights, ~96 MB, written by face_gcn.nets.deng_reference_graph).

Prints one table: the graph's size, the command's wall time (a fresh process, TensorFlow's import
included, the check against the graph included) and the max coefficient / feature differences it
reports.
Usage: python tools/bench_convert_deng.py [--check_images 3] [--seed 0]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("check_images", 3, "random images convert-deng compares on")
flags.DEFINE_integer("seed", 0, "seed of the graph's random weights")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from face_gcn.nets import deng_reference_graph  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory() as folder:
        graph = os.path.join(folder, "FaceReconModel.pb")
        start = time.perf_counter()
        deng_reference_graph.write_graph(graph, seed=FLAGS.seed)
        write_seconds = time.perf_counter() - start
        out = os.path.join(folder, "deng_regressor.keras")
        command = [sys.executable, "-m", "face_gcn.cli.main", "convert-deng", "--frozen_graph", graph, "--out", out,
                   "--check_images", str(FLAGS.check_images)]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"convert-deng failed:\n{result.stderr[-3000:]}")
        coefficient = re.search(r"max coefficient difference (\S+)", result.stdout).group(1)
        feature = re.search(r"max feature difference (\S+)", result.stdout).group(1)
        print("| graph | graph MB | written in s | convert-deng wall s | check images | max coefficient diff "
              "| max feature diff | .keras MB |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| resnet_v1_50 + heads, random | {os.path.getsize(graph) / 1e6:.1f} | {write_seconds:.1f} | "
              f"{seconds:.1f} | {FLAGS.check_images} | {coefficient} | {feature} | {os.path.getsize(out) / 1e6:.1f} |")


if __name__ == "__main__":
    app.run(main)
