"""The morphable model container: validation, immutability and the .npz file format."""

import numpy as np
import pytest

from face_gcn.morphable import model as model_lib


def tiny_arrays(num_id=2, num_exp=3, num_tex=2):
    """A valid 5-vertex model (a square fan) as a dict of plain arrays."""
    rng = np.random.default_rng(0)
    vertices = np.array([[0, 0, 0.1], [1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], np.float64)
    triangles = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    return {
        "name": "tiny",
        "mean_shape": vertices,
        "id_basis": rng.normal(size=(15, num_id)), "id_stddev": np.arange(1, num_id + 1) * 1.0,
        "exp_basis": rng.normal(size=(15, num_exp)), "exp_stddev": np.ones(num_exp),
        "mean_albedo": rng.uniform(size=(5, 3)),
        "albedo_basis": rng.normal(size=(15, num_tex)), "albedo_stddev": np.ones(num_tex),
        "triangles": triangles,
        "vertex_triangles": model_lib.vertex_triangle_table(triangles, 5),
        "landmark_indices": np.arange(68) % 5,
        "skin_mask": np.array([True, True, False, True, True]),
        "front_mask": np.ones(5, bool),
        "alignment_landmarks": rng.normal(size=(5, 3)),
    }


def test_fields_are_converted_and_read_only():
    model = model_lib.MorphableModel(**tiny_arrays())
    assert model.mean_shape.dtype == np.float32 and model.triangles.dtype == np.int32
    assert model.skin_mask.dtype == bool
    assert (model.num_vertices, model.num_triangles, model.num_id, model.num_exp,
            model.num_albedo) == (5, 4, 2, 3, 2)
    for name, value in model.arrays().items():
        assert not value.flags.writeable, name
        with pytest.raises(ValueError):
            value[...] = 0


def test_inputs_are_copied():
    arrays = tiny_arrays()
    model = model_lib.MorphableModel(**arrays)
    arrays["mean_shape"][0, 0] = 42.0
    assert model.mean_shape[0, 0] == 0.0


def test_save_load_round_trip(tmp_path):
    model = model_lib.MorphableModel(**tiny_arrays())
    path = tmp_path / "sub" / "model.npz"
    model_lib.save(model, path)
    loaded = model_lib.load(path)
    assert loaded.name == "tiny"
    for name, value in model.arrays().items():
        restored = getattr(loaded, name)
        assert restored.dtype == value.dtype and restored.shape == value.shape, name
        np.testing.assert_array_equal(restored, value, err_msg=name)
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]  # no temporary left


def test_vertex_triangle_table_matches_brute_force():
    triangles = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [5, 6, 7]])
    table = model_lib.vertex_triangle_table(triangles, 9)
    assert table.shape == (9, 4) and table.dtype == np.int32
    for vertex in range(9):
        expected = sorted(t for t in range(5) if vertex in triangles[t])
        listed = [t for t in table[vertex] if t != 5]
        assert sorted(listed) == expected
        assert list(table[vertex]).count(5) == 4 - len(expected)


@pytest.mark.parametrize("field,value,message", [
    ("mean_shape", np.zeros((5, 2)), r"'mean_shape'.*shape"),
    ("id_basis", np.zeros((14, 2)), r"'id_basis'.*shape \(15, \?\)"),
    ("exp_stddev", np.ones(2), r"'exp_stddev'.*shape \(3,\)"),
    ("albedo_stddev", -np.ones(2), r"'albedo_stddev'.*non-negative"),
    ("mean_albedo", np.zeros((4, 3)), r"'mean_albedo'.*shape"),
    ("triangles", np.array([[0, 1, 5]]), r"'triangles'.*\[0, 5\)"),
    ("triangles", np.array([[0, -1, 2]]), r"'triangles'.*\[0, 5\)"),
    ("vertex_triangles", np.full((5, 3), 9), r"'vertex_triangles'"),
    ("landmark_indices", np.arange(67), r"'landmark_indices'.*\(68,\)"),
    ("landmark_indices", np.arange(68), r"'landmark_indices'.*\[0, 5\)"),
    ("skin_mask", np.ones(4, bool), r"'skin_mask'"),
    ("front_mask", np.ones((5, 1), bool), r"'front_mask'"),
    ("alignment_landmarks", np.zeros((68, 3)), r"'alignment_landmarks'"),
    ("exp_basis", np.full((15, 3), np.nan), r"'exp_basis'.*NaN"),
    ("mean_shape", np.array([[0, 0, 0], [1, 0, 0], [0, 1, np.inf], [1, 1, 0], [2, 2, 0]]),
     r"'mean_shape'.*NaN or infinite"),
    ("triangles", np.array([["a", "b", "c"]]), r"'triangles'.*cannot convert"),
])
def test_validation_names_the_field(field, value, message):
    arrays = tiny_arrays()
    arrays[field] = value
    with pytest.raises(model_lib.MorphableModelError, match=message):
        model_lib.MorphableModel(**arrays)


def payload(**changes):
    model = model_lib.MorphableModel(**tiny_arrays())
    contents = dict(model.arrays())
    contents["format_version"] = np.array(model_lib.FORMAT_VERSION)
    contents["name"] = np.array(model.name)
    contents.update(changes)
    return contents


def test_wrong_format_version_is_rejected(tmp_path):
    path = tmp_path / "future.npz"
    np.savez(path, **payload(format_version=np.array(99)))
    with pytest.raises(model_lib.MorphableModelError, match="format_version 99"):
        model_lib.load(path)


def test_a_format_version_that_is_not_an_integer_is_named(tmp_path):
    path = tmp_path / "odd.npz"
    np.savez(path, **payload(format_version=np.array("one")))
    with pytest.raises(model_lib.MorphableModelError, match="odd.npz: format_version must be an integer"):
        model_lib.load(path)


@pytest.mark.parametrize("field,change,message", [
    ("mean_shape", lambda a: np.zeros_like(a), "spans no surface"),
    ("triangles", lambda a: np.concatenate([a[:1, [0, 0, 1]], a[1:]]), "1 triangle(s) repeat a vertex"),
    ("landmark_indices", lambda a: np.zeros_like(a), "fewer than 3 distinct vertices"),
])
def test_degenerate_models_fail_at_load_with_the_reason(tmp_path, field, change, message):
    path = tmp_path / "degenerate.npz"
    contents = payload()
    np.savez(path, **dict(contents, **{field: change(contents[field])}))
    with pytest.raises(model_lib.MorphableModelError) as raised:
        model_lib.load(path)
    assert str(raised.value).startswith(f"{path}: ") and field in str(raised.value) and message in str(raised.value)


def test_missing_field_is_named(tmp_path):
    contents = payload()
    del contents["skin_mask"]
    path = tmp_path / "partial.npz"
    np.savez(path, **contents)
    with pytest.raises(model_lib.MorphableModelError, match="missing field.*skin_mask"):
        model_lib.load(path)


def test_invalid_array_in_file_names_file_and_field(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, **payload(triangles=np.array([[0, 1, 7]], np.int32)))
    with pytest.raises(model_lib.MorphableModelError, match=r"bad\.npz.*'triangles'"):
        model_lib.load(path)


def test_missing_version_is_rejected(tmp_path):
    contents = payload()
    del contents["format_version"]
    path = tmp_path / "old.npz"
    np.savez(path, **contents)
    with pytest.raises(model_lib.MorphableModelError, match="format_version"):
        model_lib.load(path)


def test_pickled_object_array_is_rejected(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, **payload(name=np.array([{"evil": 1}], dtype=object)))
    with pytest.raises(model_lib.MorphableModelError, match=r"pickled\.npz"):
        model_lib.load(path)


def test_a_matlab_file_says_to_run_convert_bfm(tmp_path):
    """Basel's 01_MorphableModel.mat given where the converted .npz belongs (v5 and v7.3 headers)."""
    import scipy.io
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, {"shapeMU": np.zeros((9, 1))})
    hdf5 = tmp_path / "BFM_model_front.mat"
    hdf5.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + b" " * 90 + b"\0" * 384 + b"\x89HDF\r\n\x1a\n")
    for matlab in (path, hdf5):
        with pytest.raises(model_lib.MorphableModelError) as raised:
            model_lib.load(matlab)
        assert str(raised.value).startswith(f"{matlab} is a MATLAB file") and "face-gcn convert-bfm" in str(raised.value)
        assert "pickle" not in str(raised.value)


def test_non_npz_and_missing_files_are_rejected(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not an archive", encoding="utf-8")
    with pytest.raises(model_lib.MorphableModelError, match=r"notes\.npz is not"):
        model_lib.load(text)
    with pytest.raises(model_lib.MorphableModelError, match="not found"):
        model_lib.load(tmp_path / "absent.npz")
