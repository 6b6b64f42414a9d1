"""The Bazel build of the rasterizer op gives the same outputs as the setup.py build.

Each library is loaded in its own process (two libraries registering the same op cannot share
one), runs the forward and gradient ops on one fixed scene, and saves the results as .npz.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETUP_LIBRARY = os.path.join(ROOT, "face_gcn", "render", "_rasterizer_ops.so")
TARGET = "//face_gcn/render/kernels:rasterizer_ops.so"

_WORKER = r"""
import sys
import numpy as np
import tensorflow as tf

library, output = sys.argv[1], sys.argv[2]
ops = tf.load_op_library(library)
rng = np.random.default_rng(7)
vertices = np.concatenate([rng.uniform(-0.9, 0.9, (2, 30, 2)), rng.uniform(-0.5, 0.5, (2, 30, 1)),
                           rng.uniform(0.8, 1.2, (2, 30, 1))], axis=-1).astype(np.float32)
vertices[..., :2] *= vertices[..., 3:]
triangles = rng.integers(0, 30, (40, 3)).astype(np.int32)
barycentrics, ids, z = ops.face_gcn_rasterize_triangles(vertices, triangles, image_width=48,
                                                        image_height=40)
upstream = rng.normal(size=barycentrics.shape).astype(np.float32)
gradient = ops.face_gcn_rasterize_triangles_grad(vertices, triangles, barycentrics, ids, upstream,
                                                 image_width=48, image_height=40)
np.savez(output, barycentrics=barycentrics.numpy(), ids=ids.numpy(), z=z.numpy(),
         gradient=gradient.numpy())
"""


def _run_worker(library, output):
    result = subprocess.run([sys.executable, "-c", _WORKER, library, str(output)],
                            capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(output, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bazel") is None,
                    reason="bazel is not installed (tools/install_ci_deps.sh installs it)")
@pytest.mark.skipif(not os.path.isfile(SETUP_LIBRARY),
                    reason="the setup.py-built op is missing (pip install --no-build-isolation -e .)")
def test_bazel_and_setup_py_builds_agree(tmp_path):
    env = dict(os.environ, FACE_GCN_PYTHON=sys.executable)
    try:
        build = subprocess.run(["bazel", "build", TARGET], cwd=ROOT, capture_output=True,
                               text=True, timeout=900, env=env)
        assert build.returncode == 0, build.stderr[-5000:]
        bazel_bin = subprocess.run(["bazel", "info", "bazel-bin"], cwd=ROOT, capture_output=True,
                                   text=True, timeout=120, env=env).stdout.strip()
    finally:
        subprocess.run(["bazel", "shutdown"], cwd=ROOT, capture_output=True, timeout=120)
    bazel_library = os.path.join(bazel_bin, "face_gcn", "render", "kernels", "rasterizer_ops.so")
    assert os.path.isfile(bazel_library)
    from_bazel = _run_worker(bazel_library, tmp_path / "bazel.npz")
    from_setup = _run_worker(SETUP_LIBRARY, tmp_path / "setup.npz")
    assert (from_setup["ids"] >= 0).mean() > 0.2  # the scene covers the image
    np.testing.assert_array_equal(from_bazel["ids"], from_setup["ids"])
    for key in ("barycentrics", "z", "gradient"):
        np.testing.assert_allclose(from_bazel[key], from_setup[key], rtol=1e-6, atol=1e-6)
