"""Tests for Deng's SH lighting against explicit polynomials and loops."""

import math

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import lighting


def _unit_normals(rng, shape):
    n = rng.normal(size=shape + (3,))
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


def _reference_basis(n):
    """Deng's nine values written from the real SH polynomials and Lambertian kernel."""
    x, y, z = n
    pi = math.pi
    a0, a1, a2 = pi, 2 * pi / math.sqrt(3), 2 * pi / math.sqrt(8)
    c0 = 1 / math.sqrt(4 * pi)
    c1 = math.sqrt(3) / math.sqrt(4 * pi)
    c2 = 3 * math.sqrt(5) / math.sqrt(12 * pi)
    return np.array([
        a0 * c0,
        -a1 * c1 * y, a1 * c1 * z, -a1 * c1 * x,
        a2 * c2 * x * y, -a2 * c2 * y * z,
        a2 * c2 * 0.5 / math.sqrt(3) * (3 * z * z - 1),
        -a2 * c2 * x * z, a2 * c2 * 0.5 * (x * x - y * y)])


def _reference_shading(normals, gamma, offset=0.8):
    batch, count, _ = normals.shape
    out = np.zeros((batch, count, 3))
    for b in range(batch):
        for v in range(count):
            basis = _reference_basis(normals[b, v])
            for channel in range(3):
                coefficients = gamma[b, 9 * channel: 9 * channel + 9].copy()
                coefficients[0] += offset
                out[b, v, channel] = basis @ coefficients
    return out


def test_sh_basis_matches_polynomials_any_leading_shape():
    rng = np.random.default_rng(0)
    normals = _unit_normals(rng, (2, 3, 4))
    got = lighting.sh_basis(normals).numpy()
    assert got.shape == (2, 3, 4, 9)
    for index in np.ndindex(2, 3, 4):
        np.testing.assert_allclose(got[index], _reference_basis(normals[index]), atol=1e-12)


def test_constants():
    assert lighting.A0 * lighting.C0 == pytest.approx(math.sqrt(math.pi) / 2)
    assert lighting.C2 == pytest.approx(3 * math.sqrt(5) / math.sqrt(12 * math.pi))
    assert lighting.DENG_AMBIENT_OFFSET == 0.8


def test_sh_shading_matches_loops_channel_major():
    rng = np.random.default_rng(1)
    normals = _unit_normals(rng, (2, 5))
    gamma = rng.normal(scale=0.3, size=(2, 27))
    got = lighting.sh_shading(normals, gamma).numpy()
    np.testing.assert_allclose(got, _reference_shading(normals, gamma), atol=1e-12)
    no_offset = lighting.sh_shading(normals, gamma, ambient_offset=0.0).numpy()
    np.testing.assert_allclose(no_offset, _reference_shading(normals, gamma, 0.0), atol=1e-12)


def test_zero_gamma_gives_uniform_ambient():
    rng = np.random.default_rng(2)
    normals = _unit_normals(rng, (1, 6)).astype(np.float32)
    got = lighting.sh_shading(normals, np.zeros((1, 27), np.float32)).numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, 0.8 * math.sqrt(math.pi) / 2, rtol=1e-6)


def test_channel_layout_red_block_only_lights_red():
    normals = np.array([[[0.0, 0.0, 1.0]]])
    gamma = np.zeros((1, 27))
    gamma[0, 2] = 1.0     # red channel, band 2 (z)
    got = lighting.sh_shading(normals, gamma, ambient_offset=0.0).numpy()[0, 0]
    assert got[0] == pytest.approx(2 * math.pi / math.sqrt(3) * math.sqrt(3) / math.sqrt(4 * math.pi))
    assert got[1] == 0.0 and got[2] == 0.0


def test_illuminate_multiplies_albedo():
    rng = np.random.default_rng(3)
    normals = _unit_normals(rng, (2, 4))
    gamma = rng.normal(scale=0.2, size=(2, 27))
    albedo = rng.uniform(size=(2, 4, 3))
    got = lighting.illuminate(albedo, normals, gamma).numpy()
    np.testing.assert_allclose(got, albedo * _reference_shading(normals, gamma), atol=1e-12)


def test_sh_shading_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    normals = tf.constant(_unit_normals(rng, (2, 3)))
    gamma = tf.constant(rng.normal(scale=0.3, size=(2, 27)))
    theoretical, numerical = tf.test.compute_gradient(lighting.sh_shading, [normals, gamma])
    for analytic, numeric in zip(theoretical, numerical):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6)


def test_validation():
    with pytest.raises(ValueError, match=r"gamma must have shape \[B, 27\]"):
        lighting.sh_shading(np.zeros((1, 2, 3)), np.zeros((1, 9)))
    with pytest.raises(ValueError, match=r"normals must have shape \[\.\.\., 3\]"):
        lighting.sh_basis(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"albedo must have shape \[B, V, 3\]"):
        lighting.illuminate(np.zeros((2, 3)), np.zeros((1, 2, 3)), np.zeros((1, 27)))


def test_remove_shading_divides_by_the_reference_shading_and_clips():
    rng = np.random.default_rng(4)
    normals = _unit_normals(rng, (2, 5))
    gamma = rng.normal(scale=0.1, size=(2, 27))
    colors = rng.uniform(0.0, 1.0, size=(2, 5, 3))
    expected = np.clip(colors / np.maximum(_reference_shading(normals, gamma), 1e-3), 0.0, 1.0)
    got = lighting.remove_shading(colors, normals, gamma).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    dark = lighting.remove_shading(colors, normals, np.tile([-0.8] + [0.0] * 8, 3)[None].repeat(2, 0)).numpy()
    np.testing.assert_array_equal(dark, np.where(colors > 0, 1.0, 0.0))  # shading 0: raised to 1e-3, clipped
