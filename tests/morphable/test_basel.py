"""Basel Face Model readers and the convert-bfm command, on small files in the exact formats.

The files are tiny synthetic stand-ins written here with scipy.io.savemat / ndarray.tofile in
the layouts of 01_MorphableModel.mat, Exp_Pca.bin, std_exp.txt, BFM_front_idx.mat,
BFM_exp_idx.mat, facemodel_info.mat and BFM_model_front.mat (no Basel data is involved).
Expected values are computed here vertex by vertex, independently of face_gcn's code.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import io as scipy_io

from face_gcn.morphable import basel
from face_gcn.morphable import model as model_lib

NUM_BFM = 60        # BFM 2009 vertices (53,490 in the real file)
NUM_EXP_V = 50      # expression-basis vertices (53,215)
GRID = (5, 7)       # the front face: a 5 x 7 grid of vertices (35,709)
NUM_FRONT = GRID[0] * GRID[1]
NUM_PC = 90         # principal components (199 in BFM, 79 for expressions)
NUM_EXP_PC = 70


def grid_triangles(rows, cols):
    """[T, 3] 0-based triangles of a rows x cols vertex grid."""
    triangles = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            a, b, d, e = r * cols + c, r * cols + c + 1, (r + 1) * cols + c, (r + 1) * cols + c + 1
            triangles += [[a, b, e], [a, e, d]]
    return np.array(triangles)


@pytest.fixture(scope="module")
def bfm(tmp_path_factory):
    """Writes the six original files plus a BFM_model_front.mat; returns paths and raw data."""
    directory = tmp_path_factory.mktemp("bfm")
    rng = np.random.default_rng(7)
    raw = {
        "shapeMU": (rng.normal(0.0, 5e4, (3 * NUM_BFM, 1))).astype(np.float32),
        "shapePC": rng.normal(0.0, 0.1, (3 * NUM_BFM, NUM_PC)).astype(np.float32),
        "shapeEV": np.sort(rng.uniform(1e3, 5e4, (NUM_PC, 1)), axis=0)[::-1].astype(np.float32),
        "texMU": rng.uniform(50.0, 200.0, (3 * NUM_BFM, 1)).astype(np.float32),
        "texPC": rng.normal(0.0, 0.1, (3 * NUM_BFM, NUM_PC)).astype(np.float32),
        "texEV": np.sort(rng.uniform(1.0, 80.0, (NUM_PC, 1)), axis=0)[::-1].astype(np.float32),
    }
    exp_mu = rng.normal(0.0, 1.0, 3 * NUM_EXP_V).astype(np.float32)
    exp_pc = rng.normal(0.0, 0.1, (NUM_EXP_PC, 3 * NUM_EXP_V)).astype(np.float32)  # [n, 3M]
    std_exp = rng.uniform(1e3, 2e4, NUM_EXP_PC)
    trim_index = rng.choice(NUM_BFM, NUM_EXP_V, replace=False) + 1      # 1-based into BFM
    front_idx = rng.choice(NUM_EXP_V, NUM_FRONT, replace=False) + 1     # 1-based into exp set
    triangles = grid_triangles(*GRID)
    keypoints = rng.integers(0, NUM_FRONT, 68)
    front_mask_idx = np.arange(3, NUM_FRONT - 2)
    skin = (np.arange(NUM_FRONT) % 3 != 0).astype(np.float64)
    paths = {name: str(directory / name) for name in (
        "01_MorphableModel.mat", "Exp_Pca.bin", "std_exp.txt", "BFM_front_idx.mat",
        "BFM_exp_idx.mat", "facemodel_info.mat", "BFM_model_front.mat")}
    scipy_io.savemat(paths["01_MorphableModel.mat"], raw)
    with open(paths["Exp_Pca.bin"], "wb") as handle:
        np.array([NUM_EXP_PC], dtype="<i4").tofile(handle)
        exp_mu.astype("<f4").tofile(handle)
        exp_pc.astype("<f4").tofile(handle)       # component-major
    np.savetxt(paths["std_exp.txt"], std_exp)
    scipy_io.savemat(paths["BFM_front_idx.mat"], {"idx": front_idx[:, None].astype(np.float64)})
    scipy_io.savemat(paths["BFM_exp_idx.mat"], {"trimIndex": trim_index[:, None].astype(np.int32)})
    info = {"tri": (triangles + 1).astype(np.float64),
            "point_buf": np.zeros((NUM_FRONT, 8)),
            "tri_mask2": (triangles[:4] + 1).astype(np.float64),
            "keypoints": (keypoints + 1)[None, :].astype(np.float64),
            "frontmask2_idx": (front_mask_idx + 1)[:, None].astype(np.float64),
            "skinmask": skin[None, :]}
    scipy_io.savemat(paths["facemodel_info.mat"], info)

    # The expected front model, vertex by vertex, from the raw arrays.
    shape_mu = raw["shapeMU"].astype(np.float64).reshape(-1)
    tex_mu = raw["texMU"].astype(np.float64).reshape(-1)
    mean = np.zeros((NUM_FRONT, 3))
    albedo = np.zeros((NUM_FRONT, 3))
    id_basis = np.zeros((3 * NUM_FRONT, 80))
    tex_basis = np.zeros((3 * NUM_FRONT, 80))
    exp_basis = np.zeros((3 * NUM_FRONT, 64))
    for i in range(NUM_FRONT):
        e = front_idx[i] - 1          # vertex in the expression set
        b = trim_index[e] - 1         # vertex in BFM
        for axis in range(3):
            mean[i, axis] = shape_mu[3 * b + axis] / 1e5
            albedo[i, axis] = tex_mu[3 * b + axis] / 255.0
            for k in range(80):
                id_basis[3 * i + axis, k] = (raw["shapePC"][3 * b + axis, k]
                                             * float(raw["shapeEV"][k, 0]) / 1e5)
                tex_basis[3 * i + axis, k] = (raw["texPC"][3 * b + axis, k]
                                              * float(raw["texEV"][k, 0]) / 255.0)
            for k in range(64):
                exp_basis[3 * i + axis, k] = exp_pc[k, 3 * e + axis] * std_exp[k] / 1e5
    expected = {
        "mean_shape": mean - mean.mean(axis=0), "mean_albedo": albedo, "id_basis": id_basis,
        "exp_basis": exp_basis, "albedo_basis": tex_basis, "triangles": triangles,
        "landmark_indices": keypoints,
        "front_mask": np.isin(np.arange(NUM_FRONT), front_mask_idx), "skin_mask": skin > 0,
        "id_stddev": raw["shapeEV"][:80, 0].astype(np.float64) / 1e5,
        "exp_stddev": std_exp[:64] / 1e5,
        "albedo_stddev": raw["texEV"][:80, 0].astype(np.float64) / 255.0,
    }
    # Deng's ready file, written as his transferBFM09 does (uncentred, 0-255, 1-based).
    scipy_io.savemat(paths["BFM_model_front.mat"], {
        "meanshape": mean.reshape(1, -1).astype(np.float32),
        "meantex": (albedo * 255.0).reshape(1, -1).astype(np.float32),
        "idBase": id_basis.astype(np.float32), "exBase": exp_basis.astype(np.float32),
        "texBase": (tex_basis * 255.0).astype(np.float32), **info})
    return {"paths": paths, "expected": expected, "info": info}


def convert(paths, **overrides):
    arguments = {
        "morphable_model_mat": paths["01_MorphableModel.mat"],
        "exp_pca_bin": paths["Exp_Pca.bin"], "front_idx_mat": paths["BFM_front_idx.mat"],
        "exp_idx_mat": paths["BFM_exp_idx.mat"],
        "facemodel_info_mat": paths["facemodel_info.mat"], "std_exp_txt": paths["std_exp.txt"]}
    arguments.update(overrides)
    return basel.convert_bfm2009(**arguments)


def assert_matches(model, expected, stddev_fields=("id_stddev", "exp_stddev", "albedo_stddev")):
    assert model.num_vertices == NUM_FRONT
    assert (model.num_id, model.num_exp, model.num_albedo) == (80, 64, 80)
    for field in ("mean_shape", "mean_albedo", "id_basis", "exp_basis", "albedo_basis",
                  *stddev_fields):
        np.testing.assert_allclose(getattr(model, field), expected[field], rtol=2e-5,
                                   atol=1e-6 * np.abs(expected[field]).max(), err_msg=field)
    for field in ("triangles", "landmark_indices", "front_mask", "skin_mask"):
        np.testing.assert_array_equal(getattr(model, field), expected[field], err_msg=field)
    np.testing.assert_allclose(model.alignment_landmarks[2], [0.003253, -0.046179, 0.552442],
                               atol=1e-6)


def test_convert_bfm2009_matches_vertex_by_vertex_reference(bfm):
    assert_matches(convert(bfm["paths"]), bfm["expected"])


def test_mean_shape_is_recentred_like_deng(bfm):
    model = convert(bfm["paths"])
    np.testing.assert_allclose(model.mean_shape.astype(np.float64).mean(axis=0), 0.0, atol=1e-5)


def test_load_deng_front_model_matches_reference(bfm):
    model = basel.load_deng_front_model(bfm["paths"]["BFM_model_front.mat"])
    assert_matches(model, bfm["expected"], stddev_fields=())
    expected_norms = np.linalg.norm(bfm["expected"]["id_basis"], axis=0)
    np.testing.assert_allclose(model.id_stddev, expected_norms, rtol=1e-5)


def test_vertex_triangles_list_each_vertex_triangles(bfm):
    model = convert(bfm["paths"])
    for vertex in range(model.num_vertices):
        listed = set(model.vertex_triangles[vertex].tolist()) - {model.num_triangles}
        assert listed == set(np.nonzero((model.triangles == vertex).any(axis=1))[0].tolist())


def test_missing_file_is_named(bfm, tmp_path):
    missing = str(tmp_path / "nowhere" / "Exp_Pca.bin")
    with pytest.raises(model_lib.MorphableModelError, match="nowhere.*not found"):
        convert(bfm["paths"], exp_pca_bin=missing)


def test_missing_variable_is_named(bfm, tmp_path):
    path = str(tmp_path / "01_MorphableModel.mat")
    raw = scipy_io.loadmat(bfm["paths"]["01_MorphableModel.mat"])
    scipy_io.savemat(path, {k: v for k, v in raw.items() if k in ("shapeMU", "shapePC", "texMU",
                                                                  "texPC", "texEV")})
    with pytest.raises(model_lib.MorphableModelError, match=r"01_MorphableModel\.mat.*shapeEV"):
        convert(bfm["paths"], morphable_model_mat=path)


def test_wrong_shape_is_named(bfm, tmp_path):
    path = str(tmp_path / "BFM_model_front.mat")
    contents = scipy_io.loadmat(bfm["paths"]["BFM_model_front.mat"])
    contents = {k: v for k, v in contents.items() if not k.startswith("__")}
    contents["idBase"] = contents["idBase"][:-3]
    scipy_io.savemat(path, contents)
    with pytest.raises(model_lib.MorphableModelError, match=r"BFM_model_front\.mat.*idBase.*shape"):
        basel.load_deng_front_model(path)


def test_too_few_components_is_named(bfm, tmp_path):
    path = str(tmp_path / "BFM_model_front.mat")
    contents = scipy_io.loadmat(bfm["paths"]["BFM_model_front.mat"])
    contents = {k: v for k, v in contents.items() if not k.startswith("__")}
    contents["exBase"] = contents["exBase"][:, :40]
    scipy_io.savemat(path, contents)
    with pytest.raises(model_lib.MorphableModelError, match="exBase.*40 components.*64"):
        basel.load_deng_front_model(path)


@pytest.mark.parametrize("key,value,message", [
    ("tri", lambda info: info["tri"] * 0 + NUM_FRONT + 1, r"'tri' indices must lie in \[1, 35\]"),
    ("keypoints", lambda info: info["keypoints"][:, :60], "'keypoints' must have 68 values"),
    ("frontmask2_idx", lambda info: info["frontmask2_idx"] - 10, "'frontmask2_idx' indices"),
    ("skinmask", lambda info: info["skinmask"] * 2, "'skinmask' must hold 0/1"),
])
def test_bad_topology_is_named(bfm, tmp_path, key, value, message):
    path = str(tmp_path / "facemodel_info.mat")
    info = dict(bfm["info"])
    info[key] = value(info)
    scipy_io.savemat(path, info)
    with pytest.raises(model_lib.MorphableModelError, match=r"facemodel_info\.mat.*" + message):
        convert(bfm["paths"], facemodel_info_mat=path)


def test_index_out_of_range_is_named(bfm, tmp_path):
    path = str(tmp_path / "BFM_exp_idx.mat")
    scipy_io.savemat(path, {"trimIndex": np.full((NUM_EXP_V, 1), NUM_BFM + 1)})
    with pytest.raises(model_lib.MorphableModelError, match=r"BFM_exp_idx\.mat.*trimIndex"):
        convert(bfm["paths"], exp_idx_mat=path)


def test_truncated_exp_pca_bin_is_rejected(bfm, tmp_path):
    path = str(tmp_path / "Exp_Pca.bin")
    with open(bfm["paths"]["Exp_Pca.bin"], "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:-12])
    with pytest.raises(model_lib.MorphableModelError, match=r"Exp_Pca\.bin.*70 components"):
        convert(bfm["paths"], exp_pca_bin=path)


def test_std_exp_count_mismatch_is_named(bfm, tmp_path):
    path = str(tmp_path / "std_exp.txt")
    np.savetxt(path, np.ones(NUM_EXP_PC - 1))
    with pytest.raises(model_lib.MorphableModelError, match=r"std_exp\.txt.*69 values"):
        convert(bfm["paths"], std_exp_txt=path)


def test_not_a_mat_file_is_rejected(bfm, tmp_path):
    path = str(tmp_path / "BFM_front_idx.mat")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("this is not MATLAB data\n")
    with pytest.raises(model_lib.MorphableModelError, match=r"BFM_front_idx\.mat.*not a readable"):
        convert(bfm["paths"], front_idx_mat=path)


def run_cli(*arguments):
    return subprocess.run([sys.executable, "-m", "face_gcn.cli.main", "convert-bfm", *arguments],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_cli_converts_original_files(bfm, tmp_path):
    paths = bfm["paths"]
    out = tmp_path / "converted.npz"
    result = run_cli(
        f"--morphable_model_mat={paths['01_MorphableModel.mat']}",
        f"--exp_pca_bin={paths['Exp_Pca.bin']}", f"--std_exp_txt={paths['std_exp.txt']}",
        f"--front_idx_mat={paths['BFM_front_idx.mat']}",
        f"--exp_idx_mat={paths['BFM_exp_idx.mat']}",
        f"--facemodel_info_mat={paths['facemodel_info.mat']}", f"--out={out}")
    assert result.returncode == 0, result.stderr
    assert f"{NUM_FRONT} vertices" in result.stdout and "80 identity" in result.stdout
    assert_matches(model_lib.load(out), bfm["expected"])


def test_cli_reads_deng_front_file_and_reports_errors_without_traceback(bfm, tmp_path):
    out = tmp_path / "front.npz"
    result = run_cli(f"--bfm_front_mat={bfm['paths']['BFM_model_front.mat']}", f"--out={out}")
    assert result.returncode == 0, result.stderr
    assert model_lib.load(out).num_vertices == NUM_FRONT

    missing = run_cli(f"--bfm_front_mat={tmp_path / 'absent.mat'}", f"--out={out}")
    assert missing.returncode == 1
    assert "absent.mat" in missing.stderr and "Traceback" not in missing.stderr

    incomplete = run_cli(f"--exp_pca_bin={bfm['paths']['Exp_Pca.bin']}", f"--out={out}")
    assert incomplete.returncode == 1
    assert "--morphable_model_mat" in incomplete.stderr and "Traceback" not in incomplete.stderr


def test_deng_front_model_accepts_column_vectors(bfm, tmp_path):
    path = str(tmp_path / "BFM_model_front.mat")
    contents = scipy_io.loadmat(bfm["paths"]["BFM_model_front.mat"])
    contents = {k: v for k, v in contents.items() if not k.startswith("__")}
    contents["meanshape"] = contents["meanshape"].T      # [3V, 1] as in some of Deng's code
    contents["meantex"] = contents["meantex"].T
    contents["keypoints"] = contents["keypoints"].T
    scipy_io.savemat(path, contents)
    assert_matches(basel.load_deng_front_model(path), bfm["expected"], stddev_fields=())
