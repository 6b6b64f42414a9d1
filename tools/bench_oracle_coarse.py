"""The demo's texture stage on a perfect coarse stage: how good is the refined albedo when pose, shape
and light are right?

Trains the texture GCNs exactly as `face-gcn demo` does (experiments/demo.yaml) but with the synthetic
set's ground-truth coefficients as the coarse stage (nets.coarse_coefficients=ground_truth, no
augmentation), then scores the held-out faces with their ground-truth coefficients: the coarse row is
then the true 3DMM albedo (what the 3DMM basis can represent), the refined row the GCN texture.
Run once per synthetic detail amplitude (1 = the demo's data, re-used from the demo workdir).

Usage: python tools/bench_oracle_coarse.py --demo_dir demo_out --workdir oracle_out [--detail_scales 1,3]
"""

from __future__ import annotations

import json
import os
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("demo_dir", "demo_out", "a finished `face-gcn demo` workdir (its settings, data and regressor)")
flags.DEFINE_string("workdir", "oracle_out", "where the runs and any re-rendered data go")
flags.DEFINE_list("detail_scales", ["1", "3"], "synthetic detail amplitudes (1 = the demo's data)")
flags.DEFINE_integer("steps", 0, "texture steps (0: the demo's)")
flags.DEFINE_multi_string("set", [], "further texture config overrides, key=value (e.g. nets.refiner_skip_levels=4)")


def main(argv):
    del argv
    import numpy as np
    from face_gcn.demo import run
    from face_gcn.morphable import configured
    from face_gcn.reconstruction import model_dir
    from face_gcn.synthesis import dataset as synthetic
    from face_gcn.train import coarse, texture

    with open(os.path.join(FLAGS.demo_dir, "metrics.json"), encoding="utf-8") as handle:
        demo = json.load(handle)
    settings = run.DemoSettings(**{**demo["settings"], **({"texture_steps": FLAGS.steps} if FLAGS.steps else {})})
    regressor = os.path.join(FLAGS.demo_dir, "coarse", coarse.REGRESSOR_FILE)
    morphable = configured.load_demo()
    rows = []
    for scale in (float(value) for value in FLAGS.detail_scales):
        started = time.perf_counter()
        run_dir = os.path.join(FLAGS.workdir, f"detail_{scale:g}")
        if scale == 1.0:
            train_dir = os.path.join(FLAGS.demo_dir, "data", "train")
            heldout_dir = os.path.join(FLAGS.demo_dir, "data", "heldout")
        else:
            train_dir, heldout_dir = os.path.join(run_dir, "data", "train"), os.path.join(run_dir, "data", "heldout")
            config = synthetic.SyntheticConfig(image_size=settings.image_size, detail_scale=scale)
            for path, count, split in ((train_dir, settings.num_train, "train"),
                                       (heldout_dir, settings.num_heldout, "heldout")):
                if not os.path.isfile(os.path.join(path, synthetic.MANIFEST_FILE)):
                    synthetic.write_dataset(path, morphable, count, settings.seed, split=split, config=config)
        config = run.texture_config(train_dir, regressor, settings, extra=[
            "nets.coarse_coefficients=ground_truth", "data.augment=false", *FLAGS.set])
        texture.train_texture(config, os.path.join(run_dir, "texture"), log=lambda *args: None)
        nets = model_dir.load_model_dir(os.path.join(run_dir, "texture", texture.MODEL_SUBDIR))
        scores = run.evaluate_heldout(nets, heldout_dir, os.path.join(run_dir, "heldout"), keep_images=4,
                                      coarse_coefficients="ground_truth")
        means = {key: float(np.nanmean(values)) for key, values in scores.items() if key != "names"}
        rows.append((scale, means, time.perf_counter() - started))
        print(f"detail x{scale:g} done in {rows[-1][2]:.0f} s", flush=True)

    print(f"\ntexture stage on the ground-truth coarse stage ({settings.texture_steps} steps, "
          f"{settings.num_heldout} held-out faces, {settings.image_size} px{''.join(', ' + s for s in FLAGS.set)})")
    print(f"{'detail':>7} {'albedo: 3DMM':>13} {'refined':>8} {'read-back':>10} "
          f"{'PSNR: 3DMM':>11} {'refined':>8} {'SSIM: 3DMM':>11} {'refined':>8}")
    for scale, m, _ in rows:
        print(f"{'x%g' % scale:>7} {m['albedo_error_coarse']:>13.4f} {m['albedo_error_refined']:>8.4f} "
              f"{m['albedo_error_photo']:>10.4f} {m['psnr_coarse']:>11.2f} {m['psnr_refined']:>8.2f} "
              f"{m['ssim_coarse']:>11.3f} {m['ssim_refined']:>8.3f}")


if __name__ == "__main__":
    app.run(main)
