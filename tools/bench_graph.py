"""Benchmark of face_gcn.graph: hierarchy build, sparse vs dense Chebyshev convolution.

Measures
  1. time and peak memory to build the 5-level hierarchy (factors 4,4,4,4) of a 35,709-vertex
     face-like mesh (a deterministic Delaunay disc lifted onto a head-like surface; the BFM
     itself is never used here);
  2. ChebConv (K = 6) forward + backward time at every level, batch 16, 16->16 and 32->32
     channels, against a dense-matmul baseline where the dense L~ fits (--dense_max_vertices).

Usage: python tools/bench_graph.py [--vertices 35709] [--batch 16] [--repeats 3]
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from scipy.spatial import Delaunay  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("vertices", 35709, "vertex count of the synthetic face mesh")
flags.DEFINE_integer("batch", 16, "batch size of the convolution benchmark")
flags.DEFINE_integer("order", 6, "Chebyshev K")
flags.DEFINE_integer("repeats", 3, "timed repeats (median reported) after one warm-up")
flags.DEFINE_integer("dense_max_vertices", 10000, "largest level for the dense baseline")
flags.DEFINE_list("channels", ["16", "32"], "F_in = F_out values")


def face_like_mesh(num_vertices: int):
    """Deterministic open surface: sunflower points in an ellipse, Delaunay, lifted to a face.

    Returns vertices [V, 3] (about 0.15 m wide, like BFM's front face) and triangles [T, 3].
    """
    index = np.arange(num_vertices) + 0.5
    radius = np.sqrt(index / num_vertices)
    angle = index * np.pi * (3.0 - np.sqrt(5.0))
    x, y = 0.075 * radius * np.cos(angle), 0.095 * radius * np.sin(angle)
    triangles = Delaunay(np.stack([x, y], axis=1)).simplices.astype(np.int64)
    z = 0.06 * np.sqrt(np.clip(1 - (x / 0.09) ** 2 - (y / 0.11) ** 2, 0, None))
    z += 0.02 * np.exp(-((x / 0.012) ** 2 + ((y + 0.005) / 0.025) ** 2))  # nose
    z -= 0.008 * np.exp(-(((np.abs(x) - 0.032) / 0.015) ** 2 + ((y - 0.03) / 0.01) ** 2))  # eye sockets
    vertices = np.stack([x, y, z], axis=1)
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    flip = np.cross(b - a, c - a)[:, 2] < 0
    triangles[flip] = triangles[flip][:, [0, 2, 1]]
    return vertices, triangles


def bench_hierarchy(vertices, triangles):
    from face_gcn.graph.hierarchy import build_hierarchy  # pylint: disable=import-outside-toplevel

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    hierarchy = build_hierarchy(vertices, triangles, (4, 4, 4, 4))
    seconds = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    traced_start = time.perf_counter()
    build_hierarchy(vertices, triangles, (4, 4, 4, 4))
    traced_seconds = time.perf_counter() - traced_start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print("\n== Mesh hierarchy (factors 4,4,4,4), one core, pure NumPy/SciPy/heapq ==")
    print(f"levels: {' -> '.join(str(n) for n in hierarchy.num_vertices)} vertices")
    print(f"lmax per level: {', '.join(f'{v:.4f}' for v in hierarchy.lmax)}")
    print(f"build time: {seconds:.1f} s   (under tracemalloc: {traced_seconds:.1f} s)")
    print(f"peak traced Python/NumPy allocation: {peak / 2**20:.0f} MiB; "
          f"process peak RSS grew by {(rss_after - rss_before) / 1024:.0f} MiB to {rss_after / 1024:.0f} MiB")
    _report_surface_distance(hierarchy)
    return hierarchy


def _report_surface_distance(hierarchy):
    """Symmetric Hausdorff distance of every level to the input surface (exact point-to-surface
    distances from the input vertices, and from the level's vertices, edge midpoints and face
    centroids back to the input surface)."""
    from face_gcn.graph.sampling import nearest_surface_points  # pylint: disable=import-outside-toplevel

    v0, t0 = hierarchy.vertices[0], hierarchy.triangles[0]
    diagonal = float(np.linalg.norm(v0.max(axis=0) - v0.min(axis=0)))
    print(f"Hausdorff distance to the input surface (bounding-box diagonal {1000 * diagonal:.1f} mm):")
    for level in range(1, hierarchy.num_levels):
        vk, tk = hierarchy.vertices[level], hierarchy.triangles[level]
        forward = nearest_surface_points(v0, vk, tk)[2].max()
        corners = vk[tk]
        samples = np.concatenate([corners.mean(axis=1), (corners + np.roll(corners, 1, axis=1)).reshape(-1, 3) / 2])
        backward = nearest_surface_points(samples, v0, t0)[2].max()
        distance = max(forward, backward)
        print(f"  level {level} ({len(vk)} vertices): {1000 * distance:.3f} mm = {100 * distance / diagonal:.3f} % "
              f"of the diagonal (input->level {1000 * forward:.3f} mm, level->input {1000 * backward:.3f} mm)")


def bench_convolutions(hierarchy):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from face_gcn.graph.layers import ChebConv  # pylint: disable=import-outside-toplevel

    order, batch = FLAGS.order, FLAGS.batch
    print(f"\n== ChebConv K={order}, batch {batch}, forward + backward (median of {FLAGS.repeats}), "
          f"{os.cpu_count()} CPU cores, TF {tf.__version__} ==")
    print(f"{'vertices':>9} {'F':>4} {'sparse ms':>10} {'dense ms':>10} {'speed-up':>9}")
    for level in range(hierarchy.num_levels):
        operator = hierarchy.chebyshev(level, "exact")
        num_vertices = operator.shape[0]
        for channels in (int(c) for c in FLAGS.channels):
            rng = np.random.default_rng(0)
            x = tf.constant(rng.normal(size=(batch, num_vertices, channels)), tf.float32)
            layer = ChebConv(channels, order, operator)
            layer.build(x.shape)

            @tf.function
            def sparse_step(inputs, layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch(inputs)
                    loss = tf.reduce_sum(tf.square(layer(inputs)))
                return tape.gradient(loss, [inputs, layer.kernel])

            sparse_ms = _median_ms(sparse_step, x)
            dense_ms = float("nan")
            if num_vertices <= FLAGS.dense_max_vertices:
                dense = tf.constant(operator.toarray(), tf.float32)
                kernel = tf.Variable(layer.kernel.numpy())

                @tf.function
                def dense_step(inputs, dense=dense, kernel=kernel, channels=channels):
                    with tf.GradientTape() as tape:
                        tape.watch(inputs)
                        cols = tf.reshape(tf.transpose(inputs, [1, 0, 2]), [num_vertices, -1])
                        terms = [cols, dense @ cols]
                        for _ in range(2, order):
                            terms.append(2.0 * (dense @ terms[-1]) - terms[-2])
                        basis = tf.transpose(tf.reshape(tf.stack(terms), [order, num_vertices, batch, channels]),
                                             [2, 1, 3, 0])
                        y = tf.reshape(basis, [-1, channels * order]) @ kernel
                        loss = tf.reduce_sum(tf.square(y))
                    return tape.gradient(loss, [inputs, kernel])

                # Same numbers as the sparse layer (checks the baseline as well as timing it).
                got, want = dense_step(x)[0].numpy(), sparse_step(x)[0].numpy()
                assert np.allclose(got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max()), "baseline mismatch"
                dense_ms = _median_ms(dense_step, x)
            speedup = dense_ms / sparse_ms if np.isfinite(dense_ms) else float("nan")
            dense_text = f"{dense_ms:10.1f}" if np.isfinite(dense_ms) else f"{'(no fit)':>10}"
            speed_text = f"{speedup:8.1f}x" if np.isfinite(speedup) else f"{'-':>9}"
            print(f"{num_vertices:9d} {channels:4d} {sparse_ms:10.1f} {dense_text} {speed_text}")


def _median_ms(function, *args):
    function(*args)  # warm-up and trace
    times = []
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        result = function(*args)
        _ = [r.numpy() for r in result]
        times.append(1000.0 * (time.perf_counter() - start))
    return float(np.median(times))


def main(argv):
    del argv
    vertices, triangles = face_like_mesh(FLAGS.vertices)
    print(f"synthetic face-like mesh: {len(vertices)} vertices, {len(triangles)} triangles")
    hierarchy = bench_hierarchy(vertices, triangles)
    bench_convolutions(hierarchy)
    dense_bytes = 4 * FLAGS.vertices ** 2
    print(f"\ndense L~ at {FLAGS.vertices} vertices would need {dense_bytes / 2**30:.1f} GiB (float32) "
          f"and ~{2 * FLAGS.vertices ** 2 * FLAGS.batch * 32 * (FLAGS.order - 1) * 2 / 1e12:.0f} TFLOP per "
          "32-channel step: not run here")


if __name__ == "__main__":
    app.run(main)
