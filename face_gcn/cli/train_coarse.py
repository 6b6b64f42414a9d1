"""face-gcn train-coarse: train the coefficient regressor with Deng's coarse losses.

  face-gcn train-coarse --config experiments/coarse_demo.yaml --workdir runs/coarse

Writes WORKDIR/checkpoints, WORKDIR/events (TensorBoard), WORKDIR/regressor.keras (the trained
regressor, for later stages: face_gcn.nets.regressor.load_regressor) and WORKDIR/train_coarse.json
(steps, steps/s, last losses). An existing run in WORKDIR resumes.
"""

from absl import flags, logging

from face_gcn.train import config as config_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML experiment config (e.g. experiments/coarse_demo.yaml).")
flags.DEFINE_string("workdir", None, "Checkpoints and TensorBoard events go here; an existing run resumes.")
flags.DEFINE_multi_string("set", [], "Override a config key: --set train.steps=100 (repeatable; last wins).")


def main(argv):
    del argv
    from face_gcn.train import coarse  # pulls TensorFlow; only when the command runs
    if not FLAGS.workdir:
        raise SystemExit("error: --workdir is required")
    from face_gcn import output_folder  # pylint: disable=import-outside-toplevel
    try:
        config = coarse.build_config(FLAGS.config, FLAGS.set)
        with output_folder.OutputFolder(FLAGS.workdir, "face-gcn train-coarse", flag="--workdir"):  # one run per workdir
            result = coarse.train_coarse(config, FLAGS.workdir, log=logging.info)
    except (config_lib.ConfigError, output_folder.OutputFolderError, ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    print("final losses: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(result["losses"].items())))
    rate = result["steps_per_second"]
    print(f"steps: {result['steps']}, steps/s (first step excluded): "
          f"{'n/a' if rate is None else f'{rate:.3g}'}")
    print(f"regressor: {result['regressor']}")
