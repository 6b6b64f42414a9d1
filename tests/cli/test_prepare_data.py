"""`prepare-data` as a user runs it: a fresh process, absl flags, real photos."""

import json

import cv2
import numpy as np
import skimage.data


def test_folder_to_shards_and_manifest(tmp_path, run_subcommand):
    photos = tmp_path / "photos"
    photos.mkdir()
    face = cv2.resize(skimage.data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photos / "face.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    result = run_subcommand("prepare_data", "--input", str(photos), "--output_dir", str(out), "--crop_size", "96",
                            "--num_shards", "2", "--workers", "1", "--noprogress",
                            cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "1 written, 1 skipped (unreadable 1)" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["crop_size"] == 96
    # aligned to the built-in demo model's standard landmarks
    from face_gcn.morphable import configured
    np.testing.assert_allclose(manifest["config"]["standard_landmarks"],
                               configured.load_demo().alignment_landmarks, atol=1e-6)
    assert sorted(p.name for p in out.glob("*.tfrecord")) == [
        "faces-00000-of-00002.tfrecord", "faces-00001-of-00002.tfrecord"]
    again = run_subcommand("prepare_data", "--input", str(photos), "--output_dir", str(out), "--crop_size", "96",
                           "--num_shards", "2", "--workers", "1", "--noprogress",
                           cache=tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert "2 shards (2 reused)" in again.stdout


def test_clear_errors(tmp_path, run_subcommand):
    result = run_subcommand("prepare_data", "--input", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path),
                            cache=tmp_path)
    assert result.returncode == 1
    assert "neither a folder nor a file list" in result.stderr
    result = run_subcommand("prepare_data", "--output_dir", str(tmp_path), cache=tmp_path)
    assert result.returncode != 0 and "--input is required" in result.stderr
    result = run_subcommand("prepare_data", "--input", str(tmp_path), "--output_dir", str(tmp_path),
                            "--segmenter", str(tmp_path / "no_model"), cache=tmp_path)
    assert result.returncode == 1 and "SavedModel folder" in result.stderr
