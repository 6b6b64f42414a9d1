"""The 3D morphable model: container and file format, built-in demo model, Basel readers."""

from face_gcn.morphable.model import (FORMAT_VERSION, MorphableModel, MorphableModelError, load,
                                      save, vertex_triangle_table)

__all__ = ["FORMAT_VERSION", "MorphableModel", "MorphableModelError", "load", "save",
           "vertex_triangle_table"]
