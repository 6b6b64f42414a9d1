"""`face-gcn reconstruct` as a user runs it: photos in batches through a saved model; a photo without
a face and an unreadable file are reported, the rest written in the layout fit and evaluate use."""

import json
import os

import cv2
import numpy as np
import pytest
import skimage.data

from face_gcn.losses import coarse as coarse_losses
from face_gcn.reconstruction import forward

SIZE = 64


@pytest.fixture(scope="module")
def model(tiny_model_dir, tiny_nets):
    return tiny_model_dir[1], tiny_nets


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_folder_end_to_end(model, tmp_path, run_subcommand):
    model_path, nets = model
    photos = tmp_path / "photos"
    photos.mkdir()
    face = cv2.resize(skimage.data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photos / "astronaut.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "mirrored.png"), cv2.cvtColor(face[:, ::-1], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "grey.png"), np.full((128, 160, 3), 128, np.uint8))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    out = tmp_path / "out"
    result = run_subcommand("reconstruct", str(photos), "--model", model_path, "--out", str(out), "--batch_size", "2",
                            "--noprogress", "--mask_landmarks", "68", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 reconstructed, 2 skipped" in result.stdout and "no_face 1" in result.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert [item["name"] for item in summary["reconstructed"]] == ["astronaut", "mirrored"]
    failed = {os.path.basename(item["source"]): item["reason"] for item in summary["failed"]}
    assert failed["grey.png"] == "no_face" and failed["broken.jpg"] == "unreadable"
    assert summary["settings"]["batch_size"] == 2 and summary["settings"]["image_size"] == SIZE
    assert summary["settings"]["fit_steps"] == 20 and summary["settings"]["mask_landmarks"] == 68
    assert json.loads((out / "astronaut.json").read_text())["mask_landmarks"] == "68"  # dlib's, as asked
    for name in ("astronaut", "mirrored"):
        for suffix in ("_coarse.obj", "_coarse.ply", "_refined.obj", "_refined.ply", "_overlay.png", ".json",
                       ".input.png", ".mask.png"):
            assert (out / f"{name}{suffix}").is_file(), name + suffix
        for method in ("coarse", "refined"):
            for suffix in (".input.png", ".mask.png", ".render.png", ".alpha.png"):
                assert (out / method / f"{name}{suffix}").is_file(), (method, suffix)
    assert not any(path.name.startswith(("grey", "broken")) for path in out.rglob("*"))
    # the output record lists every file written (what keeps later runs from replacing or reading them)
    from face_gcn.fit import outputs
    written = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()}
    expected = {"summary.json", ".face-gcn.lock", ".face-gcn-outputs.json"}
    expected |= {*outputs.reconstruction_files("astronaut"), *outputs.reconstruction_files("mirrored")}
    assert written == expected
    assert set(json.loads((out / ".face-gcn-outputs.json").read_text())["files"]) == expected - {
        ".face-gcn.lock", ".face-gcn-outputs.json"}

    # the batched run gives what the model gives each written crop and mask on its own
    for name in ("astronaut", "mirrored"):
        record = json.loads((out / f"{name}.json").read_text())
        crop = read_rgb(out / f"{name}.input.png")
        mask = (cv2.imread(str(out / f"{name}.mask.png"), cv2.IMREAD_GRAYSCALE) > 127).astype(np.float32)
        landmarks = np.asarray(record["landmarks_5_crop_px"], np.float32)[None]
        alone = forward.reconstruct(nets, crop[None], face_mask=mask[None], landmarks=landmarks, fit_steps=20)
        # the fit amplifies float rounding a little: a face fits alike alone and in a batch, not bit for bit
        np.testing.assert_allclose(record["coefficients"], alone.coefficients.numpy()[0], rtol=1e-3, atol=2e-3)
        # the default coarse fit (20 steps) brings the model's landmarks closer to the detected ones
        regressed = forward.reconstruct(nets, crop[None], face_mask=mask[None], fit_steps=0)
        def landmark_error(result):
            return float(np.abs(coarse_losses.five_from_68(result.coarse.landmarks).numpy() - 0.5 - landmarks).mean())
        fitted, regressor_only = landmark_error(alone), landmark_error(regressed)
        assert fitted < 0.8 * regressor_only, (fitted, regressor_only)
        assert record["camera"]["image_size"] == SIZE and record["model"] == os.path.abspath(model_path)
        assert set(record["seconds"]) == {"detect_align_mask", "inference"}
        np.testing.assert_allclose(record["pose"]["angles_xyz_radians"], record["coefficients"][224:227], atol=1e-6)
        assert 0.0 < record["visible_vertex_fraction"] <= 1.0
        from face_gcn.mesh import io as mesh_io
        vertices, triangles, colors = mesh_io.read_obj(str(out / f"{name}_refined.obj"))
        np.testing.assert_allclose(vertices, alone.coarse.posed.numpy()[0], atol=2e-3)
        np.testing.assert_allclose(colors, np.clip(alone.refined_albedo.numpy()[0], 0, 1), atol=2e-3)
        np.testing.assert_array_equal(triangles, nets.morphable.triangles)

        # the crop is the original photo under the recorded alignment transform
        transform = np.asarray(record["alignment"]["transform_original_to_crop"])
        original = face if name == "astronaut" else face[:, ::-1]
        warped = cv2.warpAffine(original, transform, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
        inside = (slice(8, SIZE - 8), slice(8, SIZE - 8))
        assert np.abs(warped[inside].astype(float) - crop[inside]).mean() < 6.0
        # the overlay changes the photo only where the warped render covers it
        overlay = read_rgb(out / f"{name}_overlay.png")
        assert overlay.shape == original.shape
        alpha = cv2.imread(str(out / "refined" / f"{name}.alpha.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        coverage = cv2.warpAffine(alpha, transform, (256, 256), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        changed = np.abs(overlay.astype(int) - original.astype(int)).max(-1) > 2
        assert changed.any() and not changed[coverage == 0].any()

    # the evaluate command reads the same layout
    from face_gcn.evaluation import report
    results = report.evaluate_results(str(out))
    assert set(results) == {"coarse", "refined"} and results["refined"]["n_images"] == 2


def test_nothing_reconstructed_is_one_line_and_exit_1(model, tmp_path, run_subcommand):
    model_path, _ = model
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((96, 96, 3), 90, np.uint8))
    result = run_subcommand("reconstruct", str(grey), "--model", model_path, "--out", str(tmp_path / "out"),
                            "--noprogress", cache=tmp_path / "cache")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == \
        "face-gcn reconstruct: error: no image could be reconstructed (see summary.json)"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["failed"][0]["reason"] == "no_face"
    result = run_subcommand("reconstruct", str(grey), "--model", str(tmp_path), "--out", str(tmp_path / "out"),
                            cache=tmp_path)
    assert result.returncode == 1 and "not a face-gcn model directory" in result.stderr.strip().splitlines()[-1]


def test_output_folder_keeps_every_file_it_did_not_write(model, tmp_path, run_subcommand):
    model_path, _ = model
    photos, other = tmp_path / "photos", tmp_path / "other"
    photos.mkdir()
    other.mkdir()
    face = cv2.resize(skimage.data.astronaut(), (192, 192), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photos / "me.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(other / "me.png"), cv2.cvtColor(face[:, ::-1], cv2.COLOR_RGB2BGR))
    out = photos / "results"  # inside the photo folder
    out.mkdir()
    (out / "me.input.png").write_bytes(b"the user's own picture")

    def reconstruct(*inputs, out_dir=out):
        return run_subcommand("reconstruct", *map(str, inputs), "--model", model_path, "--out", str(out_dir),
                              "--noprogress", "--fit_steps", "0", cache=tmp_path / "cache")

    result = reconstruct(photos)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "me.input.png").read_bytes() == b"the user's own picture"
    assert [item["name"] for item in json.loads((out / "summary.json").read_text())["reconstructed"]] == ["me_2"]
    first = (out / "me_2.json").read_text()

    # again, with a second photo of the same name: our outputs are not read back as photos, the first
    # photo's outputs are replaced by its own, the other photo gets the next name
    result = reconstruct(photos, other / "me.png")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_images"] == 3  # the two photos and the user's file in results/ (not a PNG: skipped)
    assert [(item["source"], item["reason"]) for item in summary["failed"]] == [(str(out / "me.input.png"),
                                                                                 "unreadable")]
    assert [(item["name"], item["source"]) for item in summary["reconstructed"]] == [
        ("me_2", str(photos / "me.png")), ("me_3", str(other / "me.png"))]
    assert (out / "me_2.json").read_text() != first  # rewritten (timings differ), not duplicated
    assert not (out / "me_4.json").exists() and (out / "me.input.png").read_bytes() == b"the user's own picture"

    result = reconstruct(other / "me.png", out_dir=other)
    assert result.returncode == 1 and "is the folder of the input photos" in result.stderr.strip().splitlines()[-1]
    import fcntl
    with open(out / ".face-gcn.lock", "a+", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds the folder
        result = reconstruct(other / "me.png")
    assert result.returncode == 1 and "in use by another face-gcn run" in result.stderr.strip().splitlines()[-1]
    assert not (out / "me_4.json").exists()
