"""face_gcn: single-image 3D face reconstruction with GCN-refined texture (Lin et al., CVPR 2020).

Subpackages, in the direction data flows (nothing imports upward):
  mesh       mesh files (OBJ/PLY) and per-vertex geometry (normals)
  morphable  the 3D morphable model: container, demo generator, Basel readers, formation
  graph      mesh graphs, Laplacians, CoMA hierarchy, Chebyshev convolution layers
  render     camera, spherical-harmonics lighting, differentiable rasterizer and renderers
  cli        the `face-gcn` command

Importing the package makes TensorFlow's CPU allocator its BFC allocator unless the environment
already says otherwise (TF_CPU_ALLOCATOR_USE_BFC=false keeps the default). The default allocator
hands every large tensor back to the system and faults its pages in again on the next use: at the
paper's scale (a 35,899-vertex mesh, batch 16) an element-wise op on a [35,899, 256] block took
35 ms with it and 16 ms with BFC, and the end-to-end SavedModel ran 1.5x faster (README,
"Benchmarks"). TensorFlow reads the variable when it creates its CPU device, at its first op,
so importing face_gcn after TensorFlow has run an op leaves the allocator as it was.
"""

import os

os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

from face_gcn.version import __version__  # noqa: E402

__all__ = ["__version__"]
