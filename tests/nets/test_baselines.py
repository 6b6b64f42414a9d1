"""Table 2 refiner baselines: fully connected and UV-map CNN."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.graph.hierarchy import load_or_build_hierarchy
from face_gcn.morphable import configured
from face_gcn.nets import baselines, gcn


@pytest.fixture(scope="module")
def demo():
    return configured.load_demo()


def test_fully_connected_refiner(demo):
    v = demo.num_vertices
    model = baselines.fully_connected_refiner(v, hidden=8, channels=5)
    assert model.count_params() == (7 * v + 1) * 8 + (8 + 1) * v * 5
    assert model(np.zeros((2, v, 7), np.float32)).shape == (2, v, 5)


def test_uv_resampling_is_an_interpolation(demo):
    resolution = 64
    to_uv, from_uv = baselines.uv_resampling(demo.mean_shape, demo.triangles, resolution)
    assert to_uv.shape == (resolution ** 2, demo.num_vertices)
    assert from_uv.shape == (demo.num_vertices, resolution ** 2)
    # Rows are convex weights: covered texels and every vertex sum to 1.
    rows = np.asarray(to_uv.sum(1)).ravel()
    assert set(np.round(rows, 6)) <= {0.0, 1.0} and rows.sum() > 0.3 * resolution ** 2
    np.testing.assert_allclose(np.asarray(from_uv.sum(1)).ravel(), 1.0, atol=1e-12)
    assert to_uv.min() >= 0 and from_uv.min() >= 0
    # A linear function of position survives vertex -> UV -> vertex up to about a texel.
    f = demo.mean_shape[:, :2].astype(np.float64)
    error = np.abs(from_uv @ (to_uv @ f) - f)
    texel = np.ptp(demo.mean_shape[:, :2], 0).max() / (resolution * (1 - 2 * baselines.UV_MARGIN))
    assert np.median(error) < 0.1 * texel and error.max() < 2.0 * texel


def test_uv_cnn_refiner_plugs_into_texture_model(demo, tmp_path):
    hierarchy = load_or_build_hierarchy(demo.mean_shape, demo.triangles)
    refiner = baselines.uv_cnn_refiner(demo.mean_shape, demo.triangles, resolution=32, widths=(4, 8),
                                       channels=3)
    config = gcn.GCNConfig(embedding_size=4, decoder_widths=(2, 2, 2, 2, 2), K=2, combiner_init="glorot_normal")
    model = gcn.build_texture_gcn(hierarchy, config, refiner=refiner)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(1, 4)).astype(np.float32),
              rng.uniform(-1, 1, (1, demo.num_vertices, 7)).astype(np.float32)]
    with tf.GradientTape() as tape:
        colors = model(inputs)
        loss = tf.reduce_mean(tf.square(colors - 0.3))
    assert colors.shape == (1, demo.num_vertices, 3)
    grads = tape.gradient(loss, refiner.trainable_variables)
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in grads)
    path = str(tmp_path / "uv.keras")
    model.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path)(inputs).numpy(), colors.numpy())
    with pytest.raises(ValueError):
        baselines.uv_cnn_refiner(demo.mean_shape, demo.triangles, resolution=30, widths=(4, 8, 8))


def test_refiner_replacement_is_checked(demo):
    hierarchy = load_or_build_hierarchy(demo.mean_shape, demo.triangles)
    wrong = baselines.fully_connected_refiner(10, hidden=2, channels=2)
    with pytest.raises(ValueError, match="refiner must map"):
        gcn.build_texture_gcn(hierarchy, gcn.GCNConfig(embedding_size=4, K=2), refiner=wrong)
