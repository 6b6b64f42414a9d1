"""Run in a fresh process by test_distribute.py: two logical CPUs must exist before TF starts.

Trains one SGD step of a small mesh network under tf.distribute.MirroredStrategy (global batch 4
split over two replicas) and prints the largest difference to the same step computed on one
device with a plain GradientTape, as JSON.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from graph_test_meshes import bumpy_grid  # noqa: E402

from face_gcn.graph.adjacency import mesh_adjacency  # noqa: E402
from face_gcn.graph.laplacian import chebyshev_operator  # noqa: E402
from face_gcn.graph.layers import BiasActivation, ChebConv, ChebResBlock, MeshResample  # noqa: E402


def build():
    vertices, triangles = bumpy_grid(6)
    laplacian = chebyshev_operator(mesh_adjacency(triangles, len(vertices)), "exact")
    up = sp.csr_matrix(np.kron(np.eye(9), np.ones((4, 1))))  # 9 -> 36 vertices
    inputs = keras.Input((9, 2))
    x = MeshResample(up)(inputs)
    x = BiasActivation()(ChebConv(4, 3, laplacian)(x))
    x = ChebResBlock(3, 3, laplacian)(x)
    return keras.Model(inputs, x)


def main():
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 9, 2)).astype(np.float32)
    y = rng.normal(size=(4, 36, 3)).astype(np.float32)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    initial = model.get_weights()

    reference = build()
    reference.set_weights(initial)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(reference(x) - y))
    grads = tape.gradient(loss, reference.trainable_weights)
    expected = [w.numpy() - 0.1 * g.numpy() for w, g in zip(reference.trainable_weights, grads)]

    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    after = [w.numpy() for w in model.trainable_weights]
    difference = max(float(np.abs(a - e).max()) for a, e in zip(after, expected))
    moved = max(float(np.abs(a - w.numpy()).max()) for a, w in zip(after, reference.trainable_weights))
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "difference": difference, "moved": moved}))


if __name__ == "__main__":
    main()
