"""TrainLoop under MultiWorkerMirroredStrategy: two worker processes on this machine (TF_CONFIG)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

WORKER = os.path.join(os.path.dirname(__file__), "multiworker_worker.py")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def reference_sgd_on_global_batches(steps=4, lr=0.1):
    """Independent float64 reference: single-device SGD on mean squared error over the global batches
    (the dataset's batches of 8, which the two workers split 4 + 4)."""
    import keras
    x = np.linspace(-1, 1, 64)[:, None]
    y = 3.0 * x - 0.5
    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(1)
    layer.build((None, 1))
    w, b = (v.numpy().astype(np.float64) for v in layer.trainable_variables)
    for step in range(steps):
        rows = slice(8 * step % 64, 8 * step % 64 + 8)
        error = x[rows] @ w + b - y[rows]
        w = w - lr * 2 * x[rows].T @ error / 8
        b = b - lr * 2 * error.mean(axis=0)
    return w.ravel(), b.ravel()


def test_two_workers_train_in_lockstep(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen([sys.executable, WORKER, str(tmp_path / f"w{index}"), str(tmp_path / f"{index}.json")],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    results = [json.load(open(tmp_path / f"{i}.json")) for i in range(2)]
    assert all(r["multi_worker"] and r["replicas"] == 2 for r in results), results
    w, b = reference_sgd_on_global_batches()
    for result in results:  # both workers hold the same variables, equal to one device on the global batch
        np.testing.assert_allclose(result["variables"][0], w, rtol=1e-5)
        np.testing.assert_allclose(result["variables"][1], b, rtol=1e-5)
