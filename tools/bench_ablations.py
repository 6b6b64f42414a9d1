"""Table 2 on the demo's synthetic set: each ablation row trained and scored like `face-gcn demo`.

Reuses a finished demo workdir (its synthetic data, coarse regressor and coarse cache), trains the
texture stage once per experiments/ablation_*.yaml row (the row's own keys on top of the demo's
texture config) and prints masked PSNR / SSIM of render vs input and albedo error vs ground truth
on the held-out faces. The first two rows are the coarse 3DMM texture through the regressor alone
("coarse, no fit") and through the demo's coarse stage (regressor + fit). Three more rows vary
the full method: "authors" resets the demo's named improvements and its as-measured optimiser and
mask settings (face_gcn.demo.run.IMPROVEMENT_KEYS, AS_MEASURED_KEYS) to the authors' values,
"authors_objective" also trains their code's objective (loss.objective=authors), "colors_combiner"
gives the Combiner the authors' input (nets.combiner_input=colors) on top of the demo's.

Usage: python tools/bench_ablations.py --demo_dir demo_out [--steps 300] [--uv_resolution 64]
         [--rows full,authors]   (a subset of rows by name)
"""

from __future__ import annotations

import dataclasses
import glob
import os
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("demo_dir", "demo_out", "a finished `face-gcn demo` workdir")
flags.DEFINE_integer("steps", 300, "texture steps per row")
flags.DEFINE_integer("uv_resolution", 64, "UV map side for the UV-CNN row (the paper's 256 is slow on a CPU)")
flags.DEFINE_list("rows", [], "Only these rows, by name: pix, pix_id, adv, full, fc_refiner, uv_cnn_refiner, "
                  "authors, authors_objective, colors_combiner; empty: all")

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "experiments")


def _leaf_overrides(mapping: dict, prefix: str = "") -> list[str]:
    items = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            items += _leaf_overrides(value, f"{prefix}{key}.")
        else:
            items.append(f"{prefix}{key}={value}")
    return items


def main(argv):
    del argv
    import numpy as np
    from face_gcn.demo import run
    from face_gcn.reconstruction import model_dir
    from face_gcn.train import coarse, config as config_lib, texture

    data = os.path.join(FLAGS.demo_dir, "data", "train_coarse")  # the demo's coarse cache
    heldout = os.path.join(FLAGS.demo_dir, "data", "heldout")
    regressor = os.path.join(FLAGS.demo_dir, "coarse", coarse.REGRESSOR_FILE)
    if not os.path.isfile(regressor) or not os.path.isdir(data):
        raise SystemExit(f"{FLAGS.demo_dir} is not a finished demo workdir (no {regressor} or {data})")
    rows = []
    full = _leaf_overrides(config_lib.read_yaml(os.path.join(EXPERIMENTS, "ablation_full.yaml"))[-1][1])
    authors = [f"{key}={texture.SCHEMA[key.split('.')[0]][key.split('.')[1]]}"
               for key in run.IMPROVEMENT_KEYS + run.AS_MEASURED_KEYS]
    table = [(os.path.basename(path)[len("ablation_"):-len(".yaml")],
              _leaf_overrides(config_lib.read_yaml(path)[-1][1]))
             for path in sorted(glob.glob(os.path.join(EXPERIMENTS, "ablation_*.yaml")))]
    table += [("authors", full + authors), ("authors_objective", full + authors + ["loss.objective=authors"]),
              ("colors_combiner", full + ["nets.combiner_input=colors"])]
    for name, keys in table:
        if FLAGS.rows and name not in FLAGS.rows:
            continue
        config = run.texture_config(data, regressor, extra=keys + [
            f"train.steps={FLAGS.steps}", f"nets.uv_resolution={FLAGS.uv_resolution}"])
        workdir = os.path.join(FLAGS.demo_dir, "ablations", name)
        started = time.perf_counter()
        summary = texture.train_texture(config, workdir, log=lambda *_: None)
        nets = model_dir.load_model_dir(os.path.join(workdir, texture.MODEL_SUBDIR))
        scores = run.evaluate_heldout(nets, heldout, os.path.join(workdir, "heldout"), keep_images=0)
        rows.append((name, scores, summary["steps_per_second"], time.perf_counter() - started))
        if not rows[:-1]:
            unfitted = run.evaluate_heldout(dataclasses.replace(nets, fit_steps=0), heldout,
                                            os.path.join(workdir, "heldout_no_fit"), keep_images=0)
            for position, (label, source) in enumerate((("coarse, no fit", unfitted), ("coarse (3DMM)", scores))):
                rows.insert(position, (label, {k.replace("coarse", "refined"): v for k, v in source.items()
                                               if k.endswith("coarse")}, float("nan"), 0.0))
    print(f"{'row':<16}{'PSNR dB':>9}{'SSIM':>8}{'albedo err':>12}{'id cosine':>11}{'steps/s':>9}{'seconds':>9}")
    for name, scores, rate, seconds in rows:
        # identity cosine of input vs render (dlib's descriptor; nan for a row without a recognizer)
        cosine = np.nanmean(scores["identity_cosine_refined"]) if "identity_cosine_refined" in scores else np.nan
        print(f"{name:<16}{np.nanmean(scores['psnr_refined']):>9.2f}{np.nanmean(scores['ssim_refined']):>8.4f}"
              f"{np.nanmean(scores['albedo_error_refined']):>12.4f}{cosine:>11.4f}{rate:>9.2f}{seconds:>9.0f}")


if __name__ == "__main__":
    app.run(main)
