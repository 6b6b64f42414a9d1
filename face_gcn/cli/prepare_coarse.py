"""face-gcn prepare-coarse: run the fixed coarse stage once per training face (a coarse cache).

  face-gcn prepare-coarse --config experiments/demo.yaml --data DATA/train --out DATA/train_coarse \
    --set nets.regressor=COARSE_RUN/regressor.keras

The config's regressor (+ FaceNet) and its regress-then-fit coarse stage (coarse.fit_steps,
coarse.landmarks) are applied to every record of --data; --out receives the same records plus the
coarse coefficients and the image embedding, and coarse_cache.json. Train on it with
`face-gcn train --config SAME.yaml --data OUT --set data.augment=false`: the CNNs and the fit then
never run per step.
"""

from absl import flags, logging

from face_gcn.train import config as config_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "YAML experiment config of the texture training (e.g. experiments/demo.yaml).")
flags.DEFINE_string("data", None, "Training TFRecords (folder or glob), as prepare-data or make-synthetic write them.")
flags.DEFINE_string("out", None, "Folder for the coarse cache (its own folder, not --data).")
flags.DEFINE_integer("batch_size", 16, "Faces fitted together.")
flags.DEFINE_multi_string("set", [], "Override a config key: --set coarse.fit_steps=20 (repeatable; last wins).")
flags.DEFINE_boolean("progress", True, "Show a progress bar.")


def main(argv):
    del argv
    if not FLAGS.data or not FLAGS.out:
        raise SystemExit("error: --data and --out are required")
    if FLAGS.batch_size < 1:
        raise SystemExit("error: --batch_size must be >= 1")
    from face_gcn.train import texture  # pulls TensorFlow; only when the command runs
    try:
        config = texture.build_config(FLAGS.config, FLAGS.set)
        manifest = texture.prepare_coarse(config, FLAGS.data, FLAGS.out, FLAGS.batch_size, FLAGS.progress,
                                          log=logging.info)
    except (config_lib.ConfigError, ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"prepare-coarse: {manifest['num_images']} faces, fit_steps={manifest['fit_steps']}, "
          f"{manifest['embedding_size']}-d embeddings, {manifest['seconds']:.1f} s; cache in {FLAGS.out}")
