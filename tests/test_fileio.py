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


POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
           b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")


def test_read_npz_never_suggests_unpickling(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array("text")}
    np.savez(tmp_path / "good.npz", **arrays)
    got = fileio.read_npz(tmp_path / "good.npz")
    assert sorted(got) == ["a", "b"] and got["a"].dtype == np.float32
    np.testing.assert_array_equal(got["a"], arrays["a"])
    np.savez(tmp_path / "objects.npz", evil=np.array([{"x": 1}], dtype=object))
    (tmp_path / "text.npz").write_bytes(b"this is not an archive")
    good = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    for name, expected in (("objects", "Python objects"), ("text", "not a .npz archive"), ("cut", "damaged")):
        with pytest.raises(ValueError, match=expected) as caught:
            fileio.read_npz(tmp_path / f"{name}.npz")
        assert "allow_pickle" not in str(caught.value) and "unsafe" not in str(caught.value), name  # NumPy's advice
    with pytest.raises(OSError):
        fileio.read_npz(tmp_path / "missing.npz")


def test_git_lfs_pointers_are_recognised(tmp_path):
    pointer, large, binary = tmp_path / "model.npz", tmp_path / "large.bin", tmp_path / "weights.h5"
    pointer.write_bytes(POINTER)
    large.write_bytes(POINTER + b"x" * 2000)  # the prefix in a large file is content, not a pointer
    binary.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert fileio.is_lfs_pointer(pointer)
    assert not any(fileio.is_lfs_pointer(p) for p in (large, binary, tmp_path / "missing", tmp_path))
    with pytest.raises(KeyError, match="model.npz is a Git LFS pointer, not the morphable model: fetch"):
        fileio.refuse_lfs_pointer(pointer, "morphable model", KeyError)
    fileio.refuse_lfs_pointer(binary)  # no error


def test_every_model_and_weights_reader_names_an_lfs_pointer(tmp_path, tiny_model_dir):
    """Each reader says 'Git LFS pointer' instead of failing as a corrupt file."""
    import shutil
    from face_gcn.morphable import model as model_lib
    from face_gcn.nets import deng_graph, facenet, regressor
    from face_gcn.reconstruction import model_dir
    pointer = tmp_path / "pointer"
    pointer.write_bytes(POINTER)
    for suffix, read in ((".npz", model_lib.load), (".keras", regressor.load_regressor),
                         (".weights.h5", lambda p: regressor.build_regressor((64, 64, 3), weights=p, backbone="compact")),
                         (".weights.h5", lambda p: facenet.build_facenet(weights=p)),
                         (".pb", deng_graph.read_graph_def)):
        path = tmp_path / f"file{suffix}"
        shutil.copy(pointer, path)
        with pytest.raises(ValueError, match="is a Git LFS pointer"):
            read(str(path))
    from face_gcn.morphable import basel
    from face_gcn.nets import facenet_checkpoint
    bfm = {name: str(pointer) for name in ("morphable_model_mat", "exp_pca_bin", "front_idx_mat", "exp_idx_mat",
                                           "facemodel_info_mat", "std_exp_txt")}
    with pytest.raises(ValueError, match="is a Git LFS pointer, not the Basel Face Model file"):
        basel.convert_bfm2009(**bfm)
    shutil.copy(pointer, tmp_path / "model.ckpt-275.index")
    with pytest.raises(ValueError, match="is a Git LFS pointer, not the FaceNet checkpoint file"):
        facenet_checkpoint.load_sandberg_checkpoint(facenet.build_facenet(), str(tmp_path / "model.ckpt-275"))
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir[1], copy)
    meta = json.loads((copy / "face_model.json").read_text())
    shutil.copy(pointer, copy / meta["files"]["texture_gcn"])
    with pytest.raises(model_dir.ModelDirError, match="is a Git LFS pointer, not the texture_gcn file"):
        model_dir.load_model_dir(str(copy))


def test_a_killed_atomic_directory_is_recovered(tmp_path):
    """Kill after staging: the staging folder goes. Kill between the two renames: the previous
    directory comes back. Neither leaves .tmp-/.old- folders behind the next write."""
    target = tmp_path / "model"
    (tmp_path / ".tmp-model.abc123").mkdir()
    (tmp_path / ".tmp-model.abc123" / "half.bin").write_bytes(b"x")
    (tmp_path / ".old-model.def456" / "previous").mkdir(parents=True)
    (tmp_path / ".old-model.def456" / "previous" / "weights.bin").write_bytes(b"old")
    (tmp_path / ".tmp-other.zzz").mkdir()  # another target's: not ours to touch
    fileio.recover_directory(target)
    assert (target / "weights.bin").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == [".tmp-other.zzz", "model"]
    (tmp_path / ".tmp-model.again").mkdir()
    with fileio.atomic_directory(target) as staging:
        Path(staging, "weights.bin").write_bytes(b"new")
    assert (target / "weights.bin").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == [".tmp-other.zzz", "model"]
