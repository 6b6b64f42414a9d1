"""Every test of the port runs once per rasterizer backend.

His tests cannot name a backend, so the fixture sets the default of the drop-in modules
(face_gcn.render.rasterize_triangles.use_backend); "op" is skipped when the compiled library
is not built.
"""

import pytest

from face_gcn.render import op_library, rasterize_triangles

BACKENDS = [
    "fallback",
    pytest.param("op", marks=pytest.mark.skipif(
        op_library.load() is None, reason=f"compiled op not available: {op_library.status()}")),
]


@pytest.fixture(autouse=True, params=BACKENDS)
def backend(request):
    with rasterize_triangles.use_backend(request.param):
        yield request.param
