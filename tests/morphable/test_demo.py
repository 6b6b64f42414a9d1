"""The built-in demo morphable model: determinism, mesh quality, face geometry, bases, colours.

Every property is measured here in float64 from the model's arrays, with NumPy formulas
written in this file.
"""

import os

import numpy as np
import pytest

from face_gcn.morphable import configured, demo
from face_gcn.morphable import model as model_lib

DENG_POINTS = np.array([
    [-0.311487, 0.290361, 0.133780], [0.309799, 0.289720, 0.131795],
    [0.003253, -0.046179, 0.552442], [-0.252169, -0.381339, 0.224057],
    [0.248466, -0.381282, 0.222358]])


@pytest.fixture(scope="module")
def face():
    return demo.build_demo_model(seed=0)


def positions(model):
    return model.mean_shape.astype(np.float64)


def triangle_normals(vertices, triangles):
    """[T, 3] unit normals, right-handed (counter-clockwise front)."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    normal = np.cross(b - a, c - a)
    return normal / np.linalg.norm(normal, axis=1, keepdims=True)


def unique_edges(triangles):
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0, return_counts=True)


def near(vertices, centre, radius):
    """Indices of vertices within radius of a planar (x, y) centre."""
    return np.nonzero(np.linalg.norm(vertices[:, :2] - np.asarray(centre), axis=1) < radius)[0]


def test_sizes_match_deng_layout(face):
    assert (face.num_id, face.num_exp, face.num_albedo) == (80, 64, 80)
    assert face.landmark_indices.shape == (68,)
    assert 3000 <= face.num_vertices <= 5000
    assert face.name == f"face_gcn demo v{demo.DEMO_VERSION} seed=0"


def test_same_seed_is_bit_identical_and_seed_changes_bases(face):
    again = demo.build_demo_model(seed=0)
    for name, value in face.arrays().items():
        assert np.array_equal(value, getattr(again, name)), name
    other = demo.build_demo_model(seed=1)
    assert np.array_equal(other.mean_shape, face.mean_shape)
    assert not np.allclose(other.id_basis, face.id_basis)


def test_mesh_is_an_open_manifold_with_one_boundary_loop(face):
    vertices, triangles = positions(face), face.triangles.astype(np.int64)
    edges, counts = unique_edges(triangles)
    assert counts.max() <= 2
    boundary = edges[counts == 1]
    # Every boundary vertex has exactly two boundary edges, and walking them visits all.
    degree = np.bincount(boundary.reshape(-1), minlength=face.num_vertices)
    assert set(np.unique(degree[degree > 0])) == {2}
    neighbours = {}
    for a, b in boundary:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    start = boundary[0, 0]
    previous, current, steps = None, start, 0
    while True:
        following = [n for n in neighbours[current] if n != previous][0]
        previous, current, steps = current, following, steps + 1
        if current == start:
            break
    assert steps == len(boundary)
    # No duplicate vertices, every vertex used, Euler characteristic of a disc.
    assert len(np.unique(np.round(vertices, 9), axis=0)) == face.num_vertices
    assert len(np.unique(triangles)) == face.num_vertices
    assert face.num_vertices - len(edges) + face.num_triangles == 1


def test_triangles_are_well_shaped(face):
    planar = positions(face)[:, :2]
    triangles = face.triangles
    smallest = np.inf
    for i in range(3):
        a, b, c = (planar[triangles[:, (i + j) % 3]] for j in range(3))
        u, v = b - a, c - a
        cosine = np.sum(u * v, 1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
        smallest = min(smallest, np.degrees(np.arccos(np.clip(cosine, -1, 1))).min())
    assert smallest > 20.0


def test_triangles_face_plus_z(face):
    normals = triangle_normals(positions(face), face.triangles)
    assert np.all(normals[:, 2] > 0.0)
    assert normals[:, 2].mean() > 0.7


def test_vertex_triangle_table_is_consistent(face):
    expected = model_lib.vertex_triangle_table(face.triangles, face.num_vertices)
    np.testing.assert_array_equal(face.vertex_triangles, expected)
    for vertex in (0, 100, face.num_vertices - 1):
        listed = set(face.vertex_triangles[vertex].tolist()) - {face.num_triangles}
        assert listed == set(np.nonzero((face.triangles == vertex).any(axis=1))[0].tolist())


def test_scale_and_placement_in_deng_units(face):
    vertices = positions(face)
    width = np.ptp(vertices[:, 0])
    height = np.ptp(vertices[:, 1])
    assert 1.5 <= width <= 2.0 and 1.6 <= height <= 2.2
    assert np.all(np.abs(vertices[:, :2].mean(axis=0)) < 0.1)


def test_nose_tip_is_the_frontmost_region(face):
    vertices = positions(face)
    tip = vertices[np.argmax(vertices[:, 2])]
    np.testing.assert_allclose(tip, DENG_POINTS[2], atol=0.05)
    np.testing.assert_allclose(vertices[face.landmark_indices[30]], tip, atol=0.05)
    # The nose protrudes: the tip is well in front of the eyes and the cheeks.
    cheeks = np.concatenate([near(vertices, (s * 0.45, -0.1), 0.06) for s in (-1, 1)])
    assert tip[2] - vertices[cheeks, 2].max() > 0.2


def test_alignment_landmarks_agree_with_deng_and_the_mesh(face):
    np.testing.assert_allclose(face.alignment_landmarks, DENG_POINTS, atol=0.1)
    vertices = positions(face)
    lm = vertices[face.landmark_indices]
    # Deng's definition: eye centres are the means of the eye corners (36, 39) and (42, 45).
    measured = np.stack([(lm[36] + lm[39]) / 2, (lm[42] + lm[45]) / 2, lm[30], lm[48], lm[54]])
    np.testing.assert_allclose(face.alignment_landmarks, measured, atol=0.04)


def test_landmarks_follow_the_ibug_layout(face):
    lm = positions(face)[face.landmark_indices]
    x, y = lm[:, 0], lm[:, 1]
    assert x[0] < x[8] < x[16] and y[8] < y[0] - 0.4 and abs(x[8]) < 0.05   # jaw, chin
    assert np.all(np.diff(x[17:22]) > 0) and np.all(np.diff(x[22:27]) > 0)    # brows left->right
    assert np.all(np.diff(y[27:31]) < 0)                                     # bridge downwards
    assert np.all(np.diff(x[31:36]) > 0)                                     # nostrils
    assert x[36] < x[39] < 0 < x[42] < x[45]                                 # eye corners
    assert y[17:27].min() > y[36:48].max() > y[30] > y[48:68].max()          # brows>eyes>nose>lips
    assert x[48] < x[51] < x[54] and y[51] > y[57] and y[62] > y[66]         # lips
    assert len(set(face.landmark_indices[17:68].tolist())) == 51             # distinct points


def test_lips_are_redder_and_brows_darker_than_skin(face):
    vertices = positions(face)
    albedo = face.mean_albedo.astype(np.float64)
    lips = np.concatenate([near(vertices, (0.0, -0.335), 0.02), near(vertices, (0.0, -0.43), 0.02)])
    cheeks = np.concatenate([near(vertices, (s * 0.45, -0.1), 0.06) for s in (-1, 1)])
    brows = np.concatenate([face.landmark_indices[[18, 19, 20, 23, 24, 25]]])
    forehead = near(vertices, (0.0, 0.7), 0.08)

    def redness(index):
        return np.mean(albedo[index, 0] / albedo[index, 1])

    def luminance(index):
        return np.mean(albedo[index] @ [0.2126, 0.7152, 0.0722])

    assert len(lips) > 3 and len(cheeks) > 10 and len(forehead) > 10
    assert redness(lips) > redness(cheeks) + 0.3
    assert luminance(brows) < 0.7 * luminance(forehead)
    eye_region = np.concatenate([near(vertices, (s * 0.31, 0.29), 0.12) for s in (-1, 1)])
    assert luminance(eye_region) < luminance(forehead)
    skin = albedo[cheeks].mean(axis=0)
    assert np.all(np.abs(skin - [0.75, 0.55, 0.45]) < 0.1)
    assert albedo.min() >= 0.0 and albedo.max() <= 1.0


def test_masks(face):
    triangles = face.triangles.astype(np.int64)
    edges, counts = unique_edges(triangles)
    boundary_vertices = np.unique(edges[counts == 1])
    assert not face.front_mask[boundary_vertices].any()
    assert 0.7 < face.front_mask.mean() < 0.97
    assert 0.5 < face.skin_mask.mean() < 0.95
    assert not np.any(face.skin_mask & ~face.front_mask)
    for group in (range(17, 27), range(36, 48), range(48, 68)):   # brows, eyes, lips
        assert not face.skin_mask[face.landmark_indices[list(group)]].any()
    vertices = positions(face)
    assert face.skin_mask[near(vertices, (0.0, 0.6), 0.05)].all()           # forehead
    assert face.skin_mask[near(vertices, (0.45, -0.1), 0.05)].all()         # cheek
    for side in (-1.0, 1.0):                                                 # beside the mouth
        assert face.skin_mask[near(vertices, (side * 0.42, -0.38), 0.04)].all()


@pytest.mark.parametrize("basis,stddev", [("id_basis", "id_stddev"), ("exp_basis", "exp_stddev"),
                                          ("albedo_basis", "albedo_stddev")])
def test_bases_are_orthogonal_with_decaying_stddev(face, basis, stddev):
    columns = getattr(face, basis).astype(np.float64)
    std = getattr(face, stddev).astype(np.float64)
    gram = columns.T @ columns
    np.testing.assert_allclose(gram, np.diag(std ** 2), atol=1e-5 * std[0] ** 2)
    assert np.all(np.diff(std) <= 0) and std[-1] > 0


@pytest.mark.parametrize("basis", ["id_basis", "exp_basis", "albedo_basis"])
def test_bases_are_smooth_on_the_mesh(face, basis):
    edges, _ = unique_edges(face.triangles.astype(np.int64))
    columns = getattr(face, basis).astype(np.float64)
    fields = columns.reshape(face.num_vertices, 3, -1)
    jump = np.linalg.norm(fields[edges[:, 0]] - fields[edges[:, 1]], axis=1).mean(axis=0)
    size = np.sqrt(np.sum(fields ** 2, axis=1).mean(axis=0))
    # White noise would give a ratio above 1; smooth fields vary little along one edge.
    assert np.all(jump / size < 0.35)


def test_expressions_move_mouth_eyes_and_brows_identity_moves_everything(face):
    vertices = positions(face)
    forehead_top = vertices[:, 1] > 0.7
    features = np.zeros(face.num_vertices, bool)
    for centre, radius in [((0.0, -0.45), 0.3), ((-0.31, 0.29), 0.18), ((0.31, 0.29), 0.18),
                           ((-0.30, 0.45), 0.18), ((0.30, 0.45), 0.18)]:
        features[near(vertices, centre, radius)] = True

    def energy(basis):
        columns = basis.astype(np.float64).reshape(face.num_vertices, 3, -1)
        return np.sum(columns ** 2, axis=(1, 2))

    exp, ident = energy(face.exp_basis), energy(face.id_basis)
    assert features.mean() < 0.35
    assert exp[features].sum() > 0.6 * exp.sum()
    assert exp[features].sum() / exp.sum() > 2.5 * ident[features].sum() / ident.sum()
    assert exp[forehead_top].sum() < 0.01 * exp.sum()
    assert ident[forehead_top].sum() > 0.03 * ident.sum()


@pytest.mark.parametrize("basis", ["id_basis", "exp_basis"])
def test_three_stddev_changes_the_face_without_folding(face, basis):
    vertices = positions(face)
    columns = getattr(face, basis).astype(np.float64)
    width = np.ptp(vertices[:, 0])
    first = np.sqrt(np.mean(np.sum(columns[:, 0].reshape(-1, 3) ** 2, axis=1)))
    assert 0.005 * width < first < 0.08 * width       # visible, not enormous, at 1 std
    for k in range(columns.shape[1]):
        for sign in (3.0, -3.0):
            moved = vertices + sign * columns[:, k].reshape(-1, 3)
            assert triangle_normals(moved, face.triangles)[:, 2].min() > 0.0, (k, sign)


def test_albedo_stays_in_range_within_three_stddev(face):
    columns = face.albedo_basis.astype(np.float64)
    mean = face.mean_albedo.astype(np.float64)
    rng = np.random.default_rng(3)
    for _ in range(10):
        albedo = mean + (columns @ np.clip(rng.normal(size=80), -3, 3)).reshape(-1, 3)
        assert np.mean((albedo < 0) | (albedo > 1)) < 0.01
    assert np.sqrt(np.mean(columns[:, 0] ** 2)) > 0.01   # the albedo basis is not negligible


def test_configured_demo_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(configured.ENV_CACHE, str(tmp_path))
    model = configured.load_demo()
    path = configured.demo_model_path()
    assert os.path.isfile(path) and os.path.dirname(path) == str(tmp_path)
    again = configured.load_configured()
    for name, value in model.arrays().items():
        assert np.array_equal(value, getattr(again, name)), name
