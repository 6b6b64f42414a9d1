"""Atomic writers: complete files or none, PNG pixels and JSON values round-trip."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_gcn import fileio


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    fileio.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        fileio.write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_json_accepts_numpy_values(tmp_path):
    path = tmp_path / "sub" / "values.json"
    fileio.write_json(path, {"x": np.float32(0.5), "v": np.arange(3), "n": np.int64(7)})
    assert json.loads(path.read_text()) == {"x": 0.5, "v": [0, 1, 2], "n": 7}


def test_png_round_trip_float_and_uint8(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    fileio.write_png(tmp_path / "a.png", rgb)
    read = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(read, rgb)
    fileio.write_png(tmp_path / "b.png", rgb / 255.0)
    read = cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(read, rgb)


@pytest.mark.parametrize("bad", [np.zeros((4,)), np.zeros((4, 4, 2)), np.zeros((3, 3), np.int32)])
def test_png_rejects_bad_arrays(tmp_path, bad):
    with pytest.raises(ValueError):
        fileio.write_png(tmp_path / "bad.png", bad)
    assert not os.listdir(tmp_path)


def test_outputs_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        fileio.write_json(tmp_path / "a.json", {})
    finally:
        os.umask(umask)
    assert (os.stat(tmp_path / "a.json").st_mode & 0o777) == 0o644


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(tmp_path / "x.bin") as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"partial")
            raise RuntimeError("writer failed")
    assert not os.listdir(tmp_path)


def test_atomic_directory_replaces_whole_and_keeps_the_old_on_failure(tmp_path):
    target = tmp_path / "out"
    with fileio.atomic_directory(target) as staging:
        (Path(staging) / "a.txt").write_text("one")
    assert sorted(os.listdir(target)) == ["a.txt"]
    with pytest.raises(RuntimeError):
        with fileio.atomic_directory(target) as staging:
            (Path(staging) / "b.txt").write_text("two")
            raise RuntimeError("interrupted")
    assert sorted(os.listdir(target)) == ["a.txt"]
    with fileio.atomic_directory(target) as staging:
        (Path(staging) / "c.txt").write_text("three")
    assert sorted(os.listdir(target)) == ["c.txt"]
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging or old copies left


def test_read_format_json_checks_the_format_and_names_the_file(tmp_path):
    good, other, broken = tmp_path / "good.json", tmp_path / "other.json", tmp_path / "broken.json"
    good.write_text('{"format": "thing v1", "n": 3}')
    other.write_text('{"format": "thing v2"}')
    broken.write_text("{not json")
    assert fileio.read_format_json(good, "thing v1") == {"format": "thing v1", "n": 3}
    with pytest.raises(ValueError, match="other.json: not a thing v1 manifest"):
        fileio.read_format_json(other, "thing v1", "manifest")
    with pytest.raises(ValueError, match="broken.json: unreadable"):
        fileio.read_format_json(broken, "thing v1")
    with pytest.raises(ValueError, match="unreadable"):
        fileio.read_format_json(tmp_path / "missing.json", "thing v1")
