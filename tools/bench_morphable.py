"""Times the morphable-model forward pass on a BFM-sized problem.

Shape (80 identity + 64 expression), albedo (80), vertex normals, pose and SH colours for a
batch of faces on a grid mesh with 35,709 vertices (the BFM front face's count) and random bases
of the BFM's size. Each stage and the whole chain run eagerly and as tf.function; the first
call (tracing, warm-up) is excluded and the median of --runs calls is printed, plus the process
peak resident memory (and the GPU's peak when one is used).

  python tools/bench_morphable.py [--batch 16] [--runs 10]
"""

from __future__ import annotations

import resource
import statistics
import time

from absl import app, flags
import numpy as np
import tensorflow as tf

from face_gcn.mesh import normals as normals_lib
from face_gcn.morphable import formation
from face_gcn.morphable.model import vertex_triangle_table
from face_gcn.render import camera, lighting

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch", 16, "faces per batch")
flags.DEFINE_integer("runs", 10, "timed calls per row (after one warm-up call)")
flags.DEFINE_integer("vertices", 35709, "mesh vertices (BFM front face: 35,709)")

NUM_ID, NUM_EXP, NUM_TEX = 80, 64, 80
GRID_COLUMNS = 189


def grid_mesh(num_vertices: int, columns: int = GRID_COLUMNS):
    """Row-major grid of ``num_vertices`` points (last row partial), two triangles per cell."""
    index = np.arange(num_vertices)
    rows, cols = np.divmod(index, columns)
    vertices = np.stack([cols / columns - 0.5, rows / columns - 0.5,
                         0.1 * np.sin(cols / 9.0) * np.cos(rows / 7.0)], axis=1)
    corner = index[(cols < columns - 1) & (index + columns + 1 < num_vertices)]
    triangles = np.concatenate([
        np.stack([corner, corner + 1, corner + columns + 1], axis=1),
        np.stack([corner, corner + columns + 1, corner + columns], axis=1)])
    return vertices.astype(np.float32), triangles.astype(np.int32)


def _median_seconds(function, runs):
    result = function()                 # warm-up (tracing for tf.function)
    _block(result)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _block(function())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _block(result):
    for tensor in tf.nest.flatten(result):
        tensor.numpy()


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    mean_shape, triangles = grid_mesh(FLAGS.vertices)
    num_v = mean_shape.shape[0]
    vertex_triangles = vertex_triangle_table(triangles, num_v)
    scale = 1e-3
    constants = dict(
        mean_shape=tf.constant(mean_shape),
        id_basis=tf.constant(rng.normal(0, scale, (3 * num_v, NUM_ID)).astype(np.float32)),
        exp_basis=tf.constant(rng.normal(0, scale, (3 * num_v, NUM_EXP)).astype(np.float32)),
        mean_albedo=tf.constant(rng.uniform(0.3, 0.8, (num_v, 3)).astype(np.float32)),
        albedo_basis=tf.constant(rng.normal(0, 0.01, (3 * num_v, NUM_TEX)).astype(np.float32)),
        triangles=tf.constant(triangles), vertex_triangles=tf.constant(vertex_triangles))
    batch = FLAGS.batch
    inputs = dict(
        id=tf.constant(rng.normal(size=(batch, NUM_ID)).astype(np.float32)),
        exp=tf.constant(rng.normal(size=(batch, NUM_EXP)).astype(np.float32)),
        tex=tf.constant(rng.normal(size=(batch, NUM_TEX)).astype(np.float32)),
        angles=tf.constant(rng.uniform(-0.3, 0.3, (batch, 3)).astype(np.float32)),
        gamma=tf.constant(rng.normal(0, 0.1, (batch, 27)).astype(np.float32)),
        translation=tf.constant(rng.normal(0, 0.1, (batch, 3)).astype(np.float32)))
    c = constants

    def shape():
        return formation.form_shape(c["mean_shape"], c["id_basis"], c["exp_basis"],
                                    inputs["id"], inputs["exp"])

    def albedo():
        return formation.form_albedo(c["mean_albedo"], c["albedo_basis"], inputs["tex"])

    shape_value = shape()

    def normals():
        return normals_lib.vertex_normals(shape_value, c["triangles"], c["vertex_triangles"])

    normal_value = normals()
    albedo_value = albedo()

    def colours():
        return lighting.illuminate(albedo_value, normal_value, inputs["gamma"])

    def full_chain():
        vertices = shape()
        rotation = camera.euler_rotation(inputs["angles"])
        posed = camera.rigid_transform(vertices, inputs["angles"], inputs["translation"])
        unit = normals_lib.vertex_normals(vertices, c["triangles"], c["vertex_triangles"])
        colour = lighting.illuminate(albedo(), camera.rotate(unit, rotation), inputs["gamma"])
        return posed, colour

    def full_chain_with_gradient():
        with tf.GradientTape() as tape:
            tape.watch(list(inputs.values()))
            posed, colour = full_chain()
            loss = tf.reduce_sum(posed) + tf.reduce_sum(colour)
        return tape.gradient(loss, list(inputs.values()))

    rows = [("shape (80 id + 64 exp)", shape), ("albedo (80 tex)", albedo),
            ("vertex normals", normals), ("SH colours (illuminate)", colours),
            ("full: shape+albedo+normals+pose+colours", full_chain),
            ("full forward + gradient", full_chain_with_gradient)]
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"device {device}; batch {batch}; {num_v} vertices, {triangles.shape[0]} triangles, "
          f"{vertex_triangles.shape[1]} triangles/vertex max; median of {FLAGS.runs} runs")
    print(f"{'stage':42s} {'eager ms':>10s} {'tf.function ms':>15s}")
    for name, function in rows:
        eager = _median_seconds(function, FLAGS.runs)
        graph = _median_seconds(tf.function(function), FLAGS.runs)
        print(f"{name:42s} {eager * 1e3:10.2f} {graph * 1e3:15.2f}")
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak resident memory of the process: {peak_rss_mib:.0f} MiB")
    if device == "GPU":
        info = tf.config.experimental.get_memory_info("GPU:0")
        print(f"peak GPU memory: {info['peak'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    app.run(main)
