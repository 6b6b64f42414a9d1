"""Benchmark of the rasterizer: compiled op (forward, forward+backward) beside the pure-TF fallback.

Mesh: a 189 x 189 vertex grid (35,721 vertices, 70,688 triangles: face-sized, like BFM's 35,709 /
70,789) lifted onto a dome and seen through a perspective camera so that it covers about 75% of
the image, as an aligned face does. Each configuration (image size, batch, intra-op threads,
backend) runs in its own subprocess, since TensorFlow fixes its thread pools at start-up, inside
a tf.function (as the pipeline and the SavedModel run it); the median of --repeats timed runs after
one warm-up (which also traces) is reported.

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

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "table", ["table", "genova"],
                  "table: op vs fallback over sizes, batches and threads; genova: issue 15's "
                  "scene, ours vs Genova's op")
flags.DEFINE_string("genova_op", "", "genova mode: Genova's compiled op library (empty: ours only)")
flags.DEFINE_integer("genova_batch", 16, "genova mode: the batch size beside the single image")
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

@tf.function  # as the pipeline runs it (the fallback's while loop, op by op in Python, is slow)
def forward():
    return rasterize(vertices, triangles, size, size)

@tf.function
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


def issue_scene(n=189):
    """Issue 15's scene: clip vertices [n^2, 4] float32 (w = 1), triangles [2 (n-1)^2, 3]."""
    u, v = np.meshgrid(np.linspace(-0.7, 0.7, n), np.linspace(-0.8, 0.8, n))
    z = 0.3 * np.exp(-2 * (u ** 2 + v ** 2)) + 0.05 * np.sin(9 * u) * np.cos(7 * v)
    clip = np.stack([u, v, 0.5 + 0.2 * z, np.ones_like(u)], -1).reshape(-1, 4)
    corner = (np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]).ravel()
    quads = np.stack([corner, corner + 1, corner + n + 1, corner + n], -1)
    triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    return clip.astype(np.float32), triangles.astype(np.int32)


def reference_gradient(vertices, triangles, ids, d_bary):
    """d sum(bary * d_bary) / d vertices [V, 4] in float64 over the pixels with ids >= 0.

    Per pixel, with M = [x; y; w] of the triangle's corners and p the pixel centre:
    lambda = M^-1 p, b = lambda / sum(lambda), dL/dM[k][j] = -b_j sum_i (g_i - g.b) M^-1[i][k].
    """
    height, width = ids.shape
    rows, cols = np.nonzero(ids >= 0)
    corners = triangles[ids[rows, cols]]                                  # [P, 3]
    matrix = vertices.astype(np.float64)[corners][..., [0, 1, 3]].transpose(0, 2, 1)
    pixel = np.stack([(cols + 0.5) / (0.5 * width) - 1.0, (rows + 0.5) / (0.5 * height) - 1.0,
                      np.ones(len(rows))], -1)
    inverse = np.linalg.inv(matrix)
    lam = np.einsum("pij,pj->pi", inverse, pixel)
    b = lam / lam.sum(-1, keepdims=True)
    g = d_bary[rows, cols].astype(np.float64)
    s = np.einsum("pi,pik->pk", g - np.sum(g * b, -1, keepdims=True), inverse)
    partial = -b[:, :, None] * s[:, None, :]                              # [P, corner, xyw]
    grad = np.zeros(vertices.shape)
    for axis, column in enumerate((0, 1, 3)):
        np.add.at(grad[:, column], corners.ravel(), partial[..., axis].ravel())
    return grad


def run_genova_mode():
    """Issue 15's comparison: ours vs Genova's op, interleaved, plus gradient errors."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from face_gcn.render import rasterize_op  # pylint: disable=import-outside-toplevel

    size, batch = 224, FLAGS.genova_batch
    clip, triangles = issue_scene(FLAGS.grid)
    rng = np.random.default_rng(0)
    jitter = rng.normal(scale=0.01, size=(batch, 1, 4)) * [1, 1, 0, 0]
    vertices = {1: clip[None], batch: (clip[None] + jitter).astype(np.float32)}
    weights = {count: rng.normal(size=(count, size, size, 3)).astype(np.float32)
               for count in vertices}
    genova = tf.load_op_library(FLAGS.genova_op) if FLAGS.genova_op else None

    tri = tf.constant(triangles)  # converted once, for both ops

    def ours(count):
        v, w = tf.constant(vertices[count]), tf.constant(weights[count])

        def run():
            bary, ids, _ = rasterize_op.rasterize(v, tri, size, size)
            return ids, rasterize_op.rasterize_grad(v, tri, bary, ids, w, size, size).numpy()
        return run

    def his(count):
        images = [(tf.constant(v), tf.constant(w)) for v, w in zip(vertices[count], weights[count])]

        def run():
            grads = []
            for v, w in images:  # his op takes one image
                bary, ids, _ = genova.rasterize_triangles(v, tri, size, size)
                grads.append(genova.rasterize_triangles_grad(v, tri, bary, ids, w, size, size))
            return np.stack([grad.numpy() for grad in grads])
        return run

    cases = {(name, count): make(count) for count in vertices
             for name, make in (("ours", ours), ("genova", his)) if name == "ours" or genova}
    times = {key: [] for key in cases}
    for key, fn in cases.items():  # warm-up
        fn()
    for _ in range(FLAGS.repeats):
        for key, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)

    ids, grad = cases["ours", 1]()
    ids = ids.numpy()
    print(f"Issue 15 scene: {len(clip)} vertices, {len(triangles)} triangles, {size}^2, "
          f"{np.mean(ids >= 0):.1%} covered; forward + backward, median (min-max) of "
          f"{FLAGS.repeats} interleaved runs; {os.cpu_count()} CPUs")
    print(f"{'images':>6s} {'ours ms':>20s} {'Genova ms':>20s} {'speed-up':>9s}")
    for count in vertices:
        cells = []
        for name in ("ours", "genova"):
            t = 1e3 * np.array(times.get((name, count), [np.nan]))
            cells.append(f"{np.median(t):7.2f} ({t.min():.2f}-{t.max():.2f})")
        ratio = np.median(times["genova", count]) / np.median(times["ours", count]) \
            if genova else np.nan
        print(f"{count:6d} {cells[0]:>20s} {cells[1]:>20s} {ratio:8.2f}x")

    reference = reference_gradient(clip, triangles, ids[0], weights[1][0])
    grads = {"ours": grad[0]}
    if genova:
        grads["Genova"] = cases["genova", 1]()[0]
        his_ids = genova.rasterize_triangles(clip, tri, size, size)[1].numpy()  # 0 where empty
        covered = ids[0] >= 0
        print(f"same visible triangle as Genova's op at "
              f"{np.mean(his_ids[covered] == ids[0][covered]):.2%} of the covered pixels")
    for name, value in grads.items():
        error = value - reference
        print(f"gradient error vs float64 ({name}): relative L2 "
              f"{np.linalg.norm(error) / np.linalg.norm(reference):.2e}, "
              f"max {np.abs(error).max() / np.abs(reference).max():.2e} of the largest")


def main(argv):
    del argv
    if FLAGS.mode == "genova":
        run_genova_mode()
        return
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
