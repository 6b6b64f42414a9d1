"""The recognition-network contract: which network a configuration gets, what it returns, how files are told apart."""

import numpy as np
import pytest

from face_gcn.nets import face_descriptor, recognition


@pytest.fixture(scope="module")
def descriptor():
    import keras
    keras.utils.set_random_seed(2)
    return face_descriptor.build_face_descriptor()


def test_resolve_picks_facenet_only_with_its_weights():
    assert recognition.resolve("auto", "") == "face_descriptor"
    assert recognition.resolve("auto", "facenet.weights.h5") == "facenet"
    assert recognition.resolve("face_descriptor", "facenet.weights.h5") == "face_descriptor"
    assert recognition.resolve("none", "facenet.weights.h5") is None
    assert recognition.load("none") is None
    with pytest.raises(ValueError, match="needs its weights"):
        recognition.resolve("facenet", "")
    with pytest.raises(ValueError, match="must be one of"):
        recognition.resolve("arcface")
    with pytest.raises(ValueError, match="kind must be one of"):
        recognition.build("arcface")


def test_embed_returns_the_unit_embedding_and_the_pooled_features(descriptor):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 96, 96, 3)).astype(np.float32)
    outputs = recognition.embed(descriptor, images)
    assert outputs.embedding.shape == (3, 128) and outputs.features.shape == (3, 256)
    np.testing.assert_allclose(np.linalg.norm(outputs.embedding.numpy(), axis=1), 1.0, rtol=1e-5)
    raw = descriptor(images)["descriptor"].numpy()
    np.testing.assert_allclose(outputs.embedding.numpy(), raw / np.linalg.norm(raw, axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    assert recognition.kind_of(descriptor) == "face_descriptor" and recognition.kind_of(None) is None
    assert recognition.feature_size(descriptor) == 256 and recognition.feature_size(None) == 0
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        recognition.embed(descriptor, images[..., :1])


def test_weights_files_are_told_apart(descriptor, tmp_path):
    path = tmp_path / "mine.weights.h5"
    descriptor.save_weights(str(path))
    assert recognition.weights_kind(path) == "face_descriptor"
    loaded = recognition.build("face_descriptor", path)
    assert not loaded.trainable
    images = np.full((1, 150, 150, 3), 120.0, np.float32)
    np.testing.assert_allclose(recognition.embed(loaded, images).features.numpy(),
                               recognition.embed(descriptor, images).features.numpy(), rtol=1e-6)
    other = tmp_path / "other.weights.h5"
    other.write_bytes(b"not an HDF5 file")
    assert recognition.weights_kind(other) is None
    assert recognition.weights_kind(tmp_path / "missing.weights.h5") is None
