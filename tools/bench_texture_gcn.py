"""Sizes and CPU timings of the texture GCNs, the critic and T_p sampling.

Usage: python tools/bench_texture_gcn.py [--grid N] [--cache PATH]
  --grid N: also a BFM-sized N x N grid mesh (N = 189 gives 35,721 vertices; BFM has 35,709),
            its hierarchy cached at --cache (built once; slow).
Prints one table row per measurement.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from face_gcn.graph.hierarchy import load_or_build_hierarchy  # noqa: E402
from face_gcn.morphable import configured  # noqa: E402
from face_gcn.nets import discriminator, gcn  # noqa: E402
from face_gcn.render import face_renderer  # noqa: E402
from face_gcn.render.vertex_sampling import sample_vertex_colors  # noqa: E402


def grid_mesh(n):
    xs, ys = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
    vertices = np.stack([xs.ravel(), ys.ravel(), 0.3 * np.exp(-(xs ** 2 + ys ** 2)).ravel()], -1)
    r, c = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a, b = (r * n + c).ravel(), (r * n + c + 1).ravel()
    d, e = a + n, b + n
    triangles = np.concatenate([np.stack([a, b, e], -1), np.stack([a, e, d], -1)])
    return vertices, triangles


def timed(function, repeats=3):
    function()  # warm-up (tracing, allocation)
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def row(name, value):
    print(f"| {name:<58} | {value:>24} |")


def bench_mesh(label, hierarchy, batch=4):
    row(f"{label}: hierarchy levels", str(hierarchy.num_vertices))
    configs = {"normal": gcn.GCNConfig(), "normal wide": gcn.GCNConfig(decoder_widths=gcn.DECODER_WIDTHS_WIDE["normal"]),
               "resnet": gcn.GCNConfig(variant="resnet")}
    for variant, config in configs.items():
        start = time.perf_counter()
        model = gcn.build_texture_gcn(hierarchy, config)
        built = time.perf_counter() - start
        for name, count in gcn.count_parameters(model).items():
            row(f"{label} {variant}: parameters {name}", f"{count:,}")
        row(f"{label} {variant}: build model (s)", f"{built:.2f}")
        v = hierarchy.num_vertices[0]
        inputs = [tf.random.normal([batch, config.embedding_size]), tf.random.uniform([batch, v, 7])]
        forward = tf.function(lambda e, f: model([e, f]))
        row(f"{label} {variant}: forward batch {batch} (ms)", f"{1e3 * timed(lambda: forward(*inputs)):.1f}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", type=int, default=0)
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()
    model = configured.load_demo()
    print(f"| {'measurement (CPU, ' + str(os.cpu_count()) + ' cores visible)':<58} | {'value':>24} |")
    print(f"|{'-' * 60}|{'-' * 26}|")
    start = time.perf_counter()
    hierarchy = load_or_build_hierarchy(model.mean_shape, model.triangles)
    row("demo: load or build hierarchy (s)", f"{time.perf_counter() - start:.2f}")
    bench_mesh("demo", hierarchy)

    critic = discriminator.build_discriminator(224)
    row("critic 224: parameters (incl. BN statistics)", f"{critic.count_params():,}")
    images = tf.random.uniform([4, 224, 224, 3])
    score = tf.function(lambda x: critic(x, training=True))
    row("critic 224: forward batch 4 (ms)", f"{1e3 * timed(lambda: score(images)):.1f}")

    coefficients = np.zeros((4, 257), np.float32)
    coefficients[:, 225] = np.linspace(-0.6, 0.6, 4)
    render = face_renderer.render_coefficients(model, coefficients, image_size=224)
    sample = lambda: sample_vertex_colors(render.image, render.posed, render.normals,  # noqa: E731
                                          model.triangles)
    row("T_p sampling demo, 224 px, batch 4 (ms)", f"{1e3 * timed(sample):.1f}")
    row("T_p visible fraction (yaw -0.6..0.6)", f"{float(tf.reduce_mean(sample().visibility)):.3f}")

    if args.grid:
        vertices, triangles = grid_mesh(args.grid)
        start = time.perf_counter()
        grid = load_or_build_hierarchy(vertices, triangles, cache_path=args.cache)
        row(f"grid {len(vertices)}: load or build hierarchy (s)", f"{time.perf_counter() - start:.1f}")
        bench_mesh(f"grid {len(vertices)}", grid, batch=1)


if __name__ == "__main__":
    main()
