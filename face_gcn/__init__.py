"""face_gcn: single-image 3D face reconstruction with GCN-refined texture (Lin et al., CVPR 2020).

Subpackages, in the direction data flows (nothing imports upward):
  mesh       mesh files (OBJ/PLY) and per-vertex geometry (normals)
  morphable  the 3D morphable model: container, demo generator, Basel readers, formation
  graph      mesh graphs, Laplacians, CoMA hierarchy, Chebyshev convolution layers
  render     camera, spherical-harmonics lighting, differentiable rasterizer and renderers
  cli        the `face-gcn` command
"""

from face_gcn.version import __version__

__all__ = ["__version__"]
