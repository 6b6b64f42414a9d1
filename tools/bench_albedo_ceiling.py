"""How good can a refined albedo be, given the coarse stage? The ceiling behind the demo's albedo error.

The texture stage fits the photo through the coarse stage's geometry and light, so its albedo tends
to T_p / shading: the photo's colour at each vertex divided by the coarse SH shading. This script
scores that quotient against the ground-truth albedo, next to the coarse 3DMM albedo, on the demo's
held-out faces, with the coarse coefficients taken from

  regressor            the demo's trained coarse regressor (what the texture stage sees),
  true pose+shape      ground-truth identity, expression, pose; the regressor's light,
  true light           the regressor's geometry; ground-truth SH light,
  true coefficients    every coefficient from the ground truth (the best any coarse stage can do),

for each synthetic detail amplitude asked for (held-out sets re-rendered with the demo's seed).
Errors: mean Euclidean RGB distance ([0, 1] units) over front vertices visible in the photo.
Also prints the regressor's pose error and the coarse render's masked PSNR.

Usage: python tools/bench_albedo_ceiling.py --demo_dir demo_out [--detail_scales 1,3]
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("demo_dir", "demo_out", "a finished `face-gcn demo` workdir")
flags.DEFINE_list("detail_scales", ["1", "3"], "synthetic detail amplitudes to score (1 = the demo's)")
flags.DEFINE_integer("batch_size", 32, "held-out faces per batch")


def score(morphable, coefficients, images, masks, truth_albedo):
    """(coarse 3DMM albedo error, T_p / shading error, masked PSNR of the coarse render)."""
    import numpy as np
    from face_gcn.evaluation import albedo as albedo_lib, metrics

    photo = images / 255.0
    read_back = albedo_lib.photo_albedo(morphable, coefficients, photo, masks)
    render = read_back.render
    visible = read_back.visible & np.asarray(morphable.front_mask, bool)[None]
    coarse = np.clip(render.albedo.numpy(), 0.0, 1.0)
    pixel_mask = (masks > 0.5) & (render.alpha.numpy() > 0.5)
    psnr = metrics.masked_psnr(photo, np.clip(render.image.numpy(), 0.0, 1.0), pixel_mask)
    # Pooled over every visible vertex of the batch (not a mean of per-image means).
    pooled = lambda albedo: float(albedo_lib.albedo_error(albedo.reshape(1, -1, 3), truth_albedo.reshape(1, -1, 3),
                                                          visible.reshape(1, -1))[0])
    return pooled(coarse), pooled(read_back.quotient), float(np.nanmean(psnr))


def main(argv):
    del argv
    import numpy as np
    from face_gcn.data import pipeline
    from face_gcn.morphable import coefficients as coeff_lib, configured
    from face_gcn.nets import regressor as regressor_lib
    from face_gcn.synthesis import dataset as synthetic
    from face_gcn.train import coarse

    with open(os.path.join(FLAGS.demo_dir, "metrics.json"), encoding="utf-8") as handle:
        demo = json.load(handle)
    settings = demo["settings"]
    size, seed, count = settings["image_size"], settings["seed"], settings["num_heldout"]
    morphable = configured.load_demo()
    regressor = regressor_lib.load_regressor(os.path.join(FLAGS.demo_dir, "coarse", coarse.REGRESSOR_FILE))
    print(f"demo run: albedo error coarse {demo['albedo_error_coarse']:.4f}, refined "
          f"{demo['albedo_error_refined']:.4f} ({demo['n_images']} held-out faces, {size} px)")
    geometry = [coeff_lib.BLOCK_SLICES[name] for name in ("id", "exp", "angles", "translation")]
    light = coeff_lib.BLOCK_SLICES["gamma"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for scale in (float(value) for value in FLAGS.detail_scales):
            heldout = os.path.join(scratch, f"detail_{scale:g}")
            synthetic.write_dataset(heldout, morphable, count, seed, split="heldout",
                                    config=synthetic.SyntheticConfig(image_size=size, detail_scale=scale))
            truth = synthetic.load_ground_truth(heldout)
            rows, predicted_all = {}, []
            offset = 0
            for batch in pipeline.make_dataset(heldout, size, FLAGS.batch_size, training=False):
                images, masks = batch["image"].numpy(), batch["mask"].numpy()[..., 0]
                rows_slice = slice(offset, offset + len(images))
                offset += len(images)
                predicted = regressor_lib.regress(regressor, batch["image"]).coefficients.numpy()
                true = truth["coefficients"][rows_slice]
                predicted_all.append(predicted)
                true_geometry, true_light = predicted.copy(), predicted.copy()
                for block in geometry:
                    true_geometry[:, block] = true[:, block]
                true_light[:, light] = true[:, light]
                for name, coefficients in (("regressor", predicted), ("true pose+shape", true_geometry),
                                           ("true light", true_light), ("true coefficients", true)):
                    rows.setdefault(name, []).append(
                        (len(images), *score(morphable, coefficients, images, masks, truth["albedo"][rows_slice])))
            predicted_all = np.concatenate(predicted_all)
            angles = coeff_lib.BLOCK_SLICES["angles"]
            angle_error = np.degrees(np.sqrt(np.mean((predicted_all[:, angles]
                                                      - truth["coefficients"][:, angles]) ** 2, axis=0)))
            print(f"\ndetail x{scale:g}: regressor angle RMSE (pitch, yaw, roll) "
                  f"{', '.join(f'{a:.2f}' for a in angle_error)} degrees")
            print(f"{'coarse coefficients':<20} {'3DMM albedo':>12} {'T_p/shading':>12} {'coarse PSNR':>12}")
            for name, parts in rows.items():
                weights = np.array([p[0] for p in parts], np.float64)
                values = np.array([p[1:] for p in parts], np.float64)
                mean = (weights[:, None] * values).sum(0) / weights.sum()
                print(f"{name:<20} {mean[0]:>12.4f} {mean[1]:>12.4f} {mean[2]:>12.2f}")
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    app.run(main)
