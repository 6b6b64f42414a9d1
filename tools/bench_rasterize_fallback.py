"""Benchmark of the pure-TF fallback rasterizer on a face-sized mesh (~35.7k vertices, ~71k
triangles) filling most of a 224 x 224 image, like the BFM front face under Deng's camera.

Each configuration runs in its own process so the reported peak RSS is its own.
Usage: python tools/bench_rasterize_fallback.py [--batches 1,16] [--size 224] [--repeats 3]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("batches", "1,16", "comma-separated batch sizes")
flags.DEFINE_integer("size", 224, "image side in pixels")
flags.DEFINE_integer("repeats", 3, "timed repetitions (after one warm-up)")
flags.DEFINE_integer("grid", 214, "vertices per side of the face-like grid (214 -> about 70k triangles inside the oval)")
flags.DEFINE_string("backend", "fallback", "rasterizer backend: fallback or op")

WORKER = r"""
import json, resource, sys, time
import numpy as np
import tensorflow as tf
from face_gcn.render import rasterizer
batch, size, repeats, grid, backend = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                       int(sys.argv[4]), sys.argv[5])
u, v = np.meshgrid(np.linspace(-1, 1, grid), np.linspace(-1, 1, grid))
keep = u ** 2 + v ** 2 <= 1.0                 # oval face outline (outside vertices unused)
bulge = np.sqrt(np.maximum(1.0 - u ** 2 - v ** 2, 0.0))
w = 10.0 - bulge                                # camera distance 10, nose 1 unit closer
ndc = np.stack([0.75 * u, 0.9 * v, 0.2 * bulge - 0.5], -1).reshape(-1, 3)
w = w.reshape(-1, 1)
clip = np.concatenate([ndc * w, w], -1)
idx = np.arange(grid * grid).reshape(grid, grid)
quads = np.stack([idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]], -1).reshape(-1, 4)
quads = quads[keep.reshape(-1)[quads].all(-1)]
triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).astype(np.int32)
rng = np.random.default_rng(0)
batch_clip = np.stack([clip * (1 + 0.01 * rng.normal()) for _ in range(batch)]).astype(np.float32)
variable = tf.Variable(batch_clip)
triangles = tf.constant(triangles)
@tf.function
def forward(c):
    return rasterizer.rasterize(c, triangles, size, size, backend=backend)
@tf.function
def backward(c):
    with tf.GradientTape() as tape:
        tape.watch(c)
        bary, _, _ = rasterizer.rasterize(c, triangles, size, size, backend=backend)
        loss = tf.reduce_sum(bary * tf.constant([0.3, -0.2, 0.5]))
    return tape.gradient(loss, c)
out = {"batch": batch, "size": size, "vertices": int(clip.shape[0]),
       "triangles": int(triangles.shape[0])}
ids = forward(variable)[1].numpy()
out["coverage"] = float((ids >= 0).mean())
for name, fn in (("forward_s", forward), ("forward_backward_s", backward)):
    fn(variable)
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); r = fn(variable)
        (r[0] if isinstance(r, tuple) else r).numpy(); times.append(time.perf_counter() - start)
    out[name] = min(times)
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps(out))
"""


def main(argv):
    del argv
    print(f"{'backend':9s} {'batch':>5s} {'size':>5s} {'tris':>7s} {'cover':>6s} "
          f"{'fwd s':>8s} {'fwd+bwd s':>10s} {'peak RSS MiB':>13s}")
    for batch in [int(b) for b in flags.FLAGS.batches.split(",") if b]:
        result = subprocess.run(
            [sys.executable, "-c", WORKER, str(batch), str(flags.FLAGS.size),
             str(flags.FLAGS.repeats), str(flags.FLAGS.grid), flags.FLAGS.backend],
            capture_output=True, text=True, check=True)
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{flags.FLAGS.backend:9s} {row['batch']:5d} {row['size']:5d} {row['triangles']:7d} "
              f"{row['coverage']:6.2f} {row['forward_s']:8.3f} {row['forward_backward_s']:10.3f} "
              f"{row['peak_rss_mib']:13.0f}")


if __name__ == "__main__":
    app.run(main)
