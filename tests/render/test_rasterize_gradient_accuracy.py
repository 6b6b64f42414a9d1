"""The compiled op's gradient against float64 complex-step derivatives of the barycentrics.

The gradient kernel recomputes each pixel's barycentrics in double from its centre and the clip
vertices. Reusing the stored float32 barycentrics instead (as the kernel did before) gave relative
errors of 5e-5 on the sub-pixel grid below and 6e-4 on the one-pixel triangle; Genova's kernel
gives 5e-6 and 9e-5. The reference differentiates b = lambda / sum(lambda), M lambda = p, by a
complex step in each clip coordinate (exact to float64 rounding; no formula shared with the
kernel), at the pixels the op covers.
"""

import numpy as np
import pytest

from face_gcn.render import op_library

pytestmark = pytest.mark.skipif(
    op_library.load() is None,
    reason=f"compiled rasterizer op not built ({op_library.status()})")

from face_gcn.render import rasterize_op  # noqa: E402  (after the skip marker on purpose)

TOLERANCE = 1e-6  # relative L2 error of the whole [V, 4] gradient


def complex_step_gradient(vertices, triangles, ids, d_barycentrics):
    """d sum(barycentrics * d_barycentrics) / d vertices [V, 4] in float64 (z column 0)."""
    height, width = ids.shape
    rows, cols = np.nonzero(ids >= 0)
    corners = triangles[ids[rows, cols]]                                      # [P, 3]
    matrix = vertices.astype(np.float64)[corners][..., [0, 1, 3]].transpose(0, 2, 1)
    centre = np.stack([(cols + 0.5) / (0.5 * width) - 1.0, (rows + 0.5) / (0.5 * height) - 1.0,
                       np.ones(len(rows))], -1)[..., None].astype(np.complex128)
    upstream = d_barycentrics[rows, cols].astype(np.float64)
    gradient = np.zeros(vertices.shape)
    step = 1e-30
    for row, column in enumerate((0, 1, 3)):                                  # x, y, w
        for corner in range(3):
            perturbed = matrix.astype(np.complex128)
            perturbed[:, row, corner] += 1j * step
            lam = np.linalg.solve(perturbed, centre)[..., 0]
            d_bary = (lam / lam.sum(-1, keepdims=True)).imag / step
            np.add.at(gradient[:, column], corners[:, corner], np.sum(upstream * d_bary, -1))
    return gradient


def relative_error(vertices, triangles, width, height, seed=5):
    bary, ids, _ = rasterize_op.rasterize(vertices[None], triangles, width, height)
    upstream = np.random.default_rng(seed).normal(size=(1, height, width, 3)).astype(np.float32)
    gradient = rasterize_op.rasterize_grad(vertices[None], triangles, bary, ids, upstream,
                                           width, height).numpy()[0]
    ids = ids.numpy()[0]
    reference = complex_step_gradient(vertices, triangles, ids, upstream[0])
    assert np.all(gradient[:, 2] == 0)
    return np.linalg.norm(gradient - reference) / np.linalg.norm(reference), int((ids >= 0).sum())


def test_sub_pixel_grid_in_perspective():
    n = 64  # cells of about 0.7 x 0.6 pixels
    u, v = np.meshgrid(np.linspace(-0.9, 0.85, n), np.linspace(-0.8, 0.9, n))
    w = 1.0 + 0.4 * u + 0.2 * v
    z = 0.2 * np.sin(5 * u) * np.cos(4 * v)
    vertices = np.stack([u * w, v * w, z * w, w], -1).reshape(-1, 4).astype(np.float32)
    corner = (np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]).ravel()
    triangles = np.concatenate([np.stack([corner, corner + 1, corner + n + 1], -1),
                                np.stack([corner, corner + n + 1, corner + n], -1)])
    error, covered = relative_error(vertices, triangles.astype(np.int32), 48, 40)
    assert covered > 1000
    assert error < TOLERANCE


def test_one_pixel_triangle_off_centre():
    size = 224
    centre = np.array([2 * 200.3 / size - 1, 2 * 30.6 / size - 1])
    pixel = 2.0 / size
    offsets = np.array([[-0.6, -0.5], [0.7, -0.3], [0.1, 0.8]]) * pixel
    w = np.array([1.3, 0.9, 1.1])
    vertices = np.concatenate([(centre + offsets) * w[:, None], (0.2 * w)[:, None], w[:, None]],
                              -1).astype(np.float32)
    error, covered = relative_error(vertices, np.array([[0, 1, 2]], np.int32), size, size)
    assert covered == 1
    assert error < TOLERANCE
