"""Per-photo outputs: the overlay at the photo's resolution, the comparison sheet, composites and metrics."""

import numpy as np

from face_gcn.data import alignment
from face_gcn.fit import outputs


def test_photo_overlay_renders_at_the_photos_resolution_inside_the_face_mask():
    """The mean face rendered through a rotated, scaled alignment: pasted only where the (half) face mask
    says face, every pixel a mix of the photo and the render's colour (no drawn edge), solid inside, the
    photo untouched elsewhere, and where a crop-space render would land."""
    from face_gcn.morphable import configured
    from face_gcn.render import face_renderer

    model = configured.load_demo()
    size = 64
    fitted = face_renderer.render_coefficients(model, np.zeros((1, 257), np.float32), size)
    posed = fitted.posed.numpy()[0]
    red = np.tile(np.array([[1.0, 0.0, 0.0]], np.float32), (model.num_vertices, 1))
    angle, scale = np.deg2rad(20.0), 0.4  # the photo is 2.5x the crop's resolution, turned by 20 degrees
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transform = np.hstack([linear, [[-2.0], [-27.0]]])  # the photo centre to the crop centre
    photo = np.random.default_rng(0).integers(0, 256, (220, 260, 3)).astype(np.uint8)
    face_mask = np.ones((size, size), np.uint8)
    face_mask[size // 2:] = 0  # the lower half of the crop is not face (a hand, a beard...)
    result = outputs.photo_overlay(model, posed, red, face_mask, transform, photo, size)
    assert result.shape == photo.shape and result.dtype == np.uint8

    changed = np.any(result != photo, axis=-1)
    rows, columns = np.nonzero(changed)
    crop_points = alignment.apply_transform(transform, np.stack([columns, rows], 1).astype(np.float64))
    assert crop_points[:, 1].max() < size // 2 + 1  # nothing pasted where the mask says no face
    # each pixel = a red + (1 - a) photo for one a in [0, 1]: the render's colour or the photo, never an edge
    photo_f, result_f = photo.astype(np.float64), result.astype(np.float64)
    direction = np.array([255.0, 0.0, 0.0]) - photo_f
    a = np.clip((direction * (result_f - photo_f)).sum(-1) / np.maximum((direction ** 2).sum(-1), 1e-9), 0, 1)
    residual = np.abs(photo_f + a[..., None] * direction - result_f).max(-1)
    assert residual.max() <= 1.0
    solid = np.all(result == [255, 0, 0], axis=-1)
    assert solid.sum() > 300  # solid inside the face, feathered only near the edge
    # the covered region lands where the crop-space render's covered (upper-half) pixels map to
    covered = fitted.alpha.numpy()[0] > 0.5
    covered[size // 2:] = False
    crop_rows, crop_columns = np.nonzero(covered)
    expected = alignment.apply_transform(alignment.invert_transform(transform),
                                         np.stack([crop_columns, crop_rows], 1).astype(np.float64)).mean(0)
    got = np.array([columns.mean(), rows.mean()])
    assert np.abs(got - expected).max() < 1.5, (got, expected)


def test_feathered_alpha_ramps_inward_and_the_sheet_puts_panels_side_by_side():
    coverage = np.zeros((40, 40), np.float32)
    coverage[5:35, 5:35] = 1
    alpha = outputs.feathered_alpha(coverage, np.ones((40, 40)), feather_px=4)
    assert alpha[20, 20] == 1.0 and alpha[5, 20] < 0.2 and alpha[4, 20] == 0.0
    assert np.all(np.diff(alpha[20, 5:21]) >= 0)  # rising from the edge towards the middle
    assert not outputs.feathered_alpha(coverage, np.zeros((40, 40)), 4).any()
    panels = [np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 3), np.float32)]
    sheet = outputs.comparison_sheet(panels)
    assert sheet.shape == (8, 20, 3) and sheet.dtype == np.uint8
    assert np.all(sheet[:, 8:12] == 255) and np.all(sheet[:, 12:] == 255) and not sheet[:, :8].any()


def test_composite_and_metrics_of_a_perfect_render():
    crop = np.random.default_rng(1).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    alpha = np.zeros((32, 32), np.float32)
    alpha[8:24, 8:24] = 1
    mask = np.ones((32, 32), np.uint8)
    render = crop.astype(np.float32) / 255.0 * alpha[..., None]
    composited = outputs.composite(render, alpha, crop / 255.0)
    np.testing.assert_allclose(composited, crop / 255.0, atol=1e-6)
    psnr, ssim = outputs.face_metrics(crop, composited, mask, alpha)
    assert psnr > 100 and abs(ssim - 1.0) < 1e-9
