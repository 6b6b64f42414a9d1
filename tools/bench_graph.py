"""Benchmark of face_gcn.graph: hierarchy build, sparse vs dense Chebyshev convolution.

Measures
  1. time and peak memory to build the 5-level hierarchy (factors 4,4,4,4) of a 35,709-vertex
     face-like mesh (a deterministic Delaunay disc lifted onto a head-like surface; the BFM
     itself is never used here);
  2. ChebConv (K = 6) forward + backward time at every level, batch 16, 16->16 and 32->32
     channels, against the previous layer (tf.sparse.sparse_dense_matmul per product) and a
     dense-matmul baseline where the dense L~ fits (--dense_max_vertices); the sparse products'
     achieved bytes/s against a measured memory bandwidth;
  3. the filters at the texture GCNs' shapes in the power basis (the layer's way up to K = 6:
     L~^j x products, Horner's rule when projecting first) against the Chebyshev recursions (its
     way before: T_k recursion, Clenshaw's when projecting first), forward and forward + backward,
     with each one's largest error against the float64 filter.

Usage: python tools/bench_graph.py [--vertices 35709] [--batch 16] [--repeats 3] [--notime_hierarchy]
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
flags.DEFINE_enum("mesh", "sunflower", ["sunflower", "demo_bfm"], "sunflower: a face-like Delaunay disc of "
                  "--vertices; demo_bfm: the demo generator at BFM density (35,899 vertices, the mesh of "
                  "bench_train and bench_fit)")
flags.DEFINE_integer("vertices", 35709, "vertex count of the sunflower mesh")
flags.DEFINE_integer("batch", 16, "batch size of the convolution benchmark")
flags.DEFINE_integer("order", 6, "Chebyshev K")
flags.DEFINE_integer("repeats", 3, "timed repeats (median reported) after one warm-up")
flags.DEFINE_integer("dense_max_vertices", 10000, "largest level for the dense baseline")
flags.DEFINE_list("channels", ["16", "32"], "F_in = F_out values")
flags.DEFINE_bool("time_hierarchy", True, "time the hierarchy build (twice: plain and under tracemalloc); "
                  "false: load it from the hierarchy cache ($FACE_GCN_CACHE), building it once if missing")


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
    bandwidth = memory_bandwidth()
    print(f"memory bandwidth (one-thread NumPy copy, read + write): {bandwidth / 1e9:.1f} GB/s")
    print("sparse: the layer (CSR products, fused recursion); COO: the previous layer "
          "(tf.sparse.sparse_dense_matmul per product); GB/s: the sparse products' least traffic / layer time")
    print(f"{'vertices':>9} {'F':>4} {'sparse ms':>10} {'COO ms':>8} {'vs COO':>7} {'GB/s':>6} {'of bw':>6} "
          f"{'dense ms':>10} {'vs dense':>9}")
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
            coo_ms = _median_ms(coo_step(operator, layer.kernel.numpy(), order, channels), x)
            # each of the 2 (K - 1) products reads L~ (4-byte value + 8-byte column per non-zero) and
            # an [N, B F] block, and writes one
            traffic = 2 * (order - 1) * (12 * operator.nnz + 2 * 4 * num_vertices * batch * channels)
            achieved = traffic / (sparse_ms / 1000.0)
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
            print(f"{num_vertices:9d} {channels:4d} {sparse_ms:10.1f} {coo_ms:8.1f} {coo_ms / sparse_ms:6.1f}x "
                  f"{achieved / 1e9:6.1f} {achieved / bandwidth:6.2f} {dense_text} {speed_text}")


FILTER_SHAPES = ((0, 16, 16), (0, 7, 16), (0, 32, 16), (0, 16, 3), (1, 64, 32), (2, 128, 64))  # (level, F_in, F_out)


def bench_power_basis(hierarchy):
    """The filters in the power basis vs the Chebyshev recursions, side by side (same function)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from face_gcn.graph import products  # pylint: disable=import-outside-toplevel
    from face_gcn.graph.sparse import to_sparse_tensor  # pylint: disable=import-outside-toplevel

    order, batch = FLAGS.order, FLAGS.batch
    print(f"\n== Filters at the GCNs' shapes, K={order}, batch {batch}: Chebyshev recursions vs power basis, "
          f"median of {FLAGS.repeats} ==")
    print("projected first when F_out < F_in (Clenshaw / Horner), else basis first; "
          "error: largest |float32 - float64 filter| / largest |filter|")
    print(f"{'vertices':>9} {'F_in->F_out':>12} {'fwd Cheb':>9} {'fwd power':>10} {'ratio':>6} "
          f"{'f+b Cheb':>9} {'f+b power':>10} {'ratio':>6} {'err Cheb':>9} {'err power':>10}")
    to_power = products.chebyshev_to_power(order)
    for level, f_in, f_out in FILTER_SHAPES:
        if level >= hierarchy.num_levels:
            continue
        operator = hierarchy.chebyshev(level, "fixed")
        num_vertices = operator.shape[0]
        rng = np.random.default_rng(level + f_in)
        x = rng.normal(size=(num_vertices, batch * f_in))
        thetas = rng.normal(size=(order, f_in, f_out)) / np.sqrt(order * f_in)
        reference = _filter_reference(operator, x, thetas)
        kinds = {"chebyshev": (products.chebyshev_basis, products.chebyshev_sum, thetas),
                 "power": (products.power_basis, products.power_sum, np.einsum("kj,kio->jio", to_power, thetas))}
        row, errors = [], []
        for kind, (basis, summed, weights) in kinds.items():
            def filtered(columns, dtype, basis=basis, summed=summed, weights=weights):
                matrix = to_sparse_tensor(operator, dtype.name)
                kernels = [tf.constant(w, dtype) for w in weights]

                def project(block, kernel):
                    return tf.reshape(tf.reshape(block, [-1, f_in]) @ kernel, [num_vertices, -1])
                if f_out < f_in:
                    return summed(matrix, [project(columns, k) for k in kernels])
                return tf.add_n([project(t, k) for t, k in zip(basis(matrix, columns, order), kernels)])

            forward = tf.function(lambda columns, filtered=filtered: [filtered(columns, tf.float32)])

            @tf.function
            def both(columns, filtered=filtered):
                with tf.GradientTape() as tape:
                    tape.watch(columns)
                    loss = tf.reduce_sum(tf.square(filtered(columns, tf.float32)))
                return [tape.gradient(loss, columns)]

            columns = tf.constant(x, tf.float32)
            row.append((_median_ms(forward, columns), _median_ms(both, columns)))
            errors.append(np.abs(forward(columns)[0].numpy() - reference).max() / np.abs(reference).max())
            exact = filtered(tf.constant(x), tf.float64).numpy()
            assert np.abs(exact - reference).max() <= 1e-9 * np.abs(reference).max(), f"{kind} is not the filter"
        (fc, bc), (fp, bp) = row
        print(f"{num_vertices:9d} {f'{f_in}->{f_out}':>12} {fc:9.1f} {fp:10.1f} {fc / fp:5.2f}x "
              f"{bc:9.1f} {bp:10.1f} {bc / bp:5.2f}x {errors[0]:9.1e} {errors[1]:10.1e}")


def _filter_reference(operator, x, thetas):
    """sum_k T_k(L~) x theta_k in float64 by the Chebyshev recursion on the sparse matrix (SciPy)."""
    order, f_in, _ = thetas.shape
    terms = [x, operator @ x]
    for _ in range(2, order):
        terms.append(2.0 * (operator @ terms[-1]) - terms[-2])
    return sum((t.reshape(-1, f_in) @ theta).reshape(len(x), -1) for t, theta in zip(terms[:order], thetas))


def memory_bandwidth(megabytes: int = 256) -> float:
    """Bytes per second of a one-thread copy of a large float32 array (read + write), best of 5."""
    source = np.ones(megabytes * 2**20 // 4, np.float32)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best


def coo_step(operator, kernel, order, channels):
    """Forward + backward of the previous ChebConv: tf.sparse.sparse_dense_matmul for each product,
    autodiff through the recursion (the baseline of the speed-up column)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from face_gcn.graph.sparse import to_sparse_tensor  # pylint: disable=import-outside-toplevel

    matrix, kernel = to_sparse_tensor(operator), tf.Variable(kernel)
    num_vertices = operator.shape[0]

    @tf.function
    def step(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            cols = tf.reshape(tf.transpose(inputs, [1, 0, 2]), [num_vertices, -1])
            thetas = tf.unstack(tf.reshape(kernel, [channels, order, -1]), axis=1)
            terms = [cols, tf.sparse.sparse_dense_matmul(matrix, cols)]
            for _ in range(2, order):
                terms.append(2.0 * tf.sparse.sparse_dense_matmul(matrix, terms[-1]) - terms[-2])
            y = tf.add_n([tf.reshape(t, [-1, channels]) @ theta for t, theta in zip(terms, thetas)])
            loss = tf.reduce_sum(tf.square(y))
        return tape.gradient(loss, [inputs, kernel])

    return step


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
    if FLAGS.mesh == "demo_bfm":
        from face_gcn.morphable import demo  # pylint: disable=import-outside-toplevel
        model = demo.build_demo_model(0, spacing=demo.BFM_DENSITY_SPACING)
        vertices, triangles = model.mean_shape, model.triangles  # as texture training passes them (cache key)
        print(f"demo generator at BFM density: {len(vertices)} vertices, {len(triangles)} triangles")
    else:
        vertices, triangles = face_like_mesh(FLAGS.vertices)
        print(f"synthetic face-like mesh: {len(vertices)} vertices, {len(triangles)} triangles")
    if FLAGS.time_hierarchy:
        hierarchy = bench_hierarchy(vertices, triangles)
    else:
        from face_gcn.graph.hierarchy import load_or_build_hierarchy  # pylint: disable=import-outside-toplevel
        hierarchy = load_or_build_hierarchy(vertices, triangles, (4, 4, 4, 4))
    bench_convolutions(hierarchy)
    bench_power_basis(hierarchy)
    count = len(vertices)
    print(f"\ndense L~ at {count} vertices would need {4 * count ** 2 / 2**30:.1f} GiB (float32) "
          f"and ~{2 * count ** 2 * FLAGS.batch * 32 * (FLAGS.order - 1) * 2 / 1e12:.0f} TFLOP per "
          "32-channel step: not run here")


if __name__ == "__main__":
    app.run(main)
