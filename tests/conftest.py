"""Shared test fixtures: deterministic seeds, quiet TensorFlow, an isolated model cache."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


MAX_TEST_WORKERS = 4  # each worker is one TensorFlow process (up to about 3 GB)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pytest.ini): one worker per usable core, at most MAX_TEST_WORKERS. Whole files go to
    one worker (--dist loadfile), so module fixtures run once."""
    del config
    return max(1, min(MAX_TEST_WORKERS, len(os.sched_getaffinity(0))))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session writes generated models into its own cache directory."""
    monkeypatch.setenv("FACE_GCN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("FACE_GCN_MORPHABLE_MODEL", raising=False)


TINY_SIZE = 64


def build_tiny_nets(seed: int = 3, recognizer=None):
    """A small but complete FaceGCN (compact regressor at 64 px, narrow GCNs on the demo model);
    a recognizer (nets.recognition) adds its features to the GCNs' embedding."""
    import keras

    from face_gcn.graph import hierarchy as hierarchy_lib
    from face_gcn.morphable import configured
    from face_gcn.nets import gcn, recognition
    from face_gcn.nets import regressor as regressor_lib
    from face_gcn.reconstruction import forward

    keras.utils.set_random_seed(seed)
    morphable = configured.load_demo()
    regressor = regressor_lib.build_regressor((TINY_SIZE, TINY_SIZE, 3), backbone="compact")
    hierarchy = hierarchy_lib.load_or_build_hierarchy(morphable.mean_shape, morphable.triangles, (4, 4, 4, 4))
    embedding_size = forward.embedding_size(regressor_lib.feature_size("compact"), recognition.feature_size(recognizer))
    config = gcn.GCNConfig(embedding_size=embedding_size, decoder_widths=(4, 4, 4, 4, 4),
                           refiner_widths=(4, 4, 4, 4), refiner_latent=8, K=2,
                           combiner_init="glorot_normal")  # untrained but not constant: outputs tell inputs apart
    return forward.FaceGCN(morphable, regressor, gcn.build_texture_gcn(hierarchy, config), recognizer, TINY_SIZE)


@pytest.fixture(scope="session")
def tiny_nets():
    """build_tiny_nets() once per session (tests must not train it)."""
    return build_tiny_nets()


@pytest.fixture(scope="session")
def tiny_nets_with_descriptor():
    """build_tiny_nets() with dlib's face descriptor (converted from the dlib-bin wheel, cached) in the
    embedding, as the demo and `train` build by default."""
    from face_gcn.nets import recognition
    return build_tiny_nets(recognizer=recognition.load("face_descriptor"))


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_nets, tmp_path_factory):
    """A train-style workdir holding the tiny networks as its model directory: (workdir, workdir/model)."""
    from face_gcn.reconstruction import model_dir
    workdir = tmp_path_factory.mktemp("tiny_run")
    model_dir.save_model_dir(str(workdir / "model"), tiny_nets, {"steps": 1})
    return workdir, str(workdir / "model")
