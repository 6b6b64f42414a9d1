"""Benchmarks of the coarse fit on CPU.

--mode=batched: the regress-then-fit coarse stage (coarse_fit.refinement_stages, --fit_steps) on
  synthetic faces whose start is the truth perturbed as a regressor would miss it (pose 5 degrees,
  translation 0.03, shape/expression/albedo at 30%, light +-0.05): seconds per face at each batch
  size, for the demo model at 96 px and a BFM-sized demo mesh (35,899 vertices) at 224 px, next to
  the per-photo fit from the mean face (default_stages) at batch 1; and the pose and light errors
  before and after the fit (5 and 68 landmarks).
--mode=photo: `face-gcn fit` per photo: seconds per image of the coarse fit (alone, and as one
  batch of all the photos, as the command fits --batch_size at a time) and the test-time
  refinement, and masked PSNR / SSIM (face region x coverage, render composited into the crop)
  of the coarse vs the refined texture, on synthetic faces and on skimage's astronaut photo.

  python tools/bench_fit.py --mode=batched [--batch_sizes 1,16,64] [--fit_steps 20]
  python tools/bench_fit.py --mode=photo [--num_synthetic 4] [--refine_steps 150]
"""

from __future__ import annotations

import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_synthetic", 4, "Synthetic faces to fit.")
flags.DEFINE_integer("refine_steps", 150, "Adam steps of the refinement.")
flags.DEFINE_integer("seed", 11, "Synthetic set seed.")
flags.DEFINE_enum("mode", "batched", ["batched", "photo"], "Which benchmark (module docstring).")
flags.DEFINE_list("batch_sizes", ["1", "16", "64"], "Batch sizes of the batched fit.")
flags.DEFINE_integer("fit_steps", 20, "Rendered steps of the regress-then-fit stage.")
flags.DEFINE_list("meshes", ["demo:96", "bfm:224"], "MESH:CROP pairs; demo = the built-in model, bfm = the demo "
                  "generator at BFM density (35,899 vertices).")
flags.DEFINE_enum("photo_mesh", "demo", ["demo", "bfm"], "--mode=photo: the built-in model or the demo generator at "
                  "BFM density (35,899 vertices).")


def _perturbed(truth, rng):
    from face_gcn.morphable import coefficients as coeff_lib  # pylint: disable=import-outside-toplevel
    start = truth.copy()
    start[:, coeff_lib.BLOCK_SLICES["angles"]] += rng.normal(0.0, np.deg2rad(5.0), (len(truth), 3))
    start[:, coeff_lib.BLOCK_SLICES["translation"]] += rng.normal(0.0, 0.03, (len(truth), 3))
    for block in ("id", "exp", "tex"):
        start[:, coeff_lib.BLOCK_SLICES[block]] *= 0.3
    start[:, coeff_lib.BLOCK_SLICES["gamma"]] += rng.normal(0.0, 0.05, (len(truth), 27))
    return start.astype(np.float32)


def _errors(coefficients, truth):
    """(angle RMSE over faces and axes in degrees, light RMSE over the 27 SH coefficients)."""
    from face_gcn.morphable import coefficients as coeff_lib  # pylint: disable=import-outside-toplevel
    angles, gamma = coeff_lib.BLOCK_SLICES["angles"], coeff_lib.BLOCK_SLICES["gamma"]
    return (float(np.sqrt(np.mean(np.rad2deg(coefficients[:, angles] - truth[:, angles]) ** 2))),
            float(np.sqrt(np.mean((coefficients[:, gamma] - truth[:, gamma]) ** 2))))


def batched_benchmark():
    from face_gcn.fit import coarse_fit  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured, demo  # pylint: disable=import-outside-toplevel
    from face_gcn.synthesis import dataset  # pylint: disable=import-outside-toplevel

    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
    print(f"regress-then-fit: {FLAGS.fit_steps} rendered steps + {coarse_fit.LANDMARK_STAGE_STEPS} landmark steps")
    print(f"{'mesh':<8}{'V':>7}{'crop':>6}{'batch':>7}{'s/face':>9}{'vs photo fit':>14}")
    for entry in FLAGS.meshes:
        name, crop = entry.split(":")
        crop = int(crop)
        model = (configured.load_demo() if name == "demo"
                 else demo.build_demo_model(spacing=demo.BFM_DENSITY_SPACING))
        count = max(batch_sizes)
        faces = dataset.generate_batch(model, FLAGS.seed, "heldout", range(count),
                                       dataset.SyntheticConfig(image_size=crop, detail_scale=3.0))
        start = _perturbed(faces.coefficients, np.random.default_rng(FLAGS.seed))
        photo_fitter = coarse_fit.CoarseFitter(model, crop)
        photo_fitter.fit_batch(faces.images[:1], faces.masks[:1], faces.landmarks[:1])  # trace
        photo = photo_fitter.fit_batch(faces.images[:1], faces.masks[:1], faces.landmarks[:1]).seconds
        fitters = {k: coarse_fit.CoarseFitter(model, crop, coarse_fit.refinement_config(FLAGS.fit_steps, k))
                   for k in (5, 68)}
        points = {5: faces.landmarks, 68: faces.landmarks68}
        for k, fitter in fitters.items():  # trace once (any batch size reuses it)
            fitter.fit_batch(faces.images[:1], faces.masks[:1], points[k][:1], start[:1])
        for size in batch_sizes:
            result = fitters[5].fit_batch(faces.images[:size], faces.masks[:size], faces.landmarks[:size],
                                          start[:size])
            per_face = result.seconds / size
            print(f"{name:<8}{model.num_vertices:>7}{crop:>6}{size:>7}{per_face:>9.3f}{photo / per_face:>13.1f}x")
        print(f"{name:<8}{model.num_vertices:>7}{crop:>6}{1:>7}{photo:>9.3f}   (per-photo fit from the mean face)")
        before = _errors(start, faces.coefficients)
        for k, fitter in fitters.items():
            after = _errors(fitter.fit_batch(faces.images, faces.masks, points[k], start).coefficients,
                            faces.coefficients)
            print(f"  {count} faces, {k} landmarks: angle RMSE {before[0]:.2f} -> {after[0]:.2f} deg, "
                  f"light RMSE {before[1]:.4f} -> {after[1]:.4f}")


def _evaluate(model, crop_uint8, mask, coefficients, refined):
    from face_gcn.fit import outputs  # pylint: disable=import-outside-toplevel
    _, alpha, views, _ = outputs.render_views(model, coefficients, {"coarse": refined.coarse_albedo,
                                                                  "refined": refined.albedo}, crop_uint8.shape[0])
    row = {}
    for method, (_, render) in views.items():
        composited = outputs.composite(render, alpha, crop_uint8 / 255.0)
        row[f"psnr_{method}"], row[f"ssim_{method}"] = outputs.face_metrics(crop_uint8, composited, mask, alpha)
    return row


def main(argv):
    del argv
    if FLAGS.mode == "batched":
        batched_benchmark()
    else:
        photo_benchmark()


def photo_benchmark():
    import skimage.data  # pylint: disable=import-outside-toplevel

    from face_gcn.data import alignment, detection, masks  # pylint: disable=import-outside-toplevel
    from face_gcn.fit import coarse_fit, refine  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured, demo  # pylint: disable=import-outside-toplevel
    from face_gcn.synthesis import dataset  # pylint: disable=import-outside-toplevel

    model = configured.load_demo() if FLAGS.photo_mesh == "demo" else demo.build_demo_model(
        spacing=demo.BFM_DENSITY_SPACING)
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

    print(f"{FLAGS.photo_mesh} mesh: {model.num_vertices} vertices; crop 224; refine steps {FLAGS.refine_steps}")
    print(f"{'image':<14}{'fit s':>8}{'refine s':>10}{'PSNR c':>9}{'PSNR r':>9}{'SSIM c':>9}{'SSIM r':>9}")
    for row in rows:
        print(f"{row['name']:<14}{row['fit_s']:>8.2f}{row['refine_s']:>10.2f}{row['psnr_coarse']:>9.2f}"
              f"{row['psnr_refined']:>9.2f}{row['ssim_coarse']:>9.3f}{row['ssim_refined']:>9.3f}")
    synthetic = [row for row in rows if row["name"].startswith("synthetic")]
    if synthetic:
        mean = {key: float(np.mean([row[key] for row in synthetic])) for key in synthetic[0] if key != "name"}
        print(f"{'synthetic mean':<14}{mean['fit_s']:>8.2f}{mean['refine_s']:>10.2f}{mean['psnr_coarse']:>9.2f}"
              f"{mean['psnr_refined']:>9.2f}{mean['ssim_coarse']:>9.3f}{mean['ssim_refined']:>9.3f}")

    # `face-gcn fit` fits its photos --batch_size at a time: the same fit of all cases as one batch
    stacked = [np.stack([case[k] for case in cases]) for k in (1, 2, 3)]
    fitter.fit_batch(*stacked)  # trace this batch size
    start = time.perf_counter()
    fitter.fit_batch(*stacked)
    per_photo = (time.perf_counter() - start) / len(cases)
    refine_mean = float(np.mean([row["refine_s"] for row in rows]))
    print(f"fit of all {len(cases)} as one batch: {per_photo:.2f} s per photo; with the mean refinement "
          f"({refine_mean:.2f} s): {per_photo + refine_mean:.2f} s per photo")


if __name__ == "__main__":
    app.run(main)
