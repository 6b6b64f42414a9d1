"""Coarse losses against float64 NumPy written here."""

import numpy as np
import pytest

from face_gcn.losses import coarse

RNG = np.random.default_rng(7)


def test_five_from_68_picks_eye_means_nose_and_mouth_corners():
    points = RNG.normal(size=(2, 68, 2))
    five = coarse.five_from_68(points.astype(np.float32)).numpy()
    expected = np.stack([points[:, 36:42].mean(1), points[:, 42:48].mean(1), points[:, 30], points[:, 48],
                         points[:, 54]], axis=1)
    np.testing.assert_allclose(five, expected, atol=1e-5)


def test_landmark_loss_hand_case_and_weights():
    predicted = np.zeros((1, 2, 2), np.float32)
    target = np.array([[[3.0, 4.0], [1.0, 0.0]]], np.float32)  # squared distances 25 and 1
    assert coarse.landmark_loss(predicted, target).numpy() == pytest.approx(13.0)
    assert coarse.landmark_loss(predicted, target, weights=[1.0, 20.0]).numpy() == pytest.approx(22.5)


def test_landmark_loss_random_matches_numpy():
    p, q = RNG.normal(size=(3, 68, 2)), RNG.normal(size=(3, 68, 2))
    w = np.array(coarse.DENG_68_WEIGHTS)
    expected = (((p - q) ** 2).sum(-1) * w).sum() / (3 * 68)
    got = coarse.landmark_loss(p.astype(np.float32), q.astype(np.float32), w).numpy()
    assert got == pytest.approx(expected, rel=1e-5)
    assert w[30] == 20 and w[65] == 20 and w[0] == 1 and w[48] == 1


def test_landmark_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match="predicted and target"):
        coarse.landmark_loss(np.zeros((1, 5, 2)), np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match="weights"):
        coarse.landmark_loss(np.zeros((1, 5, 2)), np.zeros((1, 5, 2)), weights=[1.0, 2.0])


def test_coefficient_regularisation_matches_numpy():
    i, e, t = RNG.normal(size=(2, 80)), RNG.normal(size=(2, 64)), RNG.normal(size=(2, 80))
    expected = np.mean((i ** 2).sum(1) + 0.8 * (e ** 2).sum(1) + 0.017 * (t ** 2).sum(1))
    got = coarse.coefficient_regularisation(i.astype(np.float32), e.astype(np.float32), t.astype(np.float32))
    assert got.numpy() == pytest.approx(expected, rel=1e-5)


def test_reflectance_loss_matches_numpy_and_ignores_non_skin():
    albedo = RNG.uniform(0, 255, size=(2, 10, 3))
    skin = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 1], np.float64)
    s = skin.astype(bool)
    expected = np.mean([((a[s] - a[s].mean(0)) ** 2).sum(-1).mean() for a in albedo])
    got = coarse.reflectance_loss(albedo.astype(np.float32), skin).numpy()
    assert got == pytest.approx(expected, rel=1e-4)
    changed = albedo.copy()
    changed[:, ~s] = 1e4
    assert coarse.reflectance_loss(changed.astype(np.float32), skin).numpy() == pytest.approx(expected, rel=1e-4)
    uniform = np.full((1, 10, 3), 80.0, np.float32)
    assert coarse.reflectance_loss(uniform, skin).numpy() == pytest.approx(0.0, abs=1e-6)


def test_gamma_loss_zero_for_monochrome_and_matches_numpy():
    mono = np.tile(RNG.normal(size=(2, 1, 9)), (1, 3, 1)).reshape(2, 27)
    assert coarse.gamma_loss(mono.astype(np.float32)).numpy() == pytest.approx(0.0, abs=1e-7)
    g = RNG.normal(size=(2, 27))
    r = g.reshape(2, 3, 9)
    expected = ((r - r.mean(1, keepdims=True)) ** 2).mean()
    assert coarse.gamma_loss(g.astype(np.float32)).numpy() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="gamma"):
        coarse.gamma_loss(np.zeros((2, 26)))


def test_deng_68_weights_follow_his_code():
    # Deng's losses.py: concat(ones(28), 20*ones(3), ones(29), 20*ones(8)).
    expected = np.concatenate([np.ones(28), 20 * np.ones(3), np.ones(29), 20 * np.ones(8)])
    np.testing.assert_array_equal(coarse.DENG_68_WEIGHTS, expected)


def test_landmark_loss_with_example_weights_matches_numpy():
    p, q = RNG.normal(size=(4, 68, 2)), RNG.normal(size=(4, 68, 2))
    w, g = np.array(coarse.DENG_68_WEIGHTS), np.array([1.0, 0.0, 1.0, 0.0])
    per = (((p - q) ** 2).sum(-1) * w).mean(axis=1)
    got = coarse.landmark_loss(p.astype(np.float32), q.astype(np.float32), w, g).numpy()
    assert got == pytest.approx((per * g).sum() / g.sum(), rel=1e-5)
    # Examples without ground truth do not matter, and none at all gives 0 with finite gradient.
    q2 = q.copy()
    q2[[1, 3]] += 100.0
    assert coarse.landmark_loss(p.astype(np.float32), q2.astype(np.float32), w, g).numpy() \
        == pytest.approx(got, rel=1e-5)
    import tensorflow as tf
    predicted = tf.Variable(p.astype(np.float32))
    with tf.GradientTape() as tape:
        zero = coarse.landmark_loss(predicted, q.astype(np.float32), w, np.zeros(4))
    assert zero.numpy() == 0.0 and np.all(np.isfinite(tape.gradient(zero, predicted).numpy()))
    with pytest.raises(ValueError, match="example_weights"):
        coarse.landmark_loss(p, q, w, np.ones(3))


def test_coefficient_loss_matches_numpy_per_block():
    p, t = RNG.normal(size=(3, 257)), RNG.normal(size=(3, 257))
    g = np.array([1.0, 1.0, 0.0])
    sizes = [("id", 80), ("exp", 64), ("tex", 80), ("angles", 3), ("gamma", 27), ("translation", 3)]
    per, start = np.zeros(3), 0
    for name, size in sizes:
        per += coarse.COEFFICIENT_BLOCK_WEIGHTS[name] * ((p - t)[:, start:start + size] ** 2).mean(axis=1)
        start += size
    assert start == 257
    got = coarse.coefficient_loss(p.astype(np.float32), t.astype(np.float32)).numpy()
    assert got == pytest.approx(per.mean(), rel=1e-5)
    got = coarse.coefficient_loss(p.astype(np.float32), t.astype(np.float32), g).numpy()
    assert got == pytest.approx(per[:2].mean(), rel=1e-5)
    only_angles = coarse.coefficient_loss(p.astype(np.float32), t.astype(np.float32),
                                          block_weights={"angles": 2.0}).numpy()
    assert only_angles == pytest.approx(2.0 * ((p - t)[:, 224:227] ** 2).mean(), rel=1e-5)
    assert coarse.coefficient_loss(t, t).numpy() == 0.0
    assert coarse.coefficient_loss(p, t, np.zeros(3)).numpy() == 0.0
    with pytest.raises(ValueError, match="unknown coefficient blocks"):
        coarse.coefficient_loss(p, t, block_weights={"pose": 1.0})
    with pytest.raises(ValueError, match=r"\[B, 257\]"):
        coarse.coefficient_loss(p[:, :100], t[:, :100])


def test_per_example_terms_match_numpy_and_their_means_are_the_batch_losses():
    rng = np.random.default_rng(7)
    predicted, target = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    weights = rng.uniform(0.5, 2.0, 5)
    expected = (weights * ((predicted - target) ** 2).sum(-1)).mean(axis=1)
    errors = coarse.landmark_errors(predicted, target, weights).numpy()
    np.testing.assert_allclose(errors, expected, rtol=1e-10)
    np.testing.assert_allclose(coarse.landmark_loss(predicted, target, weights).numpy(), expected.mean(), rtol=1e-10)

    identity, expression, texture = rng.normal(size=(3, 4)), rng.normal(size=(3, 2)), rng.normal(size=(3, 5))
    priors = (identity ** 2).sum(1) + 0.8 * (expression ** 2).sum(1) + 0.017 * (texture ** 2).sum(1)
    np.testing.assert_allclose(coarse.coefficient_priors(identity, expression, texture).numpy(), priors, rtol=1e-10)

    albedo, skin = rng.uniform(size=(3, 6, 3)), np.array([1, 0, 1, 1, 0, 1.0])
    picked = albedo[:, skin > 0]
    variances = ((picked - picked.mean(axis=1, keepdims=True)) ** 2).sum(-1).sum(1) / 4
    np.testing.assert_allclose(coarse.reflectance_variances(albedo, skin).numpy(), variances, rtol=1e-10)

    gamma = rng.normal(size=(3, 27)).reshape(3, 3, 9)
    deviations = ((gamma - gamma.mean(axis=1, keepdims=True)) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(coarse.gamma_deviations(gamma.reshape(3, 27)).numpy(), deviations, rtol=1e-10)
