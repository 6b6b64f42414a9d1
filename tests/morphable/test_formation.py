"""Tests for shape/albedo formation (Eq. 1) against a float64 NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.morphable import formation
from face_gcn.morphable import model as model_lib

NUM_V, K_ID, K_EXP, K_TEX, BATCH = 7, 5, 4, 3, 3


def _random_problem(seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        mean_shape=rng.normal(size=(NUM_V, 3)) + [0.1, -0.2, 0.5],
        id_basis=rng.normal(size=(3 * NUM_V, K_ID)),
        exp_basis=rng.normal(size=(3 * NUM_V, K_EXP)),
        mean_albedo=rng.uniform(size=(NUM_V, 3)),
        albedo_basis=0.1 * rng.normal(size=(3 * NUM_V, K_TEX)),
        id_coeffs=rng.normal(size=(BATCH, K_ID)),
        exp_coeffs=rng.normal(size=(BATCH, K_EXP)),
        tex_coeffs=rng.normal(size=(BATCH, K_TEX)),
    )


def _reference_shape(p, recenter=True):
    """Vertex by vertex: x_v = mean_v + sum_k basis[3v + axis, k] c_k."""
    out = np.zeros((BATCH, NUM_V, 3))
    for b in range(BATCH):
        for v in range(NUM_V):
            for axis in range(3):
                row = 3 * v + axis
                out[b, v, axis] = (p["mean_shape"][v, axis]
                                   + p["id_basis"][row] @ p["id_coeffs"][b]
                                   + p["exp_basis"][row] @ p["exp_coeffs"][b])
    if recenter:
        out -= p["mean_shape"].mean(axis=0)
    return out


def _reference_albedo(p):
    out = np.zeros((BATCH, NUM_V, 3))
    for b in range(BATCH):
        for v in range(NUM_V):
            for axis in range(3):
                out[b, v, axis] = (p["mean_albedo"][v, axis]
                                   + p["albedo_basis"][3 * v + axis] @ p["tex_coeffs"][b])
    return out


@pytest.mark.parametrize("recenter", [True, False])
def test_form_shape_matches_reference(recenter):
    p = _random_problem()
    got = formation.form_shape(p["mean_shape"], p["id_basis"], p["exp_basis"],
                               p["id_coeffs"], p["exp_coeffs"], recenter=recenter)
    assert got.shape == (BATCH, NUM_V, 3) and got.dtype == tf.float64
    np.testing.assert_allclose(got.numpy(), _reference_shape(p, recenter), rtol=1e-12,
                               atol=1e-12)


def test_recentred_mean_face_has_zero_centroid():
    p = _random_problem(1)
    zeros_id, zeros_exp = np.zeros((1, K_ID)), np.zeros((1, K_EXP))
    shape = formation.form_shape(p["mean_shape"], p["id_basis"], p["exp_basis"],
                                 zeros_id, zeros_exp).numpy()
    np.testing.assert_allclose(shape[0].mean(axis=0), 0.0, atol=1e-12)


def test_form_albedo_matches_reference():
    p = _random_problem(2)
    got = formation.form_albedo(p["mean_albedo"], p["albedo_basis"], p["tex_coeffs"])
    np.testing.assert_allclose(got.numpy(), _reference_albedo(p), rtol=1e-12, atol=1e-12)


def test_float32_inputs_stay_float32():
    p = {k: v.astype(np.float32) for k, v in _random_problem(3).items()}
    got = formation.form_albedo(p["mean_albedo"], p["albedo_basis"], p["tex_coeffs"])
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), _reference_albedo(p), rtol=1e-5, atol=1e-5)


def test_form_shape_gradient_matches_finite_differences():
    p = _random_problem(4)

    def shape_of(id_coeffs, exp_coeffs):
        return formation.form_shape(p["mean_shape"], p["id_basis"], p["exp_basis"],
                                    id_coeffs, exp_coeffs)

    theoretical, numerical = tf.test.compute_gradient(
        shape_of, [tf.constant(p["id_coeffs"]), tf.constant(p["exp_coeffs"])])
    for analytic, numeric in zip(theoretical, numerical):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)
    # The Jacobian of a linear map is the basis itself: d x[b, v, a] / d c_id[b, k] = I[3v+a, k].
    np.testing.assert_allclose(theoretical[0][:3 * NUM_V, :K_ID], p["id_basis"], atol=1e-12)


def test_shape_validation_errors():
    p = _random_problem()
    with pytest.raises(ValueError, match=r"id_basis must have 3V = 21 rows"):
        formation.form_shape(p["mean_shape"], p["id_basis"][:-1], p["exp_basis"],
                             p["id_coeffs"], p["exp_coeffs"])
    with pytest.raises(ValueError, match=r"exp_coeffs has 3 coefficients but exp_basis has 4"):
        formation.form_shape(p["mean_shape"], p["id_basis"], p["exp_basis"],
                             p["id_coeffs"], p["exp_coeffs"][:, :3])
    with pytest.raises(ValueError, match=r"mean_albedo must have shape \[V, 3\]"):
        formation.form_albedo(p["mean_albedo"][:, :2], p["albedo_basis"], p["tex_coeffs"])
    with pytest.raises(ValueError, match=r"tex_coeffs must have shape \[B, K\]"):
        formation.form_albedo(p["mean_albedo"], p["albedo_basis"], p["tex_coeffs"][0])
    with pytest.raises(ValueError, match="floating"):
        formation.form_albedo(p["mean_albedo"], p["albedo_basis"],
                              p["tex_coeffs"].astype(np.int32))


def _tiny_model(p):
    triangles = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6]], np.int32)
    rng = np.random.default_rng(5)
    return model_lib.MorphableModel(
        name="tiny", mean_shape=p["mean_shape"], id_basis=p["id_basis"],
        id_stddev=np.ones(K_ID), exp_basis=p["exp_basis"], exp_stddev=np.ones(K_EXP),
        mean_albedo=p["mean_albedo"], albedo_basis=p["albedo_basis"],
        albedo_stddev=np.ones(K_TEX), triangles=triangles,
        vertex_triangles=model_lib.vertex_triangle_table(triangles, NUM_V),
        landmark_indices=rng.integers(0, NUM_V, 68), skin_mask=np.ones(NUM_V, bool),
        front_mask=np.ones(NUM_V, bool), alignment_landmarks=rng.normal(size=(5, 3)))


def test_model_helpers_use_the_model_arrays_and_cache_constants():
    p = _random_problem(6)
    model = _tiny_model(p)
    shape = formation.shape_from_model(model, p["id_coeffs"], p["exp_coeffs"])
    reference = _reference_shape({**p, "mean_shape": model.mean_shape.astype(np.float64),
                                  "id_basis": model.id_basis.astype(np.float64),
                                  "exp_basis": model.exp_basis.astype(np.float64)})
    np.testing.assert_allclose(shape.numpy(), reference, rtol=1e-5, atol=1e-5)
    albedo = formation.albedo_from_model(model, p["tex_coeffs"])
    reference = _reference_albedo({**p, "mean_albedo": model.mean_albedo.astype(np.float64),
                                   "albedo_basis": model.albedo_basis.astype(np.float64)})
    np.testing.assert_allclose(albedo.numpy(), reference, rtol=1e-5, atol=1e-5)
    assert formation.model_tensors(model) is formation.model_tensors(model)

    @tf.function
    def traced(id_coeffs, exp_coeffs):
        return formation.shape_from_model(model, id_coeffs, exp_coeffs)

    np.testing.assert_allclose(
        traced(tf.constant(p["id_coeffs"], tf.float32),
               tf.constant(p["exp_coeffs"], tf.float32)).numpy(), shape.numpy(), atol=1e-6)


def test_deng_chain_from_257_coefficients_matches_numpy():
    """Split, form, pose, normals (rotated as Deng does), SH colours and projection together."""
    from face_gcn.mesh import normals as normals_lib
    from face_gcn.morphable import coefficients as coeffs_lib
    from face_gcn.render import camera, lighting

    rng = np.random.default_rng(7)
    num_v = 6
    mean_shape = rng.normal(scale=0.3, size=(num_v, 3)) + [0.0, 0.0, 0.4]
    id_basis = 0.01 * rng.normal(size=(3 * num_v, 80))
    exp_basis = 0.01 * rng.normal(size=(3 * num_v, 64))
    mean_albedo = rng.uniform(size=(num_v, 3))
    albedo_basis = 0.01 * rng.normal(size=(3 * num_v, 80))
    triangles = np.array([[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]], np.int32)
    table = model_lib.vertex_triangle_table(triangles, num_v)
    coeffs = rng.normal(scale=0.2, size=(2, 257))

    blocks = coeffs_lib.split_coefficients(coeffs)
    shape = formation.form_shape(mean_shape, id_basis, exp_basis, blocks.id, blocks.exp)
    albedo = formation.form_albedo(mean_albedo, albedo_basis, blocks.tex)
    rotation = camera.euler_rotation(blocks.angles)
    posed = camera.rigid_transform(shape, blocks.angles, blocks.translation)
    canonical_normals = normals_lib.vertex_normals(shape, triangles, table)
    colours = lighting.illuminate(albedo, camera.rotate(canonical_normals, rotation), blocks.gamma)
    uv = camera.perspective_project(posed)

    for b in range(2):
        c = coeffs[b]
        s = (mean_shape.reshape(-1) + id_basis @ c[:80] + exp_basis @ c[80:144]).reshape(-1, 3)
        s -= mean_shape.mean(axis=0)
        ax, ay, az = c[224:227]
        rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
        ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
        rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
        r_t = (rz @ ry @ rx).T
        p = s @ r_t + c[254:257]
        np.testing.assert_allclose(posed.numpy()[b], p, atol=1e-12)
        depth = 10.0 - p[:, 2]
        np.testing.assert_allclose(uv.numpy()[b], 1015.0 * p[:, :2] / depth[:, None] + 112.0,
                                   atol=1e-9)
        face = np.cross(s[triangles[:, 0]] - s[triangles[:, 1]],
                        s[triangles[:, 1]] - s[triangles[:, 2]])      # Deng's (v1-v2)x(v2-v3)
        face /= np.linalg.norm(face, axis=1, keepdims=True)
        vertex = np.zeros_like(s)
        np.add.at(vertex, triangles.reshape(-1), np.repeat(face, 3, axis=0))
        vertex /= np.linalg.norm(vertex, axis=1, keepdims=True)
        n = vertex @ r_t
        x, y, z = n.T
        pi = np.pi
        k0, k1 = pi / np.sqrt(4 * pi), 2 * pi / np.sqrt(3) * np.sqrt(3) / np.sqrt(4 * pi)
        k2 = 2 * pi / np.sqrt(8) * 3 * np.sqrt(5) / np.sqrt(12 * pi)
        basis = np.stack([np.full_like(x, k0), -k1 * y, k1 * z, -k1 * x, k2 * x * y,
                          -k2 * y * z, k2 * 0.5 / np.sqrt(3) * (3 * z ** 2 - 1), -k2 * x * z,
                          k2 * 0.5 * (x ** 2 - y ** 2)], axis=1)
        gamma = c[227:254].reshape(3, 9) + np.array([0.8] + [0.0] * 8)
        albedo_ref = (mean_albedo.reshape(-1) + albedo_basis @ c[144:224]).reshape(-1, 3)
        np.testing.assert_allclose(colours.numpy()[b], albedo_ref * (basis @ gamma.T),
                                   atol=1e-12)


def test_landmark_shape_is_the_full_shape_at_the_landmarks():
    from face_gcn.morphable import configured
    model = configured.load_demo()
    rng = np.random.default_rng(0)
    identity, expression = rng.normal(size=(2, model.num_id)), rng.normal(size=(2, model.num_exp))
    full = formation.shape_from_model(model, identity, expression).numpy()[:, model.landmark_indices]
    np.testing.assert_allclose(formation.landmark_shape_from_model(model, identity, expression).numpy(), full,
                               atol=1e-6)
