"""Benchmark of `face-gcn fit` on CPU: seconds per image of the coarse fit and the test-time
refinement, and masked PSNR / SSIM (face region x coverage, render composited into the crop)
of the coarse vs the refined texture, on synthetic faces (detail albedo the 3DMM cannot
represent, face_gcn.synthesis) and on skimage's astronaut photo.

  python tools/bench_fit.py [--num_synthetic 4] [--refine_steps 150]
"""

from __future__ import annotations

import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_synthetic", 4, "Synthetic faces to fit.")
flags.DEFINE_integer("refine_steps", 150, "Adam steps of the refinement.")
flags.DEFINE_integer("seed", 11, "Synthetic set seed.")


def _evaluate(model, crop_uint8, mask, coefficients, refined):
    from face_gcn.fit import outputs  # pylint: disable=import-outside-toplevel
    _, alpha, views = outputs.render_views(model, coefficients, {"coarse": refined.coarse_albedo,
                                                                  "refined": refined.albedo}, crop_uint8.shape[0])
    row = {}
    for method, (_, render) in views.items():
        composited = outputs.composite(render, alpha, crop_uint8 / 255.0)
        row[f"psnr_{method}"], row[f"ssim_{method}"] = outputs.face_metrics(crop_uint8, composited, mask, alpha)
    return row


def main(argv):
    del argv
    import skimage.data  # pylint: disable=import-outside-toplevel

    from face_gcn.data import alignment, detection, masks  # pylint: disable=import-outside-toplevel
    from face_gcn.fit import coarse_fit, refine  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured  # pylint: disable=import-outside-toplevel
    from face_gcn.synthesis import dataset  # pylint: disable=import-outside-toplevel

    model = configured.load_demo()
    fitter = coarse_fit.CoarseFitter(model, 224)
    refiner = refine.TextureRefiner(model, 224, refine.RefineConfig(steps=FLAGS.refine_steps))
    cases = []
    batch = dataset.generate_batch(model, FLAGS.seed, "train", range(FLAGS.num_synthetic),
                                   dataset.SyntheticConfig())
    for i in range(FLAGS.num_synthetic):
        cases.append((f"synthetic_{i}", batch.images[i], batch.masks[i], batch.landmarks[i]))
    photo = skimage.data.astronaut()
    face = detection.FaceDetector().detect(photo).largest
    transform = alignment.alignment_transform(face.landmarks, model.alignment_landmarks, 224)
    crop = alignment.warp_to_crop(photo, transform, 224)
    landmarks = alignment.apply_transform(transform, face.landmarks)
    cases.append(("astronaut", crop, masks.SkinColourSegmenter().segment(crop, landmarks), landmarks))

    # warm-up: trace the compiled steps once (not timed)
    warm = fitter.fit(cases[0][1], cases[0][2], cases[0][3])
    refiner.refine(cases[0][1], cases[0][2], warm.coefficients)

    rows = []
    for name, image, mask, points in cases:
        start = time.perf_counter()
        fit = fitter.fit(image, mask, points)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        refined = refiner.refine(image, mask, fit.coefficients)
        refine_seconds = time.perf_counter() - start
        rows.append({"name": name, "fit_s": fit_seconds, "refine_s": refine_seconds,
                     **_evaluate(model, image, mask, fit.coefficients, refined)})

    print(f"demo model: {model.num_vertices} vertices; crop 224; refine steps {FLAGS.refine_steps}")
    print(f"{'image':<14}{'fit s':>8}{'refine s':>10}{'PSNR c':>9}{'PSNR r':>9}{'SSIM c':>9}{'SSIM r':>9}")
    for row in rows:
        print(f"{row['name']:<14}{row['fit_s']:>8.2f}{row['refine_s']:>10.2f}{row['psnr_coarse']:>9.2f}"
              f"{row['psnr_refined']:>9.2f}{row['ssim_coarse']:>9.3f}{row['ssim_refined']:>9.3f}")
    synthetic = [row for row in rows if row["name"].startswith("synthetic")]
    if synthetic:
        mean = {key: float(np.mean([row[key] for row in synthetic])) for key in synthetic[0] if key != "name"}
        print(f"{'synthetic mean':<14}{mean['fit_s']:>8.2f}{mean['refine_s']:>10.2f}{mean['psnr_coarse']:>9.2f}"
              f"{mean['psnr_refined']:>9.2f}{mean['ssim_coarse']:>9.3f}{mean['ssim_refined']:>9.3f}")


if __name__ == "__main__":
    app.run(main)
