"""Shared test fixtures: deterministic seeds, quiet TensorFlow, an isolated model cache."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session writes generated models into its own cache directory."""
    monkeypatch.setenv("FACE_GCN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("FACE_GCN_MORPHABLE_MODEL", raising=False)
