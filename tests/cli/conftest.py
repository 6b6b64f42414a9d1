"""Fixtures for the CLI tests: run `face-gcn` in a fresh Python process, as a user would.

Test modules here are imported with --import-mode=importlib, so they cannot import a helper
module; the runners come as session fixtures instead.
"""

import os
import subprocess
import sys

import pytest


def _environment(cache=None):
    """os.environ with quiet TensorFlow, no FACE_GCN_MORPHABLE_MODEL (the built-in demo model) and,
    when `cache` is given, FACE_GCN_CACHE=cache."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if cache is not None:
        env["FACE_GCN_CACHE"] = str(cache)
    env.pop("FACE_GCN_MORPHABLE_MODEL", None)
    return env


def _run_subcommand(module_name, *arguments, cache=None, timeout=300, cwd=None):
    """Runs face_gcn.cli.<module_name>.main under absl.app in a new interpreter, with argv[0]
    'face-gcn <module-name>' (underscores as dashes), as face_gcn.cli.main does.

    Returns the subprocess.CompletedProcess (text stdout and stderr).
    """
    program = "face-gcn " + module_name.replace("_", "-")
    code = (f"import sys; from absl import app; from face_gcn.cli import {module_name}; "
            f"app.run({module_name}.main, argv=[{program!r}] + sys.argv[1:])")
    return subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True,
                          timeout=timeout, env=_environment(cache), cwd=cwd)


def _run_main(*arguments, cache=None, timeout=300):
    """Runs `python -m face_gcn.cli.main ARGUMENTS...` (the installed `face-gcn` entry point)."""
    return subprocess.run([sys.executable, "-m", "face_gcn.cli.main", *arguments], capture_output=True,
                          text=True, timeout=timeout, env=_environment(cache))


@pytest.fixture(scope="session")
def run_subcommand():
    """run_subcommand(module_name, *arguments, cache=None, timeout=300, cwd=None) -> CompletedProcess."""
    return _run_subcommand


@pytest.fixture(scope="session")
def run_main():
    """run_main(*arguments, cache=None, timeout=300) -> CompletedProcess."""
    return _run_main
