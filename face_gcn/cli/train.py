"""face-gcn train: the paper's method, texture GCNs on a fixed coarse regressor (Eq. 4-8).

  face-gcn train --config experiments/celeba_224.yaml --workdir runs/celeba \
      --set nets.regressor=runs/coarse/regressor.keras --set train.steps=200000

Re-running with the same --workdir resumes from the last checkpoint. The trained model directory
is written to WORKDIR/model (read by reconstruct, export, evaluate).
"""

from absl import flags, logging

from face_gcn.train import config as config_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML experiment config (experiments/*.yaml).")
flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard events and the model go here; an existing run resumes.")
flags.DEFINE_multi_string("set", [], "Override a config key: --set train.steps=100 (repeatable; last wins).")
flags.DEFINE_integer("steps", None, "Shortcut for --set train.steps=N.")
flags.DEFINE_integer("batch_size", None, "Shortcut for --set data.batch_size=N (global batch).")
flags.DEFINE_string("data", None, "Shortcut for --set data.train=PATH.")


def main(argv):
    del argv
    from face_gcn.train import texture  # pulls TensorFlow; only when the command runs
    if not FLAGS.workdir:
        raise SystemExit("error: --workdir is required")
    overrides = list(FLAGS.set)
    for key, value in (("train.steps", FLAGS.steps), ("data.batch_size", FLAGS.batch_size),
                       ("data.train", FLAGS.data)):
        if value is not None:
            overrides.append(f"{key}={value}")
    from face_gcn import output_folder  # pylint: disable=import-outside-toplevel
    try:
        config = texture.build_config(FLAGS.config, overrides)
        with output_folder.OutputFolder(FLAGS.workdir, "face-gcn train", flag="--workdir"):  # one run per workdir
            summary = texture.train_texture(config, FLAGS.workdir, log=logging.info)
    except (config_lib.ConfigError, output_folder.OutputFolderError, ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    losses = summary["losses"]
    print(f"trained {summary['steps']} steps ({summary['steps_per_second']:.3g} steps/s); final losses: "
          + ", ".join(f"{k}={v:.4g}" for k, v in sorted(losses.items())))
