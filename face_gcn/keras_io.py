"""A whole Keras model (a `.keras` file) loaded by path, with errors that name the file and the fault.

Keras reports a file that is not a zip archive as "File not found" and a zip archive without a
model in it as a KeyError; here both are ValueErrors that say what the file is.
"""

from __future__ import annotations

import zipfile


def load_keras_file(path: str, what: str, custom_objects: dict | None = None):
    """keras.saving.load_model(path, compile=False, safe_mode=True); ValueError naming ``what`` and
    ``path`` for anything that is not a loadable .keras model."""
    import keras  # pylint: disable=import-outside-toplevel

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a .keras file (a .keras file is a zip archive); cannot load the {what}")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    if "config.json" not in names:
        raise ValueError(f"{path}: a zip archive but not a Keras model (no config.json); cannot load the {what}")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True, custom_objects=custom_objects)
    except Exception as error:  # pylint: disable=broad-except  (Keras raises many types for a foreign model)
        raise ValueError(f"{path}: cannot load the {what} ({type(error).__name__}: {error})") from None
