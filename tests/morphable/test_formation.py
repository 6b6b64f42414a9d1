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
