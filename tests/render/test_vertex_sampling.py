"""T_p sampling: bilinear sampling against NumPy, visibility on scenes built to know the answer."""

import numpy as np
import pytest

from face_gcn.morphable import configured
from face_gcn.render import face_renderer
from face_gcn.render.vertex_sampling import bilinear_sample, sample_vertex_colors

SIZE = 128
FOCAL = 1015.0 * SIZE / 224.0


def _numpy_bilinear(image, x, y):
    """Reference: pixel (i, j) centre at (j + 0.5, i + 0.5), clamped at the border."""
    h, w = image.shape[:2]
    x = min(max(x - 0.5, 0.0), w - 1.0)
    y = min(max(y - 0.5, 0.0), h - 1.0)
    j, i = int(np.floor(x)), int(np.floor(y))
    j1, i1 = min(j + 1, w - 1), min(i + 1, h - 1)
    a, b = x - j, y - i
    return ((1 - a) * (1 - b) * image[i, j] + a * (1 - b) * image[i, j1]
            + (1 - a) * b * image[i1, j] + a * b * image[i1, j1])


def test_bilinear_sample_matches_numpy():
    rng = np.random.default_rng(0)
    images = rng.random((2, 7, 9, 3))
    points = rng.uniform(-1.0, 10.0, size=(2, 20, 2))
    points[0, 0] = [4.5, 3.5]  # a pixel centre: exact pixel value
    got = bilinear_sample(images.astype(np.float32), points.astype(np.float32)).numpy()
    expected = np.array([[_numpy_bilinear(images[b], *p) for p in points[b]] for b in range(2)])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(got[0, 0], images[0, 3, 4], atol=1e-6)


def _grid(n, half, z):
    """An n x n grid quad in the plane z, normals +z; vertices row-major, CCW seen from +z."""
    ticks = np.linspace(-half, half, n)
    xs, ys = np.meshgrid(ticks, ticks)
    vertices = np.stack([xs.ravel(), ys.ravel(), np.full(n * n, z)], -1)
    triangles = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            triangles += [[a, b, e], [a, e, d]]
    return vertices, np.array(triangles)


def _two_quads():
    """Back 5x5 grid (z = 0, half-size 0.5) and a front quad (z = 1, half-size 0.3).

    Projected with focal 580 px from depth 10 (back) and 9 (front): the front quad covers
    |x|, |y| < 19.3 px, the back grid's inner 3x3 vertices sit at <= 14.5 px, its outer ring at
    29 px. So the inner 9 back vertices are occluded, the other 16 and the front 4 visible.
    """
    back_v, back_t = _grid(5, 0.5, 0.0)
    front_v, front_t = _grid(2, 0.3, 1.0)
    vertices = np.concatenate([back_v, front_v])
    triangles = np.concatenate([back_t, front_t + len(back_v)])
    ring = np.maximum(np.abs(back_v[:, 0]), np.abs(back_v[:, 1])) > 0.3
    expected = np.concatenate([ring, np.ones(4, bool)])
    return vertices.astype(np.float32), triangles.astype(np.int32), expected


def _sample(vertices, triangles, normals=None, images=None, face_mask=None, depth_tolerance=None):
    if images is None:
        images = np.random.default_rng(1).random((1, SIZE, SIZE, 3)).astype(np.float32)
    if normals is None:
        normals = np.tile([0.0, 0.0, 1.0], (len(vertices), 1))
    return sample_vertex_colors(images, vertices[None], normals[None].astype(np.float32), triangles,
                                face_mask=face_mask, focal=FOCAL, depth_tolerance=depth_tolerance)


def test_occlusion_by_a_nearer_quad():
    vertices, triangles, expected = _two_quads()
    assert expected.sum() == 20  # the construction itself: 9 of 29 hidden
    samples = _sample(vertices, triangles)
    np.testing.assert_array_equal(samples.visibility.numpy()[0], expected.astype(np.float32))


def test_a_vertex_seen_through_its_own_triangles_needs_no_depth_margin():
    """With a depth tolerance that fails every depth comparison, a vertex stays visible only where
    its pixel shows one of its own triangles, or nothing. The back grid's ring qualifies (grid
    spacing 14.5 px: a pixel centre within a pixel of a vertex lies in its own triangles or off
    the grid), its inner 9 behind the front quad do not. (The front quad's corners are left out:
    whether their pixel centres fall on the quad or on the grid behind depends on sub-pixel
    placement.)"""
    vertices, triangles, expected = _two_quads()
    samples = _sample(vertices, triangles, depth_tolerance=-100.0)
    np.testing.assert_array_equal(samples.visibility.numpy()[0, :25], expected[:25].astype(np.float32))


def test_colours_are_bilinear_samples_at_the_projection():
    vertices, triangles, _ = _two_quads()
    images = np.random.default_rng(2).random((1, SIZE, SIZE, 3)).astype(np.float32)
    samples = _sample(vertices, triangles, images=images)
    depth = 10.0 - vertices[:, 2]
    columns = FOCAL * vertices[:, 0] / depth + SIZE / 2
    rows = SIZE - (FOCAL * vertices[:, 1] / depth + SIZE / 2)  # v points up, rows down
    np.testing.assert_allclose(samples.pixels.numpy()[0], np.stack([columns, rows], -1), atol=1e-3)
    expected = np.array([_numpy_bilinear(images[0], c, r) for c, r in zip(columns, rows)])
    np.testing.assert_allclose(samples.colors.numpy()[0], expected, atol=1e-4)


def test_back_facing_outside_image_and_mask():
    vertices, triangles, expected = _two_quads()
    normals = np.tile([0.0, 0.0, 1.0], (len(vertices), 1))
    normals[0] = [0.0, 0.0, -1.0]            # a visible ring vertex turned away
    vertices = vertices.copy()
    vertices[4, 0] = 5.0                      # another ring vertex pushed off the image
    mask = np.ones((1, SIZE, SIZE), np.float32)
    mask[:, :, : SIZE // 2] = 0.0             # left half of the photo is not face
    vis = _sample(vertices, triangles, normals=normals, face_mask=mask).visibility.numpy()[0]
    left = vertices[:, 0] < 0
    want = expected.copy()
    want[[0, 4]] = False
    want &= ~left
    np.testing.assert_array_equal(vis, want.astype(np.float32))


@pytest.fixture(scope="module")
def demo_render():
    model = configured.load_demo()
    coefficients = np.zeros((1, 257), np.float32)
    coefficients[0, 225] = 0.9  # yaw about 52 degrees
    return model, face_renderer.render_coefficients(model, coefficients, image_size=SIZE)


def test_demo_face_at_yaw_samples_its_own_render(demo_render):
    model, render = demo_render
    samples = sample_vertex_colors(render.image, render.posed, render.normals, model.triangles,
                                   focal=FOCAL)
    vis = samples.visibility.numpy()[0] > 0
    colors, lit = samples.colors.numpy()[0], render.colors.numpy()[0]
    front = np.sum(render.normals.numpy()[0] * (np.array([0, 0, 10.0]) - render.posed.numpy()[0]), -1) > 0
    # Visible vertices see their own surface: where the four pixels of the bilinear footprint
    # are all covered by the face (no background mixed in at the silhouette), the render there
    # shows their lit colour.
    alpha = render.alpha.numpy()[0]
    pixels = samples.pixels.numpy()[0]
    cols = np.clip(np.floor(pixels[:, 0] - 0.5).astype(int), 0, SIZE - 2)
    rows = np.clip(np.floor(pixels[:, 1] - 0.5).astype(int), 0, SIZE - 2)
    covered = np.minimum.reduce([alpha[rows, cols], alpha[rows + 1, cols], alpha[rows, cols + 1],
                                 alpha[rows + 1, cols + 1]]) == 1
    error = np.abs(colors[vis & covered] - lit[vis & covered]).max(-1)
    assert (vis & covered).sum() > 0.5 * vis.sum()
    assert np.median(error) < 0.01 and np.mean(error < 0.05) > 0.97
    # Occlusion against an independent float64 ray cast: a front-facing vertex is hidden when
    # the segment from the camera to it crosses a triangle that is not its own, more than the
    # tolerance in front of it.
    posed = render.posed.numpy()[0].astype(np.float64)
    hidden_ray = _ray_cast_hidden(posed, model.triangles, np.nonzero(front)[0], margin=0.02)
    agree = np.mean(hidden_ray == ~vis[front])
    assert hidden_ray.sum() > 20  # the far cheek behind the nose
    assert agree > 0.98
    assert np.mean(~vis[front][hidden_ray]) > 0.85  # hidden ones are caught, not just outvoted
    assert vis.sum() > 0.3 * len(vis)


def _ray_cast_hidden(vertices, triangles, which, margin):
    """[len(which)] bool: camera->vertex segment blocked (Moller-Trumbore, float64)."""
    eye = np.array([0.0, 0.0, 10.0])
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    e1, e2 = b - a, c - a
    hidden = np.zeros(len(which), bool)
    for start in range(0, len(which), 256):
        ids = which[start:start + 256]
        direction = vertices[ids] - eye                       # [n, 3], t = 1 at the vertex
        p = np.cross(direction[:, None], e2[None])            # [n, T, 3]
        det = np.sum(e1[None] * p, -1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = eye - a                                           # [T, 3]
        u = np.sum(s[None] * p, -1) * inv
        q = np.cross(s, e1)                                   # [T, 3]
        v = np.sum(direction[:, None] * q[None], -1) * inv
        t = np.sum(e2 * q, -1)[None] * inv
        length = np.linalg.norm(direction, axis=-1)[:, None]
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0) & (t < 1 - margin / length)
        own = np.any(triangles[None, :, :] == ids[:, None, None], axis=-1)
        hidden[start:start + 256] = np.any(hit & ~own, axis=-1)
    return hidden


def test_input_validation():
    vertices, triangles, _ = _two_quads()
    with pytest.raises(ValueError):
        sample_vertex_colors(np.zeros((1, 8, 8, 3)), vertices[None], vertices[None, :, :2], triangles)
