"""One worker of the MultiWorkerMirroredStrategy test (run by test_multiworker.py with TF_CONFIG set)."""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from face_gcn.train.loop import TrainLoop, select_strategy


def dataset():
    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    data = tf.data.Dataset.from_tensor_slices({"x": x, "y": 3.0 * x - 0.5}).batch(8).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


def main(workdir, out):
    strategy = select_strategy()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        layer = keras.layers.Dense(1)
        layer.build((None, 1))
        optimizer = keras.optimizers.SGD(0.1)

    def step_fn(batch):
        return {"total": tf.reduce_mean(tf.square(layer(batch["x"]) - batch["y"]))}

    loop = TrainLoop(step_fn, layer.trainable_variables, optimizer, workdir, strategy=strategy, summary_every=100)
    loop.run(dataset(), 4, log=lambda *_: None)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({"multi_worker": isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy), "replicas": strategy.num_replicas_in_sync,
                   "variables": [v.numpy().ravel().tolist() for v in layer.trainable_variables]}, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
