"""Benchmark of the rasterizer: compiled op (forward, forward+backward) beside the pure-TF fallback.

Mesh: a 189 x 189 vertex grid (35,721 vertices, 70,688 triangles: face-sized, like BFM's 35,709 /
70,789) lifted onto a dome and seen through a perspective camera so that it covers about 75% of
the image, as an aligned face does. Each configuration (image size, batch, intra-op threads,
backend) runs in its own subprocess, since TensorFlow fixes its thread pools at start-up; the
median of --repeats timed runs after one warm-up is reported.

Usage: python tools/bench_rasterizer.py [--sizes 224,512] [--batches 1,16] [--threads 1,2]
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["224", "512"], "square image sides")
flags.DEFINE_list("batches", ["1", "16"], "batch sizes")
flags.DEFINE_list("threads", ["1", "2"], "intra-op thread counts")
flags.DEFINE_integer("repeats", 5, "timed repeats (median) after one warm-up")
flags.DEFINE_integer("grid", 189, "vertices per side of the grid mesh")
flags.DEFINE_string("fallback_configs", "224x1x2,512x1x2",
                    "SIZExBATCHxTHREADS configurations for the slower pure-TF fallback")
flags.DEFINE_string("worker", "", "internal: JSON configuration to time in this process")

_WORKER = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
config = json.loads(sys.argv[1])
tf.config.threading.set_intra_op_parallelism_threads(config["threads"])
tf.config.threading.set_inter_op_parallelism_threads(1)
if config["backend"] == "op":
    from face_gcn.render.rasterize_op import rasterize
else:
    from face_gcn.render.rasterize_fallback import rasterize

n = config["grid"]
u = np.linspace(-1.0, 1.0, n)
x, y = np.meshgrid(u, u)
height = 0.6 * np.sqrt(np.clip(1.2 - x ** 2 - y ** 2, 0.0, None))  # dome, model units
points = np.stack([0.85 * x, 1.0 * y, height], -1).reshape(-1, 3)
w = 10.0 - points[:, 2]                                               # camera at z = 10
focal = 9.0
clip = np.stack([focal * points[:, 0], focal * points[:, 1],
                 (w - 10.0) * 0.5 + 0.1 * w, w], -1).astype(np.float32)
rows = np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]
quads = np.stack([rows, rows + 1, rows + n + 1, rows + n], -1).reshape(-1, 4)
triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).astype(np.int32)
batch, size = config["batch"], config["size"]
rng = np.random.default_rng(0)
jitter = rng.normal(scale=0.01, size=(batch, 1, 4)).astype(np.float32) * [1, 1, 0, 0]
vertices = tf.Variable((clip[None] + jitter).astype(np.float32))
weights = tf.constant(rng.normal(size=(batch, size, size, 3)).astype(np.float32))

def forward():
    return rasterize(vertices, triangles, size, size)

def forward_backward():
    with tf.GradientTape() as tape:
        bary, _, _ = rasterize(vertices, triangles, size, size)
        loss = tf.reduce_sum(bary * weights)
    return tape.gradient(loss, vertices)

result = {"vertices": int(clip.shape[0]), "triangles": int(triangles.shape[0])}
for name, fn in (("forward", forward), ("forward_backward", forward_backward)):
    out = fn()
    if name == "forward":
        result["coverage"] = float(np.mean(out[1].numpy() >= 0))
    times = []
    for _ in range(config["repeats"]):
        start = time.perf_counter()
        out = fn()
        _ = [t.numpy() for t in (out if isinstance(out, (tuple, list)) else [out])]
        times.append(time.perf_counter() - start)
    result[name] = float(np.median(times))
print(json.dumps(result))
"""


def time_config(backend, size, batch, threads):
    config = {"backend": backend, "size": size, "batch": batch, "threads": threads,
              "repeats": FLAGS.repeats, "grid": FLAGS.grid}
    completed = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(config)],
                               capture_output=True, text=True, check=False, timeout=1800)
    if completed.returncode != 0:
        return None, completed.stderr.strip().splitlines()[-1:]
    return json.loads(completed.stdout.strip().splitlines()[-1]), None


def main(argv):
    del argv
    configs = [("op", int(s), int(b), int(t)) for s in FLAGS.sizes for b in FLAGS.batches
               for t in FLAGS.threads]
    if importlib.util.find_spec("face_gcn.render.rasterize_fallback") is not None:
        for text in filter(None, FLAGS.fallback_configs.split(",")):
            s, b, t = (int(v) for v in text.split("x"))
            configs.append(("fallback", s, b, t))
    else:
        print("(face_gcn.render.rasterize_fallback not present: fallback rows skipped)")
    header = (f"{'backend':9s} {'size':>5s} {'batch':>5s} {'thr':>3s} {'cover':>6s} "
              f"{'fwd ms/img':>11s} {'fwd Mpx/s':>10s} {'f+b ms/img':>11s} {'f+b Mpx/s':>10s}")
    rows = []
    mesh = "mesh unknown"
    started = time.perf_counter()
    for backend, size, batch, threads in configs:
        result, error = time_config(backend, size, batch, threads)
        if result is None:
            rows.append(f"{backend:9s} {size:5d} {batch:5d} {threads:3d}  failed: {error}")
            continue
        pixels = batch * size * size
        rows.append(
            f"{backend:9s} {size:5d} {batch:5d} {threads:3d} {result['coverage']:6.2f} "
            f"{1e3 * result['forward'] / batch:11.2f} {pixels / result['forward'] / 1e6:10.1f} "
            f"{1e3 * result['forward_backward'] / batch:11.2f} "
            f"{pixels / result['forward_backward'] / 1e6:10.1f}")
        mesh = f"{result['vertices']} vertices, {result['triangles']} triangles"
    print(f"Rasterizer benchmark: {mesh}; median of {FLAGS.repeats} runs; "
          f"{os.cpu_count()} CPUs on this machine")
    print(header)
    print("\n".join(rows))
    print(f"(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    app.run(main)
