"""Model directories: written atomically, loaded in a fresh process with identical outputs, bad ones named."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from face_gcn.reconstruction import forward, model_dir

SIZE = 64


@pytest.fixture(scope="module")
def nets(tiny_nets):
    return tiny_nets


def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (2, SIZE, SIZE, 3)).astype(np.uint8)


LOAD = textwrap.dedent("""
    import sys, numpy as np
    from face_gcn.reconstruction import forward, model_dir
    nets = model_dir.load_model_dir(sys.argv[1])
    result = forward.reconstruct(nets, np.load(sys.argv[2]))
    np.savez(sys.argv[3], albedo=result.refined_albedo.numpy(), image=result.refined_image.numpy(),
             coefficients=result.coefficients.numpy())
""")


def load_in_a_fresh_process(path, batch, tmp_path) -> dict:
    """LOAD run in a new interpreter on ``batch``: {"albedo", "image", "coefficients"} arrays."""
    np.save(tmp_path / "images.npy", batch)
    out = subprocess.run([sys.executable, "-c", LOAD, path, str(tmp_path / "images.npy"), str(tmp_path / "out.npz")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    with np.load(tmp_path / "out.npz", allow_pickle=False) as got:
        return dict(got)


def test_round_trip_in_a_fresh_process(nets, tmp_path):
    path = str(tmp_path / "model")
    model_dir.save_model_dir(path, nets, {"steps": 7})
    meta = json.load(open(os.path.join(path, model_dir.META_FILE)))
    assert meta["image_size"] == SIZE and meta["training"] == {"steps": 7} and not meta["uses_facenet"]
    batch = images()
    got = load_in_a_fresh_process(path, batch, tmp_path)
    expected = forward.reconstruct(nets, batch)
    np.testing.assert_allclose(got["albedo"], expected.refined_albedo.numpy(), atol=1e-5)
    np.testing.assert_allclose(got["image"], expected.refined_image.numpy(), atol=1e-5)
    np.testing.assert_allclose(got["coefficients"], expected.coefficients.numpy(), atol=1e-5)
    # saving again replaces the directory whole
    model_dir.save_model_dir(path, nets, {"steps": 8})
    assert json.load(open(os.path.join(path, model_dir.META_FILE)))["training"] == {"steps": 8}
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no staging or old copies left


def test_a_recognizer_travels_with_the_model(nets, tmp_path):
    """dlib's descriptor (random weights) joins the embedding; its weights are saved, named in the meta
    and loaded back in a fresh process with identical outputs."""
    import dataclasses

    import keras

    from face_gcn.nets import face_descriptor, gcn, recognition
    from face_gcn.nets import regressor as regressor_lib
    keras.utils.set_random_seed(5)
    recognizer = face_descriptor.build_face_descriptor()
    config = gcn.GCNConfig(embedding_size=forward.embedding_size(regressor_lib.feature_size("compact"), 256),
                           decoder_widths=(4, 4, 4, 4, 4), refiner_widths=(4, 4, 4, 4), refiner_latent=8, K=2,
                           combiner_init="glorot_normal")
    from face_gcn.graph import hierarchy as hierarchy_lib
    levels = hierarchy_lib.load_or_build_hierarchy(nets.morphable.mean_shape, nets.morphable.triangles, (4, 4, 4, 4))
    with_recognizer = dataclasses.replace(nets, recognizer=recognizer,
                                          texture_gcn=gcn.build_texture_gcn(levels, config))
    path = str(tmp_path / "model")
    model_dir.save_model_dir(path, with_recognizer)
    meta = json.load(open(os.path.join(path, model_dir.META_FILE)))
    assert meta["recognizer"] == "face_descriptor" and not meta["uses_facenet"]
    assert meta["files"]["face_descriptor"] == "face_descriptor.weights.h5"
    assert recognition.weights_kind(os.path.join(path, "face_descriptor.weights.h5")) == "face_descriptor"
    batch = images()
    got = load_in_a_fresh_process(path, batch, tmp_path)
    expected = forward.reconstruct(with_recognizer, batch)
    # the embedding is the regressor's pool features, then the descriptor's 256
    features = recognition.embed(recognizer, batch).features.numpy()
    np.testing.assert_allclose(expected.embedding.numpy()[:, -256:], features, rtol=1e-5, atol=1e-6)
    assert np.abs(features).max() > 0
    np.testing.assert_allclose(got["albedo"], expected.refined_albedo.numpy(), atol=1e-5)
    # a directory written before the recognizer choice (uses_facenet only) still reads as it was
    legacy = dict(meta)
    del legacy["recognizer"]
    assert model_dir.recognizer_kind(dict(legacy, uses_facenet=False)) is None
    assert model_dir.recognizer_kind(dict(legacy, uses_facenet=True)) == "facenet"
    (tmp_path / "model" / model_dir.META_FILE).write_text(json.dumps(dict(meta, recognizer="arcface")))
    with pytest.raises(model_dir.ModelDirError, match="recognizer must be"):
        model_dir.load_model_dir(path)


def test_bad_directories_are_named(nets, tmp_path):
    with pytest.raises(model_dir.ModelDirError, match="not found"):
        model_dir.load_model_dir(str(tmp_path / "missing"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(model_dir.ModelDirError, match="no face_model.json"):
        model_dir.load_model_dir(str(tmp_path / "other"))
    with pytest.raises(model_dir.ModelDirError, match="refusing"):
        model_dir.save_model_dir(str(tmp_path / "other"), nets)
    path = tmp_path / "model"
    model_dir.save_model_dir(str(path), nets)
    meta = json.loads((path / model_dir.META_FILE).read_text())
    (path / model_dir.META_FILE).write_text(json.dumps(dict(meta, version=99)))
    with pytest.raises(model_dir.ModelDirError, match="version 99"):
        model_dir.load_model_dir(str(path))
    (path / model_dir.META_FILE).write_text(json.dumps(dict(meta, coarse_fit_steps=-1)))
    with pytest.raises(model_dir.ModelDirError, match="coarse_fit_steps"):
        model_dir.load_model_dir(str(path))
    (path / model_dir.META_FILE).write_text(json.dumps(dict(meta, coarse_fit_steps=7)))
    assert model_dir.load_model_dir(str(path)).fit_steps == 7
    (path / model_dir.META_FILE).write_text(json.dumps(dict(meta, refiner_photo="albedo")))
    with pytest.raises(model_dir.ModelDirError, match="refiner_photo"):
        model_dir.load_model_dir(str(path))
    (path / model_dir.META_FILE).write_text(json.dumps(dict(meta, refiner_photo="shading_removed")))
    assert model_dir.load_model_dir(str(path)).refiner_photo == "shading_removed"
    assert meta["refiner_photo"] == "colors"  # written by save_model_dir
    (path / model_dir.META_FILE).write_text(json.dumps(dict(meta, image_size=128)))
    with pytest.raises(model_dir.ModelDirError, match="inconsistent.*image_size 128"):
        model_dir.load_model_dir(str(path))
    (path / model_dir.META_FILE).write_text(json.dumps(meta))
    (path / "texture_gcn.keras").write_bytes(b"not a zip")
    with pytest.raises(model_dir.ModelDirError, match="texture_gcn"):
        model_dir.load_model_dir(str(path))
    os.remove(path / "regressor.keras")
    with pytest.raises(model_dir.ModelDirError, match="missing regressor"):
        model_dir.load_model_dir(str(path))


def test_forward_trains_only_the_texture_gcn(nets):
    batch = tf.constant(images(), tf.float32)
    with tf.GradientTape() as tape:
        result = forward.reconstruct(nets, batch, training=True)
        loss = tf.reduce_mean(result.refined_image) + tf.reduce_mean(result.coarse.image)
    grads = tape.gradient(loss, nets.regressor.trainable_variables + nets.texture_gcn.trainable_variables)
    count = len(nets.regressor.trainable_variables)
    assert all(g is None for g in grads[:count])
    assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads[count:])
    # T' in [0, 1] and lit by the coarse light: where the light is the default, T~' = T' * shading
    assert 0.0 <= float(tf.reduce_min(result.refined_albedo)) and float(tf.reduce_max(result.refined_albedo)) <= 1.0
    with pytest.raises(ValueError, match="images must be"):
        forward.reconstruct(nets, tf.zeros([1, SIZE + 1, SIZE, 3]))
