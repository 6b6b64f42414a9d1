"""Training speed of the paper's texture stage (face-gcn train) on this machine.

Two configurations, one table:
  demo   experiments/demo.yaml as `face-gcn demo` trains it: 96 px, batch 8, compact regressor,
         3,643-vertex demo model, 1 critic update per step;
  paper  experiments/celeba_224.yaml: 224 px, batch 4, ResNet-50 regressor, paper GCN widths,
         5 critic updates per step, on a BFM-sized mesh (the demo generator at 35,899 vertices):
         as in the first epoch (s1 = 0: the vertex terms alone, the critic idle), and as in every
         later one ("paper s1>0": loss.schedule=constant turns every term and the critic on).
Each runs twice: on the plain synthetic records (the regressor, FaceNet when configured, and the
coarse fit when coarse.fit_steps > 0 run inside every step) and on a coarse cache of them
(face-gcn prepare-coarse: the step starts from stored coefficients and embeddings).
Steps/s exclude the first (tracing) step; images/s count generator and critic batches; the last
column projects one CelebA epoch (202,599 images through the generator) at that rate.

Usage: python tools/bench_train.py [--steps 6] [--paper_steps 3] [--skip_paper | --skip_demo]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 8, "timed steps of the demo configuration (+1 traced)")
flags.DEFINE_integer("paper_steps", 3, "timed steps of the 224 / 35.6k-vertex configuration (+1 traced)")
flags.DEFINE_bool("skip_paper", False, "only the demo configuration")
flags.DEFINE_bool("skip_demo", False, "only the paper configuration")
flags.DEFINE_float("paper_spacing", None, "demo-generator edge length for the BFM-sized mesh "
                   "(default: demo.BFM_DENSITY_SPACING, 35,899 vertices)")

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "experiments")
_CACHE_SECONDS = {}  # seconds per image of building each config's coarse cache, built once per run
CELEBA_IMAGES = 202_599  # one epoch = this many images through the generator (loss.epoch_unit: generator steps)


def _run(name, yaml, morphable_path, size, steps, scratch, cached: bool, extra=()):
    from face_gcn.morphable import configured
    from face_gcn.synthesis import dataset as synthetic
    from face_gcn.train import texture

    model = configured.load_configured(morphable_path) if morphable_path else configured.load_demo()
    source = f"{os.path.splitext(yaml)[0]}_{size}"  # rows of one config share its records and cache
    data = os.path.join(scratch, f"{source}_data")
    if not os.path.isdir(data):
        synthetic.write_dataset(data, model, 32, seed=0, config=synthetic.SyntheticConfig(image_size=size))
    overrides = [f"data.train={data}", f"data.crop_size={size}", f"train.steps={steps + 1}",
                 f"model.path={morphable_path or ''}", "train.checkpoint_every=100000",
                 "train.summary_every=100000", "data.shuffle_buffer=16", "data.augment=false", *extra]
    config = texture.build_config(os.path.join(EXPERIMENTS, yaml), overrides)
    cache_seconds = 0.0
    if cached:
        cache = os.path.join(scratch, f"{source}_cache")
        if source not in _CACHE_SECONDS:
            manifest = texture.prepare_coarse(config, data, cache, batch_size=16, log=lambda *_: None)
            _CACHE_SECONDS[source] = manifest["seconds"] / manifest["num_images"]
        cache_seconds = _CACHE_SECONDS[source]
        config = texture.build_config(os.path.join(EXPERIMENTS, yaml),
                                         overrides + [f"data.train={cache}"])
    started = time.perf_counter()
    workdir = os.path.join(scratch, f"run{len(os.listdir(scratch))}")
    run, dataset = texture.setup_texture_training(config, workdir, log=lambda *_: None)
    setup = time.perf_counter() - started
    run.loop.run(dataset, steps + 1, log=lambda *_: None)
    batch = config["data"]["batch_size"]
    per_step = batch * run.loop.batches_per_step
    return {"config": name + (" cached" if cached else ""), "cache_s": cache_seconds, "image": size,
            "vertices": run.nets.morphable.num_vertices, "batch": batch,
            "critic": config["train"]["critic_steps"], "setup_s": setup, "steps_s": run.loop.steps_per_second,
            "images_s": run.loop.steps_per_second * per_step}


def main(argv):
    del argv
    from face_gcn.morphable import demo, model as model_lib

    scratch = tempfile.mkdtemp(prefix="bench_train_")
    rows = []
    try:
        for cached in (False, True) if not FLAGS.skip_demo else ():
            rows.append(_run("demo", "demo.yaml", None, 96, FLAGS.steps, scratch, cached))
        if not FLAGS.skip_paper:
            path = os.path.join(scratch, "bfm_sized.npz")
            model_lib.save(demo.build_demo_model(0, spacing=FLAGS.paper_spacing or demo.BFM_DENSITY_SPACING), path)
            for cached in (False, True):
                rows.append(_run("paper", "celeba_224.yaml", path, 224, FLAGS.paper_steps, scratch, cached))
            # after the first epoch every term is on (s1 > 0: L_pix, L_id, the critic's updates)
            for cached in (False, True):
                rows.append(_run("paper s1>0", "celeba_224.yaml", path, 224, FLAGS.paper_steps, scratch, cached,
                                 extra=["loss.schedule=constant"]))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'config':<18}{'image':>6}{'vertices':>10}{'batch':>6}{'critic':>7}{'cache s/img':>12}{'setup s':>9}"
          f"{'steps/s':>9}{'img/s':>8}{'CelebA epoch h':>16}")
    for r in rows:
        epoch_hours = CELEBA_IMAGES / r["batch"] / r["steps_s"] / 3600.0
        print(f"{r['config']:<18}{r['image']:>6}{r['vertices']:>10}{r['batch']:>6}{r['critic']:>7}{r['cache_s']:>12.3f}"
              f"{r['setup_s']:>9.1f}{r['steps_s']:>9.3f}{r['images_s']:>8.2f}{epoch_hours:>16.1f}")
    print(f"CelebA epoch: {CELEBA_IMAGES:,} images through the generator at this rate (the cached rows leave out "
          "building the cache, cache s/img per image once)")


if __name__ == "__main__":
    app.run(main)
