"""forward.reconstruct: what the Refiner reads of the photo (FaceGCN.refiner_photo)."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.reconstruction import forward
from face_gcn.render import face_renderer


def photo_channels_model(nets):
    """A texture model that outputs the Refiner's photo channels: albedo = the photo input where visible."""
    embedding, features = (keras.Input(t.shape[1:]) for t in nets.texture_gcn.inputs)
    colors = keras.layers.Lambda(lambda f: f[..., 3:6])(features)
    return keras.Model([embedding, features], colors)


def test_shading_removed_lets_a_pass_through_texture_reproduce_the_photo(tiny_nets):
    """With T_p / shading as input, copying the input relights to T_p exactly; with T_p it does not."""
    size = tiny_nets.image_size
    rng = np.random.default_rng(0)
    coefficients = np.zeros((2, coeff_lib.NUM_COEFFICIENTS), np.float32)
    coefficients[:, coeff_lib.BLOCK_SLICES["gamma"]] = rng.normal(scale=0.05, size=(2, 27))
    coefficients[:, coeff_lib.BLOCK_SLICES["tex"]] = rng.normal(scale=0.5, size=(2, 80))
    coefficients = tf.constant(coefficients)
    photo = face_renderer.render_coefficients(tiny_nets.morphable, coefficients, image_size=size).image
    images = tf.clip_by_value(photo, 0.0, 1.0) * 255.0
    errors = {}
    for mode in forward.REFINER_PHOTO_INPUTS:
        nets = dataclasses.replace(tiny_nets, texture_gcn=photo_channels_model(tiny_nets), refiner_photo=mode)
        result = forward.reconstruct(nets, images, coefficients=coefficients)
        visible = result.samples.visibility.numpy() > 0.5
        albedo = result.refined_albedo.numpy()
        inside = visible & np.all((albedo > 0.01) & (albedo < 0.99), axis=-1)  # not clipped
        assert inside.sum() > 500
        errors[mode] = np.abs(result.refined_colors.numpy() - result.samples.colors.numpy())[inside].max()
    assert errors["shading_removed"] < 1e-4
    assert errors["colors"] > 0.05


def test_refiner_photo_is_validated(tiny_nets):
    with pytest.raises(ValueError, match="refiner_photo"):
        dataclasses.replace(tiny_nets, refiner_photo="albedo")


@pytest.mark.parametrize("backend", ["op", "fallback"])
def test_one_rasterization_serves_the_coarse_render_visibility_and_refined_render(tiny_nets, backend):
    """reconstruct rasterizes the posed mesh once; each use equals rendering or sampling on its own."""
    from face_gcn.morphable import formation
    from face_gcn.render import op_library, vertex_sampling
    if backend == "op" and op_library.load() is None:
        pytest.skip("the compiled rasterizer op is not built")
    size = tiny_nets.image_size
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, size, size, 3)).astype(np.float32)
    masks = np.zeros((2, size, size), np.float32)
    masks[:, 10:50, 12:52] = 1.0
    result = forward.reconstruct(tiny_nets, images, face_mask=masks, backend=backend)
    tensors = formation.model_tensors(tiny_nets.morphable)
    alone = face_renderer.render_posed(result.coarse.posed, tensors.triangles, result.refined_colors, size,
                                       backend=backend)
    np.testing.assert_array_equal(result.refined_image.numpy(), alone[0].numpy())
    np.testing.assert_array_equal(result.refined_alpha.numpy(), alone[1].numpy())
    focal, center = face_renderer.camera_for_size(size)
    sampled = vertex_sampling.sample_vertex_colors(images / 255.0, result.coarse.posed, result.coarse.normals,
                                                   tensors.triangles, face_mask=masks,
                                                   focal=focal, center=center, backend=backend)
    np.testing.assert_array_equal(result.samples.visibility.numpy(), sampled.visibility.numpy())
    assert 0 < result.samples.visibility.numpy().mean() < 1
