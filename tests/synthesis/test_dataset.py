"""Synthetic faces: detail outside the albedo basis, images that follow the forward model
(checked against a float64 NumPy re-implementation), records the training pipeline reads."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.data import pipeline
from face_gcn.synthesis import dataset as synthetic
from face_gcn.morphable import configured
from face_gcn.render import face_renderer

SIZE = 96


@pytest.fixture(scope="module")
def model():
    return configured.load_demo()


@pytest.fixture(scope="module")
def batch(model):
    return synthetic.generate_batch(model, 7, "train", range(4),
                                    synthetic.SyntheticConfig(image_size=SIZE))


# ----------------------------------------------------------------------------- reference math

def _rotation(angles):
    """Deng's R = Rz Ry Rx, float64, written out from the three axis rotations."""
    x, y, z = angles
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _posed_and_normals(model, coefficients):
    c = coefficients.astype(np.float64)
    mean = model.mean_shape.astype(np.float64)
    shape = (mean + (model.id_basis @ c[:80]).reshape(-1, 3)
             + (model.exp_basis @ c[80:144]).reshape(-1, 3) - mean.mean(axis=0))
    posed = shape @ _rotation(c[224:227]).T + c[254:257]
    t = model.triangles
    face = np.cross(posed[t[:, 1]] - posed[t[:, 0]], posed[t[:, 2]] - posed[t[:, 0]])
    face /= np.linalg.norm(face, axis=1, keepdims=True)
    normals = np.zeros_like(posed)
    for corner in range(3):
        np.add.at(normals, t[:, corner], face)
    return posed, normals / np.linalg.norm(normals, axis=1, keepdims=True)


def _sh_shading(normals, gamma):
    """[V, 3] shading from DESIGN.md's constants, Deng's basis order and signs."""
    a0, a1, a2 = math.pi, 2 * math.pi / math.sqrt(3), 2 * math.pi / math.sqrt(8)
    c0, c1 = 1 / math.sqrt(4 * math.pi), math.sqrt(3) / math.sqrt(4 * math.pi)
    c2 = 3 * math.sqrt(5) / math.sqrt(12 * math.pi)
    x, y, z = normals.T
    basis = np.stack([np.full_like(x, a0 * c0), -a1 * c1 * y, a1 * c1 * z, -a1 * c1 * x,
                      a2 * c2 * x * y, -a2 * c2 * y * z,
                      a2 * c2 * 0.5 / math.sqrt(3) * (3 * z ** 2 - 1), -a2 * c2 * x * z,
                      a2 * c2 * 0.5 * (x ** 2 - y ** 2)], axis=1)
    per_channel = gamma.astype(np.float64).reshape(3, 9).copy()
    per_channel[:, 0] += 0.8
    return basis @ per_channel.T


def _pixels(posed, size):
    """Deng's pinhole at image size ``size`` -> (column, row) pixel coordinates, y down."""
    focal = 1015.0 * size / 224.0
    depth = 10.0 - posed[:, 2]
    u = focal * posed[:, 0] / depth + size / 2
    v = focal * posed[:, 1] / depth + size / 2
    return np.stack([u, size - v], axis=1)


# ----------------------------------------------------------------------------- detail

def test_detail_energy_lies_outside_the_albedo_basis(model):
    details = np.stack([synthetic.detail_albedo(model, np.random.default_rng(i))
                        for i in range(6)]).astype(np.float64)
    span = np.concatenate([model.albedo_basis.astype(np.float64),
                           model.mean_albedo.astype(np.float64).reshape(-1, 1)], axis=1)
    for detail in details:
        flat = detail.reshape(-1)
        projection = span @ np.linalg.lstsq(span, flat, rcond=None)[0]
        residual = np.sum((flat - projection) ** 2) / np.sum(flat ** 2)
        assert residual > 0.8
    assert synthetic.basis_residual_fraction(model, details) == pytest.approx(
        np.sum((details.reshape(6, -1).T - span @ np.linalg.lstsq(
            span, details.reshape(6, -1).T, rcond=None)[0]) ** 2) / np.sum(details ** 2),
        rel=1e-6)
    # A smooth field inside the span: the measure must report ~0 for it.
    smooth = (model.albedo_basis[:, :5] @ np.ones(5)).reshape(-1, 3)
    assert synthetic.basis_residual_fraction(model, smooth) < 1e-6


def test_detail_has_moles_brows_and_lips_and_is_seeded(model):
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    detail = synthetic.detail_albedo(model, rng_a)
    np.testing.assert_array_equal(detail, synthetic.detail_albedo(model, rng_b))
    assert not np.array_equal(detail, synthetic.detail_albedo(model, np.random.default_rng(4)))
    assert detail.shape == (model.num_vertices, 3) and detail.dtype == np.float32
    assert detail.min() < -0.15                     # at least one dark mole
    marks = model.mean_shape[model.landmark_indices]
    xy = model.mean_shape[:, :2]
    near_brow = np.min(np.linalg.norm(xy[:, None] - marks[None, 17:27, :2], axis=2), axis=1) < 0.03
    near_lips = np.min(np.linalg.norm(xy[:, None] - marks[None, 48:60, :2], axis=2), axis=1) < 0.03
    far = ~near_brow & ~near_lips & ~model.skin_mask
    assert np.std(detail[near_brow]) > 0.02         # brow strands
    assert np.std(detail[near_lips]) > 0.01         # lip cracks
    assert np.std(detail[far]) < np.std(detail[near_brow])
    assert np.count_nonzero(synthetic.detail_albedo(model, np.random.default_rng(1), 0.0)) == 0


# ----------------------------------------------------------------------------- samples

def test_generation_is_deterministic_and_independent_of_batching(model, batch):
    config = synthetic.SyntheticConfig(image_size=SIZE)
    again = synthetic.generate_batch(model, 7, "train", range(4), config)
    np.testing.assert_array_equal(batch.images, again.images)
    np.testing.assert_array_equal(batch.masks, again.masks)
    alone = synthetic.generate_batch(model, 7, "train", [2], config)
    np.testing.assert_array_equal(alone.coefficients[0], batch.coefficients[2])
    np.testing.assert_array_equal(alone.albedo[0], batch.albedo[2])
    # Batched float rounding may differ in the last bit: at most a stray edge pixel changes.
    changed = np.abs(alone.images[0].astype(int) - batch.images[2]).max(axis=-1) > 1
    assert changed.mean() < 0.002
    other = synthetic.generate_batch(model, 7, "heldout", [2], config)
    assert not np.array_equal(other.coefficients[0], batch.coefficients[2])
    assert batch.sources == tuple(f"synthetic:7:train:{i}" for i in range(4))


def test_shapes_albedo_and_mask_inside_coverage(model, batch):
    num_v = model.num_vertices
    assert batch.images.shape == (4, SIZE, SIZE, 3) and batch.images.dtype == np.uint8
    assert batch.masks.shape == (4, SIZE, SIZE) and set(np.unique(batch.masks)) <= {0, 1}
    assert batch.albedo.shape == batch.detail.shape == (4, num_v, 3)
    base = model.mean_albedo + np.einsum("vk,bk->bv", model.albedo_basis,
                                         batch.coefficients[:, 144:224]).reshape(4, num_v, 3)
    np.testing.assert_allclose(batch.albedo, np.clip(base + batch.detail, 0, 1), atol=1e-5)
    assert np.all(batch.masks <= batch.coverage)
    for mask, coverage in zip(batch.masks, batch.coverage):
        assert 0.5 * coverage.sum() < mask.sum() < coverage.sum()   # the rim is left out


def test_landmarks_fall_on_the_face_in_order(batch):
    for landmarks, mask in zip(batch.landmarks, batch.masks):
        columns, rows = np.floor(landmarks).astype(int).T
        assert np.all(mask[rows, columns] == 1)
        left_eye, right_eye, nose, mouth_left, mouth_right = landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    np.testing.assert_allclose(batch.landmarks[:, 0], batch.landmarks68[:, 36:42].mean(axis=1),
                               rtol=1e-6)


def test_image_is_ground_truth_albedo_times_sh_shading(model):
    size = 192
    sample = synthetic.generate_batch(model, 11, "train", [0],
                                      synthetic.SyntheticConfig(image_size=size, noise_std=0.0))
    coefficients = sample.coefficients[0]
    posed, normals = _posed_and_normals(model, coefficients)
    expected = sample.albedo[0].astype(np.float64) * _sh_shading(normals, coefficients[227:254])
    pixels = _pixels(posed, size)
    to_camera = np.array([0.0, 0.0, 10.0]) - posed
    facing = np.sum(normals * to_camera, axis=1) / np.linalg.norm(to_camera, axis=1)
    chosen = model.front_mask & (facing > 0.7)
    columns, rows = np.floor(pixels[chosen]).astype(int).T
    assert np.all(sample.coverage[0][rows, columns] == 1)
    observed = sample.images[0][rows, columns] / 255.0
    error = np.abs(observed - np.clip(expected[chosen], 0, 1))
    # Pixel centres sit up to half a pixel off the vertex (a third of an edge here).
    assert np.median(error) < 0.01
    assert np.percentile(error, 90) < 0.03
    # The detail is visible: without it the same comparison is clearly worse around it.
    spots = np.abs(sample.detail[0][chosen]).max(axis=1) > 0.1
    assert spots.sum() >= 3
    without = np.clip(expected[chosen] - sample.detail[0][chosen]
                      * _sh_shading(normals, coefficients[227:254])[chosen], 0, 1)
    assert np.median(np.abs(observed - without)[spots]) > 2 * np.median(error[spots])


def test_render_with_albedo_matches_the_coefficient_renderer(model, batch):
    base = face_renderer.render_coefficients(model, batch.coefficients, SIZE)
    render = synthetic.render_with_albedo(model, batch.coefficients, base.albedo,
                                          model.front_mask, SIZE)
    np.testing.assert_allclose(render.image.numpy(), base.image.numpy(), atol=1e-5)
    np.testing.assert_array_equal(render.alpha.numpy(), base.alpha.numpy())
    np.testing.assert_allclose(render.landmarks.numpy(), base.landmarks.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="albedo"):
        synthetic.render_with_albedo(model, batch.coefficients, base.albedo[:, :10],
                                     model.front_mask, SIZE)
    with pytest.raises(ValueError, match="vertex_mask"):
        synthetic.render_with_albedo(model, batch.coefficients, base.albedo,
                                     model.front_mask[:10], SIZE)


def test_backgrounds_differ_and_are_not_flat(batch):
    outside = (batch.coverage[0] == 0) & (batch.coverage[1] == 0)
    first, second = (batch.images[i][outside].astype(np.float64) for i in (0, 1))
    assert outside.sum() > 0.2 * SIZE * SIZE
    assert np.mean(np.abs(first - second)) > 20
    assert first.std(axis=0).mean() > 10


# ----------------------------------------------------------------------------- records

def test_dataset_files_read_by_the_training_pipeline(model, batch, tmp_path):
    config = synthetic.SyntheticConfig(image_size=SIZE)
    manifest = synthetic.write_dataset(str(tmp_path / "a"), model, 5, 7, config=config,
                                       num_shards=2, batch_size=2)
    synthetic.write_dataset(str(tmp_path / "b"), model, 5, 7, config=config, num_shards=2,
                            batch_size=2)
    assert manifest["shard_counts"] == [2, 3] and manifest["image_size"] == SIZE
    for name in manifest["shards"]:   # same seed, same examples
        records = [[tf.train.Example.FromString(r.numpy())
                    for r in tf.data.TFRecordDataset(str(tmp_path / folder / name))]
                   for folder in ("a", "b")]
        assert records[0] == records[1]
    truth = synthetic.load_ground_truth(str(tmp_path / "a"))
    assert truth["coefficients"].shape == (5, 257) and truth["albedo"].dtype == np.float32
    assert truth["albedo"].shape == truth["detail"].shape == (5, model.num_vertices, 3)
    np.testing.assert_array_equal(truth["albedo"][:4], batch.albedo)

    dataset = pipeline.make_dataset(str(tmp_path / "a"), SIZE, batch_size=5, training=False)
    (element,) = list(dataset)
    assert element["image"].shape == (5, SIZE, SIZE, 3)
    assert element["mask"].shape == (5, SIZE, SIZE, 1)
    assert [s.decode() for s in element["source"].numpy()] == list(truth["sources"])
    # rendered in batches of 2 here and of 4 in `batch`: pixels may differ by float rounding in the batched
    # matrix products (module docstring), by one 8-bit level at most and rarely
    difference = np.abs(element["image"].numpy()[:4] - batch.images.astype(np.float32))
    assert difference.max() <= 1.0 and np.mean(difference > 0) < 1e-3, (difference.max(), np.mean(difference > 0))
    np.testing.assert_array_equal(element["mask"].numpy()[:4, ..., 0], batch.masks)
    np.testing.assert_allclose(element["landmarks"].numpy()[:4], batch.landmarks, rtol=0, atol=1e-4)  # pixels
    np.testing.assert_array_equal(element["transform"].numpy(),
                                  np.tile([[1.0, 0, 0], [0, 1.0, 0]], (5, 1, 1)))
    # The ground truth travels in the records (optional schema fields) and matches the npz.
    np.testing.assert_array_equal(element["has_ground_truth"].numpy(), np.ones(5))
    np.testing.assert_array_equal(element["coefficients"].numpy(), truth["coefficients"])
    np.testing.assert_array_equal(element["landmarks68"].numpy(), truth["landmarks68"])
    np.testing.assert_allclose(element["landmarks68"].numpy()[:4], batch.landmarks68, atol=1e-4)
    training = pipeline.make_dataset(str(tmp_path / "a"), SIZE, batch_size=2, training=True,
                                     augmentation=pipeline.Augmentation(), seed=1)
    assert next(iter(training))["image"].shape == (2, SIZE, SIZE, 3)
    assert os.path.isfile(tmp_path / "a" / "manifest.json")


def test_bad_arguments_are_rejected(model, tmp_path):
    with pytest.raises(ValueError, match="split"):
        synthetic.sample_rng(0, "test", 0)
    with pytest.raises(ValueError, match="num_shards"):
        synthetic.write_dataset(str(tmp_path), model, 2, 0, num_shards=3)
    with pytest.raises(ValueError, match="image_size"):
        synthetic.SyntheticConfig(image_size=8)
    assert tf.io.gfile.listdir(str(tmp_path)) == []
