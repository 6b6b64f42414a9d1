"""`face-gcn demo --workdir DIR`: the main job on the built-in demo model, with no downloads.

Renders a synthetic training set from the generated morphable model, trains the coarse stage and
the paper's texture GCNs on the CPU, reconstructs held-out faces and writes DIR/report.html and
DIR/metrics.json (coarse vs refined: masked PSNR and SSIM of render vs input, albedo error vs
ground truth). About 10 minutes on 2 CPU cores with the defaults; see face_gcn/demo/run.py.
Re-running with the same DIR reuses the data and resumes the training runs.
"""

from __future__ import annotations

from absl import flags, logging

from face_gcn.demo import defaults

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "demo_out", "Directory for the data, runs, model, report.html and metrics.json.")
flags.DEFINE_integer("num_train", defaults.NUM_TRAIN, "Synthetic training faces.", lower_bound=1, upper_bound=100000)
flags.DEFINE_integer("num_heldout", defaults.NUM_HELDOUT, "Held-out faces scored in the report.", lower_bound=1,
                     upper_bound=10000)
flags.DEFINE_integer("image_size", defaults.IMAGE_SIZE, "Crop size (a multiple of 32).", lower_bound=64,
                     upper_bound=512)
flags.DEFINE_integer("coarse_steps", defaults.COARSE_STEPS, "Coarse-stage training steps.", lower_bound=1)
flags.DEFINE_integer("texture_steps", defaults.TEXTURE_STEPS, "Texture-stage (GCN) training steps.",
                     lower_bound=1)
flags.DEFINE_integer("fit_steps", defaults.FIT_STEPS, "Rendered steps of the coarse fit after the regressor "
                     "(0: the regressor alone).", lower_bound=0)
flags.DEFINE_float("detail_scale", defaults.DETAIL_SCALE, "Amplitude of the synthetic albedo detail (1: the "
                   "sensor-noise level).", lower_bound=0.0)
flags.DEFINE_integer("seed", 0, "Seed of the synthetic faces and the training order.")


def main(argv):
    del argv
    from face_gcn.demo import run  # pylint: disable=import-outside-toplevel  (TensorFlow: only when running)
    logging.set_verbosity(logging.INFO)
    try:
        settings = run.DemoSettings(num_train=FLAGS.num_train, num_heldout=FLAGS.num_heldout,
                                    image_size=FLAGS.image_size, coarse_steps=FLAGS.coarse_steps,
                                    texture_steps=FLAGS.texture_steps, fit_steps=FLAGS.fit_steps,
                                    detail_scale=FLAGS.detail_scale, seed=FLAGS.seed)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    from face_gcn import output_folder  # pylint: disable=import-outside-toplevel
    try:
        with output_folder.OutputFolder(FLAGS.workdir, "face-gcn demo", flag="--workdir"):  # one run per workdir
            result = run.run_demo(FLAGS.workdir, settings, log=logging.info)
    except output_folder.OutputFolderError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"demo finished in {result['seconds']:.0f} s on {result['n_images']} held-out faces:")
    for key in ("psnr", "ssim", "albedo_error"):
        print(f"  {key:<13} coarse {result[key + '_coarse']:.4g}   refined {result[key + '_refined']:.4g}")
    print(f"report: {FLAGS.workdir}/report.html   numbers: {FLAGS.workdir}/metrics.json")
