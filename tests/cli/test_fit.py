"""`face-gcn fit` as a user runs it: a fresh process, a folder with a face and a faceless image."""

import json

import cv2
import numpy as np
import skimage.data

from face_gcn.morphable import coefficients as coeff_lib


def test_folder_end_to_end(tmp_path, run_subcommand):
    photos = tmp_path / "photos"
    photos.mkdir()
    face = cv2.resize(skimage.data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photos / "astronaut.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "astronaut_mirrored.png"), cv2.cvtColor(face[:, ::-1], cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "grey.png"), np.full((128, 160, 3), 128, np.uint8))
    out = tmp_path / "out"
    result = run_subcommand("fit", str(photos), "--out", str(out), "--pose_steps", "30", "--shape_steps", "30",
                            "--appearance_steps", "40", "--refine_steps", "40", "--noprogress", "--landmarks", "68",
                            cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 fitted, 1 skipped (no_face 1)" in result.stdout  # the two faces fitted as one batch

    summary = json.loads((out / "summary.json").read_text())
    assert [item["name"] for item in summary["fitted"]] == ["astronaut", "astronaut_mirrored"]
    assert summary["settings"]["batch_size"] == 8 and summary["settings"]["landmarks"] == 68
    assert summary["settings"]["segmenter"] == "builtin"
    assert [item["landmarks"] for item in summary["fitted"]] == ["68", "68"]  # dlib's, as asked
    assert summary["failed"] == [{"source": str(photos / "grey.png"), "reason": "no_face",
                                  "detail": "MTCNN found no face"}]
    for name in ("astronaut_coarse.obj", "astronaut_coarse.ply", "astronaut_refined.obj",
                 "astronaut_refined.ply", "astronaut_overlay.png", "astronaut.json",
                 "astronaut.input.png", "astronaut.mask.png"):
        assert (out / name).is_file(), name
    for method in ("coarse", "refined"):
        for suffix in (".input.png", ".mask.png", ".render.png", ".alpha.png"):
            assert (out / method / f"astronaut{suffix}").is_file(), (method, suffix)
    assert not any(path.name.startswith("grey") for path in out.rglob("*"))
    mirrored = json.loads((out / "astronaut_mirrored.json").read_text())
    yaw = coeff_lib.BLOCK_SLICES["angles"].start + 1
    # the mirror image is turned less to that side (0.005 vs 0.10 rad): the batch kept each face's own fit
    original = json.loads((out / "astronaut.json").read_text())
    assert mirrored["coefficients"][yaw] < original["coefficients"][yaw] - 0.05

    record = json.loads((out / "astronaut.json").read_text())
    assert len(record["coefficients"]) == 257
    assert record["landmarks"] == "68" and np.shape(record["landmarks_68_crop_px"]) == (68, 2)
    assert np.asarray(record["alignment"]["transform_original_to_crop"]).shape == (2, 3)
    assert record["camera"]["image_size"] == 224
    for key in ("psnr_coarse", "psnr_refined", "ssim_coarse", "ssim_refined"):
        assert np.isfinite(record[key]), key
    assert record["psnr_refined"] > record["psnr_coarse"]
    assert record["ssim_refined"] > record["ssim_coarse"]
    assert set(record["seconds"]) >= {"coarse_fit", "refine"}

    overlay = cv2.imread(str(out / "astronaut_overlay.png"))
    assert overlay.shape == (256, 256, 3)
    from face_gcn.mesh import io as mesh_io
    vertices, triangles, colors = mesh_io.read_ply(str(out / "astronaut_refined.ply"))
    assert vertices.shape[1] == 3 and colors.shape == vertices.shape and len(triangles) > 0

    # the evaluate command reads the same layout and finds the same numbers (8-bit PNG renders)
    from face_gcn.evaluation import report
    results = report.evaluate_results(str(out))
    assert set(results) == {"coarse", "refined"}
    for method in ("coarse", "refined"):
        per_image = results[method]["per_image"]["astronaut"]
        assert abs(per_image["psnr"] - record[f"psnr_{method}"]) < 0.3
        assert abs(per_image["ssim"] - record[f"ssim_{method}"]) < 0.01


def test_clear_errors(tmp_path, run_subcommand):
    result = run_subcommand("fit", str(tmp_path / "nowhere.png"), "--out", str(tmp_path / "out"), cache=tmp_path)
    assert result.returncode == 1 and "neither an image file nor a folder" in result.stderr
    result = run_subcommand("fit", "--out", str(tmp_path), cache=tmp_path)
    assert result.returncode != 0 and "at least one IMAGE" in result.stderr
    result = run_subcommand("fit", str(tmp_path), "--out", str(tmp_path / "out"), "--landmarks68_model",
                            str(tmp_path / "none.dat"), cache=tmp_path)
    assert result.returncode == 1 and "--landmarks68_model" in result.stderr and "is not a file" in result.stderr
    result = run_subcommand("fit", str(tmp_path), "--out", str(tmp_path / "out"), "--segmenter", "skin", cache=tmp_path)
    assert result.returncode == 1 and "builtin, builtin_chroma or a SavedModel folder" in result.stderr


def test_photos_with_68_and_with_5_landmarks_are_fitted_as_two_batches():
    """A batch mixing photos with dlib's 68 and with MTCNN's 5 (a fallback) is fitted in two groups, each
    photo getting the fit it gets alone (the real fitter, its landmark-only pose stage)."""
    from face_gcn.cli import _photos
    from face_gcn.cli.fit import FitPipeline
    from face_gcn.fit import coarse_fit
    from face_gcn.losses import coarse as coarse_losses
    from face_gcn.morphable import configured
    from face_gcn.render import face_renderer

    size = 64
    model = configured.load_demo()
    rng = np.random.default_rng(4)
    mean68 = face_renderer.render_coefficients(model, np.zeros((1, 257), np.float32), image_size=size).landmarks
    mean68 = mean68.numpy()[0] - 0.5  # pixel centres -> indices

    def photo(number, with68):
        crop = np.full((size, size, 3), 100 + number, np.uint8)
        points68 = mean68 + rng.normal(0, 1.5, (68, 2)) + [2.0 * number, -number]
        five = coarse_losses.five_from_68(points68[None]).numpy()[0]
        return _photos.AlignedPhoto(original=crop, crop=crop, mask=np.ones((size, size), np.uint8),
                                    landmarks=five, transform=np.eye(2, 3), num_faces=1, detection_score=1.0,
                                    landmarks68=points68 if with68 else None,
                                    landmarks_note="68" if with68 else "5 (fallback: implausible)")

    pipeline = FitPipeline.__new__(FitPipeline)
    pipeline.regressor = None
    pipeline.fitter = coarse_fit.CoarseFitter(model, size, coarse_fit.FitConfig(stages=coarse_fit.default_stages(
        pose_steps=20, shape_steps=0, appearance_steps=0)))
    photos = [photo(1, True), photo(2, False), photo(3, True)]
    fits = pipeline.fit(photos)
    for fitted, one in zip(fits, photos):
        alone = pipeline.fitter.fit(one.crop, one.mask, one.fit_landmarks).coefficients
        np.testing.assert_allclose(fitted[0], alone, atol=1e-4)
    assert len(photos[0].fit_landmarks) == 68 and len(photos[1].fit_landmarks) == 5
    assert fits[0][2] == fits[2][2]  # seconds per face of one group of two


def test_mask_landmarks_68_draw_the_face_region_while_the_fit_keeps_5(tmp_path):
    """--mask_landmarks 68 with --landmarks 5: the photo carries no 68 for the fit, and its mask is the built-in
    segmenter's on dlib's 68 (not on MTCNN's 5)."""
    from face_gcn.cli import _photos
    from face_gcn.data import landmarks68, masks
    from face_gcn.morphable import configured

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    standard = configured.load_demo().alignment_landmarks
    photo = _photos.PhotoAligner(standard, 224, landmarks=5, mask_landmarks=68).align(str(path))
    assert photo.landmarks68 is None and photo.landmarks_note == "5" and photo.mask_landmarks == "68"
    assert len(photo.fit_landmarks) == 5
    detector, _ = landmarks68.load_detector()
    from face_gcn.data import detection
    face = detection.FaceDetector().detect(skimage.data.astronaut()).largest
    points, note = landmarks68.in_crop(detector, "", skimage.data.astronaut(), face, photo.transform)
    assert note == "68"
    np.testing.assert_array_equal(photo.mask, masks.SkinColourSegmenter().segment(photo.crop, points))
    five = _photos.PhotoAligner(standard, 224).align(str(path))
    assert five.mask_landmarks == "5" and not np.array_equal(five.mask, photo.mask)
