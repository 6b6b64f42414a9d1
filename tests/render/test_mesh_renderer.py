"""mesh_renderer: Phong shading against a NumPy formula, Genova's compatibility mode, flips."""

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.render import mesh_renderer


def _normalize(v, axis=-1):
    return v / np.linalg.norm(v, axis=axis, keepdims=True)


def _numpy_phong(normals, alphas, positions, lights, intensities, diffuse, camera, specular,
                 shininess, ambient, genova):
    """Float64 reference; buffers [H, W, .] for one image; returns flipped RGBA."""
    n = normals.reshape(-1, 3)
    p = positions.reshape(-1, 3)
    rgb = ambient * diffuse.reshape(-1, 3)
    for light, intensity in zip(lights, intensities):
        to_light = _normalize(light - p)
        n_dot_l = np.clip(np.sum(n * to_light, -1), 0, 1)
        rgb = rgb + diffuse.reshape(-1, 3) * n_dot_l[:, None] * intensity
        mirror = _normalize(2 * n_dot_l[:, None] * n - to_light)
        r_dot_v = np.sum(_normalize(camera - p) * mirror, -1)
        if genova:
            r_dot_v = r_dot_v / np.linalg.norm(r_dot_v)
        r_dot_v = np.where(n_dot_l != 0, np.clip(r_dot_v, 0, 1), 0)
        rgb = rgb + specular.reshape(-1, 3) * (r_dot_v ** shininess)[:, None] * intensity
    rgb = np.where(alphas.reshape(-1, 1) > 0.5, rgb, 0).reshape(normals.shape)
    return np.concatenate([rgb, alphas[..., None]], -1)[::-1]


@pytest.mark.parametrize("mode", ["phong", "genova"])
def test_phong_shader_matches_numpy(mode):
    rng = np.random.default_rng(0)
    h, w = 5, 7
    normals = _normalize(rng.normal(size=(h, w, 3)) + [0, 0, 2])
    positions = rng.normal(size=(h, w, 3)) * 0.3
    alphas = (rng.uniform(size=(h, w)) > 0.3).astype(np.float64)
    diffuse = rng.uniform(size=(h, w, 3))
    specular = rng.uniform(size=(h, w, 3))
    lights = np.array([[0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    intensities = np.array([[1.0, 0.8, 0.6], [0.5, 1.0, 2.0]])
    camera = np.array([0.2, -0.1, 5.0])
    ambient = np.array([0.1, 0.1, 0.2])
    f32 = lambda x: tf.constant(np.asarray(x)[np.newaxis], tf.float32)  # noqa: E731
    result = mesh_renderer.phong_shader(
        f32(normals), f32(alphas), f32(positions), f32(lights), f32(intensities),
        diffuse_colors=f32(diffuse), camera_position=f32(camera), specular_colors=f32(specular),
        shininess_coefficients=tf.fill([1, 1, 1], 6.0), ambient_color=f32(ambient),
        specular_mode=mode).numpy()[0]
    expected = _numpy_phong(normals, alphas, positions, lights, intensities, diffuse, camera,
                            specular, 6.0, ambient, genova=(mode == "genova"))
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-5)


def test_tone_mapper_matches_formula():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 3, size=(2, 4, 5, 3)).astype(np.float32)
    out = mesh_renderer.tone_mapper(image, 0.7).numpy()
    powered = image.astype(np.float64) ** 0.7
    expected = np.clip(powered / powered.reshape(2, -1).max(1)[:, None, None, None], 0, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def _upper_quad():
    # A square in the upper half of the view (world y > 0), facing the camera at z = 6.
    vertices = np.array([[[-1.0, 0.2, 0.0], [1.0, 0.2, 0.0], [1.0, 1.5, 0.0], [-1.0, 1.5, 0.0]]],
                        np.float32)
    triangles = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    normals = np.tile(np.float32([0, 0, 1]), (1, 4, 1))
    return vertices, triangles, normals


def test_rows_are_flipped_and_background_is_black_with_zero_alpha():
    vertices, triangles, normals = _upper_quad()
    image = mesh_renderer.mesh_renderer(
        vertices, triangles, normals, np.ones_like(vertices), [0.0, 0.0, 6.0], [0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0], np.float32([[[0, 0, 6]]]), np.ones((1, 1, 3), np.float32), 16, 12,
        backend="fallback").numpy()[0]
    alpha = image[..., 3]
    assert alpha[:6].any() and not alpha[6:].any()       # upper world half -> top rows
    assert np.all(image[alpha == 0][:, :3] == 0)
    assert np.all(image[alpha == 1][:, :3] > 0.5)        # lit head-on by the light at the eye


def test_specular_needs_shininess_and_known_mode():
    vertices, triangles, normals = _upper_quad()
    args = (vertices, triangles, normals, np.ones_like(vertices), [0.0, 0.0, 6.0],
            [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], np.float32([[[0, 0, 6]]]),
            np.ones((1, 1, 3), np.float32), 8, 6)
    with pytest.raises(ValueError):
        mesh_renderer.mesh_renderer(*args, specular_colors=np.ones_like(vertices))
    with pytest.raises(ValueError):
        mesh_renderer.mesh_renderer(*args, specular_colors=np.ones_like(vertices),
                                    shininess_coefficients=2.0, specular_mode="blinn")


def test_default_specular_is_genovas_and_phong_is_explicit():
    vertices, triangles, normals = _upper_quad()
    args = (vertices, triangles, normals, np.full_like(vertices, 0.5), [0.0, 0.0, 6.0],
            [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], np.float32([[[0.5, 1.0, 6]]]),
            np.ones((1, 1, 3), np.float32), np.int64(16), np.int64(12), np.ones_like(vertices),
            4.0)
    default = mesh_renderer.mesh_renderer(*args, backend="fallback").numpy()
    genova = mesh_renderer.mesh_renderer(*args, specular_mode="genova", backend="fallback").numpy()
    phong = mesh_renderer.mesh_renderer(*args, specular_mode="phong", backend="fallback").numpy()
    np.testing.assert_array_equal(default, genova)
    covered = phong[..., 3] > 0
    # Per-pixel Phong keeps a highlight that Genova's normalisation over all pixels shrinks.
    assert (phong[covered, :3] - genova[covered, :3]).max() > 0.1
    assert mesh_renderer.DEFAULT_SPECULAR_MODE == "genova"
