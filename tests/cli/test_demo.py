"""`face-gcn demo`, run in a fresh process as a newcomer would (tiny sizes), and its outputs checked
against skimage on the written images."""

import json

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from face_gcn.mesh import io as mesh_io
from face_gcn.morphable import configured

KEYS = ("psnr_coarse", "psnr_refined", "ssim_coarse", "ssim_refined", "albedo_error_coarse",
        "albedo_error_refined", "n_images", "seconds")


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float64) / 255.0


def test_demo_trains_reconstructs_and_reports(tmp_path, run_main):
    workdir = tmp_path / "out"
    result = run_main("demo", "--workdir", str(workdir), "--num_train", "16", "--num_heldout", "3", "--image_size",
                      "64", "--coarse_steps", "3", "--texture_steps", "3", cache=tmp_path / "cache", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "report:" in result.stdout
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert set(KEYS) <= set(metrics) and metrics["n_images"] == 3
    assert all(np.isfinite(metrics[k]) for k in KEYS)
    page = (workdir / "report.html").read_text()
    assert "<svg" in page and "heldout/refined/heldout_0000.render.png" in page
    # The albedo read back from the photo through the true coefficients is close to the truth (the
    # synthetic detail and sensor noise remain); through a 3-step regressor it is not.
    assert metrics["albedo_error_photo_true_coefficients"] < min(0.06, metrics["albedo_error_photo"]), metrics
    assert "Albedo read back from the photo" in page

    # PSNR of the written images (8-bit) inside the written mask matches the metric to quantisation.
    psnrs = {"coarse": [], "refined": []}
    for index in range(3):
        name = f"heldout_{index:04d}"
        photo = read_rgb(workdir / "heldout" / f"{name}.input.png")
        mask = read_rgb(workdir / "heldout" / f"{name}.mask.png")[..., 0] > 0.5
        for tag in psnrs:
            render = read_rgb(workdir / "heldout" / tag / f"{name}.render.png")
            psnrs[tag].append(peak_signal_noise_ratio(photo[mask], render[mask], data_range=1.0))
    for tag in psnrs:
        assert abs(np.mean(psnrs[tag]) - metrics[f"psnr_{tag}"]) < 0.5, (tag, psnrs[tag], metrics)

    # L_id is on with dlib's descriptor; its identity cosines match the written (8-bit) images
    from face_gcn.evaluation import recognizers
    assert metrics["recognizer"] == "face_descriptor" and "identity cosine" in page
    recognizer = recognizers.FaceDescriptorRecognizer()
    for tag in ("coarse", "refined"):
        cosines = []
        for index in range(3):
            name = f"heldout_{index:04d}"
            pair = np.stack([read_rgb(workdir / "heldout" / f"{name}.input.png"),
                             read_rgb(workdir / "heldout" / tag / f"{name}.render.png")]) * 255.0
            a, b = recognizer.embed(pair).astype(np.float64)
            cosines.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        assert abs(np.mean(cosines) - metrics[f"identity_cosine_{tag}"]) < 0.01, (tag, cosines, metrics)
        assert np.isfinite(metrics[f"identity_emd_{tag}"])

    model = configured.load_demo()
    vertices, triangles, colors = mesh_io.read_mesh(str(workdir / "heldout" / "heldout_0000_refined.ply"))
    np.testing.assert_array_equal(triangles, model.triangles)
    assert vertices.shape == colors.shape == (model.num_vertices, 3)
    meta = json.loads((workdir / "texture" / "model" / "face_model.json").read_text())
    assert meta["image_size"] == 64 and meta["training"]["steps"] == 3 and meta["recognizer"] == "face_descriptor"


def test_demo_rejects_bad_sizes(tmp_path, run_main):
    result = run_main("demo", "--workdir", str(tmp_path), "--image_size", "100", timeout=120)
    assert result.returncode != 0 and "multiple of 32" in result.stderr + result.stdout
