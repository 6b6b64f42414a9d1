"""`face-gcn demo`, run in a fresh process as a newcomer would."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np

from face_gcn.mesh import io as mesh_io
from face_gcn.morphable import configured


def test_demo_writes_meshes_renders_and_parameters(tmp_path):
    workdir = tmp_path / "out"
    env = dict(os.environ, FACE_GCN_CACHE=str(tmp_path / "cache"))
    result = subprocess.run(
        [sys.executable, "-m", "face_gcn.cli.main", "demo", "--workdir", str(workdir),
         "--num_faces", "2", "--image_size", "96", "--seed", "5"],
        capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert len(summary["faces"]) == 2
    model = configured.load_demo()
    for face in summary["faces"]:
        assert 0.1 < face["coverage"] < 0.9
        image = cv2.imread(str(workdir / face["image"]))
        assert image.shape == (96, 96, 3) and image.max() > 50
        vertices, triangles, colors = mesh_io.read_mesh(str(workdir / face["meshes"][0]))
        np.testing.assert_array_equal(triangles, model.triangles)
        assert vertices.shape == (model.num_vertices, 3) and colors.shape == vertices.shape
        ply_vertices, _, _ = mesh_io.read_mesh(str(workdir / face["meshes"][1]))
        np.testing.assert_allclose(ply_vertices, vertices, atol=1e-6)
        record = json.loads((workdir / face["image"].replace(".png", ".json")).read_text())
        assert len(record["coefficients"]) == 257
        assert np.array(record["landmarks_68_px"]).shape == (68, 2)
        assert record["camera"]["focal_px"] == 1015.0 * 96 / 224
