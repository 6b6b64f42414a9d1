"""Which morphable model a command uses: a path given by flag or environment, else the demo.

Order: an explicit path, then $FACE_GCN_MORPHABLE_MODEL, then the built-in demo model,
generated once (deterministically) into the cache directory ($FACE_GCN_CACHE, default
~/.cache/face_gcn). The Basel Face Model is never bundled: users convert their own copy with
`face-gcn convert-bfm` and point the flag or the variable at the result.
"""

from __future__ import annotations

import os

from face_gcn import fileio
from face_gcn.morphable import model as model_lib

ENV_MODEL = "FACE_GCN_MORPHABLE_MODEL"
ENV_CACHE = fileio.CACHE_ENV
DEMO_SEED = 0


def demo_model_path(seed: int = DEMO_SEED) -> str:
    from face_gcn.morphable import demo  # pylint: disable=import-outside-toplevel
    return os.path.join(fileio.cache_directory(), f"demo_model_v{demo.DEMO_VERSION}_seed{seed}.npz")


def describe(path: str | None = None) -> str:
    """One line saying which model would be used, without loading it."""
    if path:
        return f"{path} (from flag)"
    if os.environ.get(ENV_MODEL):
        return f"{os.environ[ENV_MODEL]} (from ${ENV_MODEL})"
    return f"built-in demo model ({demo_model_path()})"


def load_configured(path: str | None = None) -> model_lib.MorphableModel:
    """Loads the model chosen as described in the module docstring."""
    path = path or os.environ.get(ENV_MODEL)
    if path:
        return model_lib.load(path)
    return load_demo()


def load_demo(seed: int = DEMO_SEED) -> model_lib.MorphableModel:
    """The built-in demo model, generated on first use and cached as .npz."""
    from face_gcn.morphable import demo  # pylint: disable=import-outside-toplevel
    path = demo_model_path(seed)
    if os.path.isfile(path):
        try:
            return model_lib.load(path)
        except model_lib.MorphableModelError:
            pass  # stale or damaged cache: regenerate below
    model = demo.build_demo_model(seed=seed)
    model_lib.save(model, path)
    return model
