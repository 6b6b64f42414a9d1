"""Model files that a PyPI dependency carries inside its wheel: located, never downloaded.

face_recognition_models ships dlib's trained files in its models/ folder: the face descriptor
network (dlib_face_recognition_resnet_model_v1.dat, CC0) and the 68-point shape predictor
(shape_predictor_68_face_landmarks.dat, trained on iBUG 300-W, non-commercial). The package is
located, not imported: its __init__ imports pkg_resources, which newer setuptools lack.
"""

from __future__ import annotations

import importlib.util
import os

FACE_RECOGNITION_MODELS = "face_recognition_models"


def face_recognition_models_file(name: str) -> str | None:
    """The path of models/``name`` inside the installed face_recognition_models, or None."""
    spec = importlib.util.find_spec(FACE_RECOGNITION_MODELS)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(folder, "models", name)
        if os.path.isfile(path):
            return path
    return None
