import numpy as np
import pytest
import tensorflow as tf

from face_gcn.losses import authors

B, V = 2, 7


def _random(seed=0):
    """Colours partly outside [0, 1] (to exercise clipping), soft and hard visibility, float64."""
    rng = np.random.default_rng(seed)
    refined = rng.uniform(0.0, 1.0, (B, V, 3))
    coarse = rng.uniform(-0.3, 1.3, (B, V, 3))
    refined_lit = rng.uniform(-0.3, 1.3, (B, V, 3))
    coarse_lit = rng.uniform(-0.3, 1.3, (B, V, 3))
    photo = rng.uniform(0.0, 1.0, (B, V, 3))
    visibility = (rng.random((B, V)) > 0.4).astype(np.float64)
    visibility[0, 0], visibility[0, 1] = 1.0, 0.0
    visibility[1, :2] = [0.3, 0.8]  # soft values: the photo side carries vis^2
    return refined, coarse, refined_lit, coarse_lit, photo, visibility


def _f32(*arrays):
    return [tf.constant(a, tf.float32) for a in arrays]


# Independent float64 references, written from their base_model.py (colours x -> 2x - 1).

def _np_refine(refined, coarse):
    return np.mean(np.abs((2 * refined - 1) - (2 * np.clip(coarse, 0, 1) - 1)))


def _np_project(lit, photo, vis):
    v = vis[..., None]
    return np.mean(np.abs((2 * np.clip(lit, 0, 1) - 1) * v - ((2 * photo - 1) * v) * v))


def _np_fill(lit, coarse_lit, vis):
    h = 1 - vis[..., None]
    return np.mean(np.abs((2 * np.clip(lit, 0, 1) - 1) * h - (2 * np.clip(coarse_lit, 0, 1) - 1) * h))


def _np_symmetry(albedo, pairs):
    signed = 2 * albedo - 1
    d = signed[:, pairs[:, 0]] - signed[:, pairs[:, 1]]
    return np.mean(np.sqrt(np.sum(d ** 2 + 1e-16, axis=-1)))


def _np_variance(albedo, mask):
    skin = 2 * albedo[:, mask] - 1  # [B, S, 3]
    centred = skin - skin.mean(axis=1, keepdims=True)
    return np.mean(np.mean(centred ** 2, axis=1))


PAIRS = np.array([[0, 3], [1, 4], [2, 6]], np.int32)
SKIN = np.array([True, False, True, True, False, True, True])


def test_refine_matches_reference():
    refined, coarse, *_ = _random(1)
    got = authors.refine_l1(*_f32(refined, coarse))
    assert float(got) == pytest.approx(_np_refine(refined, coarse), rel=1e-5)
    # clipping matters for these inputs, and the [-1, 1] units double the [0, 1] difference
    assert not np.isclose(_np_refine(refined, coarse), np.mean(np.abs(2 * refined - 2 * coarse)))


def test_refine_by_hand():
    refined = np.array([[[0.5, 0.5, 0.5]]], np.float32)
    coarse = np.array([[[1.5, 0.25, -1.0]]], np.float32)   # clipped: 1, 0.25, 0
    assert float(authors.refine_l1(refined, coarse)) == pytest.approx((1.0 + 0.5 + 1.0) / 3)


def test_projected_matches_reference():
    _, _, lit, _, photo, vis = _random(2)
    got = authors.projected_l1(*_f32(lit, photo, vis))
    assert float(got) == pytest.approx(_np_project(lit, photo, vis), rel=1e-5)


def test_projected_by_hand_invisible_count_in_denominator():
    lit = np.array([[[0.75] * 3, [0.2] * 3]], np.float32)
    photo = np.array([[[0.25] * 3, [0.9] * 3]], np.float32)
    vis = np.array([[1.0, 0.0]], np.float32)
    # visible: |0.5 - (-0.5)| = 1 per channel; invisible: 0; 6 elements
    assert float(authors.projected_l1(lit, photo, vis)) == pytest.approx(0.5)
    assert float(authors.projected_l1(lit, photo, np.zeros((1, 2), np.float32))) == 0.0
    lit_over = np.array([[[1.6] * 3, [0.2] * 3]], np.float32)  # clipped to 1 -> |1 - (-0.5)|
    assert float(authors.projected_l1(lit_over, photo, vis)) == pytest.approx(0.75)


def test_fill_matches_reference():
    _, _, lit, coarse_lit, _, vis = _random(3)
    got = authors.fill_l1(*_f32(lit, coarse_lit, vis))
    assert float(got) == pytest.approx(_np_fill(lit, coarse_lit, vis), rel=1e-5)


def test_fill_by_hand_only_invisible_vertices():
    lit = np.array([[[0.75] * 3, [1.4] * 3]], np.float32)
    coarse_lit = np.array([[[0.0] * 3, [0.5] * 3]], np.float32)
    vis = np.array([[1.0, 0.0]], np.float32)
    # vertex 0 visible: 0; vertex 1: |1 - 0| (clip 1.4 -> 1, 0.5 -> 0 in [-1, 1]) per channel
    assert float(authors.fill_l1(lit, coarse_lit, vis)) == pytest.approx(0.5)


def test_symmetry_matches_reference():
    refined, *_ = _random(4)
    got = authors.symmetry_loss(tf.constant(refined, tf.float32), PAIRS)
    assert float(got) == pytest.approx(_np_symmetry(refined, PAIRS), rel=1e-5)
    as_tensor = authors.symmetry_loss(tf.constant(refined, tf.float32), tf.constant(PAIRS, tf.int64))
    assert float(as_tensor) == pytest.approx(float(got))


def test_symmetry_by_hand():
    albedo = np.zeros((1, 2, 3), np.float32)
    albedo[0, 1] = [0.15, 0.2, 0.0]   # [-1, 1] differences 0.3, 0.4, 0 -> 0.5
    assert float(authors.symmetry_loss(albedo, [[0, 1]])) == pytest.approx(0.5, rel=1e-6)


def test_skin_variance_matches_reference():
    refined, *_ = _random(5)
    got = authors.skin_variance(tf.constant(refined, tf.float32), SKIN)
    assert float(got) == pytest.approx(_np_variance(refined, SKIN), rel=1e-5)


def test_skin_variance_is_biased_and_per_face():
    albedo = np.zeros((2, 3, 3), np.float32)
    albedo[0, :, 0] = [0.0, 0.5, 1.0]       # [-1, 1]: -1, 0, 1 -> biased variance 2/3
    albedo[1] = 0.9                         # constant face: variance 0 (not pooled with face 0)
    got = authors.skin_variance(albedo, np.array([True, True, True]))
    assert float(got) == pytest.approx((2.0 / 3.0) / 3 / 2, rel=1e-6)


def test_data_loss_weights():
    got = authors.data_loss(0.2, 1.0, refine=1.0, project=10.0, fill=100.0, perception=1000.0,
                            symmetry=1e4, variance=1e5)
    assert got == pytest.approx(0.2 + 10.0 + 30.0 + 200.0 + 5e3 + 1e3)


def _gradient_check(function, *arrays):
    theoretical, numerical = tf.test.compute_gradient(function, list(_f32(*arrays)), delta=1e-3)
    for t, n in zip(theoretical, numerical):
        assert np.all(np.isfinite(t))
        np.testing.assert_allclose(t, n, atol=2e-3)
    return theoretical


def test_gradients_match_finite_differences():
    refined, coarse, lit, coarse_lit, photo, vis = _random(6)
    refined = np.clip(refined, 0.05, 0.95)
    _gradient_check(lambda a, b: authors.refine_l1(a, b), refined, coarse)
    _gradient_check(lambda a, b: authors.projected_l1(a, b, vis.astype(np.float32)), lit, photo)
    _gradient_check(lambda a, b: authors.fill_l1(a, b, vis.astype(np.float32)), lit, coarse_lit)
    _gradient_check(lambda a: authors.symmetry_loss(a, PAIRS), refined)
    _gradient_check(lambda a: authors.skin_variance(a, SKIN), refined)


def test_gradients_are_nonzero_where_expected():
    refined, coarse, lit, _, photo, vis = _random(7)
    lit_in, photo_in, vis_in = _f32(lit, photo, vis)
    with tf.GradientTape() as tape:
        tape.watch(lit_in)
        loss = authors.projected_l1(lit_in, photo_in, vis_in)
    gradient = tape.gradient(loss, lit_in).numpy()
    inside = (lit > 0) & (lit < 1) & (vis[..., None] > 0)
    assert np.all(gradient[~inside] == 0.0)
    assert np.all(gradient[inside] != 0.0)


def test_symmetric_albedo_gives_zero_gradient_not_nan():
    rng = np.random.default_rng(8)
    albedo = rng.random((B, V, 3)).astype(np.float32)
    albedo[:, PAIRS[:, 1]] = albedo[:, PAIRS[:, 0]]
    albedo_in = tf.constant(albedo)
    with tf.GradientTape() as tape:
        tape.watch(albedo_in)
        loss = authors.symmetry_loss(albedo_in, PAIRS)
    gradient = tape.gradient(loss, albedo_in).numpy()
    assert float(loss) == pytest.approx(np.sqrt(3e-16), rel=1e-3)
    assert np.all(np.isfinite(gradient)) and np.all(gradient == 0.0)
    # central differences at the symmetric point agree (0)
    _gradient_check(lambda a: authors.symmetry_loss(a, PAIRS), albedo)


@pytest.mark.parametrize("call", [
    lambda: authors.refine_l1(np.zeros((1, 4, 3)), np.zeros((1, 5, 3))),
    lambda: authors.refine_l1(np.zeros((4, 3)), np.zeros((4, 3))),
    lambda: authors.refine_l1(np.zeros((1, 4, 4)), np.zeros((1, 4, 4))),
    lambda: authors.projected_l1(np.zeros((1, 4, 3)), np.zeros((1, 4, 3)), np.zeros((1, 4, 1))),
    lambda: authors.projected_l1(np.zeros((1, 4, 3)), np.zeros((1, 3, 3)), np.zeros((1, 4))),
    lambda: authors.fill_l1(np.zeros((1, 4, 3)), np.zeros((1, 4, 3)), np.zeros((4,))),
    lambda: authors.symmetry_loss(np.zeros((1, 4, 3)), np.zeros((2, 3), np.int32)),
    lambda: authors.symmetry_loss(np.zeros((1, 4, 3)), np.zeros((2, 2), np.float32)),
    lambda: authors.symmetry_loss(np.zeros((1, 4, 3)), np.zeros((0, 2), np.int32)),
    lambda: authors.symmetry_loss(np.zeros((1, 4, 3)), np.array([[0, 4]])),
    lambda: authors.symmetry_loss(np.zeros((1, 4, 3)), np.array([[-1, 2]])),
    lambda: authors.symmetry_loss(np.zeros((4, 3)), np.array([[0, 1]])),
    lambda: authors.skin_variance(np.zeros((1, 4, 3)), np.ones(5, bool)),
    lambda: authors.skin_variance(np.zeros((1, 4, 3)), np.ones(4, np.float32)),
    lambda: authors.skin_variance(np.zeros((1, 4, 3)), np.zeros(4, bool)),
    lambda: authors.skin_variance(np.zeros((1, 4, 3)), np.ones((4, 1), bool)),
])
def test_shape_errors(call):
    with pytest.raises(ValueError):
        call()
