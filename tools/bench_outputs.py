"""What writing one reconstructed photo costs (face_gcn.fit.outputs, shared by `fit` and `reconstruct`),
on the demo model and on the demo generator at BFM density (35,899 vertices), side by side.

Stages (seconds per photo, median of --repeats): the three crop renders (coarse, refined, unlit),
the four meshes (OBJ with the albedo and binary PLY with the lit colours, per method), the overlay
(the face rendered at the photo's resolution through the inverse alignment, feathered, pasted), the
masked PSNR / SSIM, and the whole write_reconstruction with every PNG. The photo is a synthetic
--photo_width x --photo_height frame whose face spans about 40% of its width.

  python tools/bench_outputs.py [--crop_size 224] [--photo_width 1280 --photo_height 960] [--repeats 5]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("crop_size", 224, "Aligned crop size S.")
flags.DEFINE_integer("photo_width", 1280, "Width of the original photo the overlay is drawn on.")
flags.DEFINE_integer("photo_height", 960, "Height of the original photo.")
flags.DEFINE_integer("repeats", 5, "Timed repeats per stage (after one warm-up).")
flags.DEFINE_list("meshes", ["demo", "bfm"], "demo = the built-in model; bfm = the demo generator at BFM density.")


def _median_seconds(function, repeats: int) -> float:
    function()  # warm-up (tracing, caches)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _morphable(mesh: str):
    from face_gcn.morphable import configured, demo  # pylint: disable=import-outside-toplevel
    return configured.load_demo() if mesh == "demo" else demo.build_demo_model(0, spacing=demo.BFM_DENSITY_SPACING)


def _photo_and_transform(size: int, width: int, height: int):
    """A smooth synthetic photo [H, W, 3] uint8 and the [2, 3] photo -> crop transform of a face window
    0.4 W wide at the photo's centre."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    photo = np.stack([90 + 60 * np.sin(cols / 37.0), 80 + 50 * np.cos(rows / 29.0), 70 + 40 * np.sin((rows + cols) / 53.0)],
                     -1).round().astype(np.uint8)
    scale = size / (0.4 * width)
    transform = np.array([[scale, 0.0, size / 2 - scale * width / 2], [0.0, scale, size / 2 - scale * height / 2]])
    return photo, transform


def stage_seconds(mesh: str) -> tuple[int, dict, dict]:
    """(vertex count, {stage: median seconds per photo}, {file: bytes}) for one mesh."""
    from face_gcn.fit import outputs  # pylint: disable=import-outside-toplevel
    from face_gcn.mesh import io as mesh_io  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import coefficients as coeff_lib  # pylint: disable=import-outside-toplevel
    model = _morphable(mesh)
    size = FLAGS.crop_size
    rng = np.random.default_rng(0)
    coefficients = np.zeros(coeff_lib.NUM_COEFFICIENTS, np.float32)
    coefficients[coeff_lib.BLOCK_SLICES["angles"]] = [0.05, 0.3, 0.0]
    coefficients[coeff_lib.BLOCK_SLICES["gamma"]][[0, 9, 18]] = 0.2
    albedo = np.clip(model.mean_albedo + rng.normal(0, 0.02, model.mean_albedo.shape), 0, 1).astype(np.float32)
    albedo_by_method = {"coarse": model.mean_albedo.astype(np.float32), "refined": albedo}
    posed, alpha, views, _ = outputs.render_views(model, coefficients, albedo_by_method, size)
    crop = np.round(np.clip(views["refined"][1], 0, 1) * 255).astype(np.uint8)
    mask = (alpha > 0.5).astype(np.uint8)
    photo, transform = _photo_and_transform(size, FLAGS.photo_width, FLAGS.photo_height)
    face = outputs.FaceReconstruction(name="face", crop=crop, mask=mask, landmarks=np.zeros((5, 2)), transform=transform,
                                      original=photo, coefficients=coefficients, albedo=albedo_by_method, seconds={})
    crop_float = crop.astype(np.float32) / 255.0
    lit = views["refined"][0]
    with tempfile.TemporaryDirectory() as folder:
        stem = os.path.join(folder, "face")

        def meshes():
            for method, (method_lit, _) in views.items():
                mesh_io.write_obj(f"{stem}_{method}.obj", posed, model.triangles, albedo_by_method[method])
                mesh_io.write_ply(f"{stem}_{method}.ply", posed, model.triangles, np.clip(method_lit, 0, 1))

        def metrics():
            for _, render in views.values():
                outputs.face_metrics(crop, outputs.composite(render, alpha, crop_float), mask, alpha)

        seconds = {
            "crop renders (3)": _median_seconds(lambda: outputs.render_views(model, coefficients, albedo_by_method, size),
                                                FLAGS.repeats),
            "meshes (2 OBJ + 2 PLY)": _median_seconds(meshes, FLAGS.repeats),
            "overlay": _median_seconds(lambda: outputs.photo_overlay(model, posed, lit, mask, transform, photo, size),
                                       FLAGS.repeats),
            "PSNR + SSIM (2 methods)": _median_seconds(metrics, FLAGS.repeats),
            "write_reconstruction, all files": _median_seconds(
                lambda: outputs.write_reconstruction(os.path.join(folder, "all"), model, face), FLAGS.repeats),
        }
        sizes = {name: os.path.getsize(os.path.join(folder, "all", name)) for name in
                 ("face_refined.obj", "face_refined.ply", "face_overlay.png")}
    return model.num_vertices, seconds, sizes


def main(argv):
    del argv
    results = {mesh: stage_seconds(mesh) for mesh in FLAGS.meshes}
    header = f"{'stage (s per photo)':34s}" + "".join(f"{f'{mesh} ({results[mesh][0]:,} v)':>20s}" for mesh in results)
    print(f"crop {FLAGS.crop_size} px, photo {FLAGS.photo_width} x {FLAGS.photo_height}, median of {FLAGS.repeats}")
    print(header)
    for stage in next(iter(results.values()))[1]:
        print(f"{stage:34s}" + "".join(f"{results[mesh][1][stage]:20.3f}" for mesh in results))
    for name in next(iter(results.values()))[2]:
        print(f"{name + ' (MiB)':34s}" + "".join(f"{results[mesh][2][name] / 2 ** 20:20.2f}" for mesh in results))


if __name__ == "__main__":
    app.run(main)
