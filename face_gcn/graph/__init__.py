"""Mesh graph operations: adjacency, Laplacians, CoMA mesh hierarchy, Chebyshev graph layers.

NumPy/SciPy modules (adjacency, laplacian, decimation, sampling, hierarchy) import no
TensorFlow; the Keras layers live in ``face_gcn.graph.layers``.
"""

from face_gcn.graph.adjacency import mesh_adjacency, mesh_edges
from face_gcn.graph.hierarchy import MeshHierarchy, build_hierarchy, load_or_build_hierarchy
from face_gcn.graph.laplacian import (chebyshev_operator, largest_eigenvalue, normalized_laplacian,
                                      rescaled_laplacian)

__all__ = [
    "MeshHierarchy", "build_hierarchy", "chebyshev_operator", "largest_eigenvalue", "load_or_build_hierarchy",
    "mesh_adjacency", "mesh_edges", "normalized_laplacian", "rescaled_laplacian",
]
