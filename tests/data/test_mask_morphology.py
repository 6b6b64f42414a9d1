"""The authors' face-mask erosion against OpenCV's morphology on the same footprints."""

import cv2
import numpy as np
import pytest

from face_gcn.data import mask_morphology


def _opencv_reference(mask: np.ndarray, dilation: int, erosion: int) -> np.ndarray:
    shape = cv2.MORPH_ELLIPSE
    out = cv2.dilate(mask, cv2.getStructuringElement(shape, (dilation, dilation)))
    for _ in range(2):
        out = cv2.erode(out, cv2.getStructuringElement(shape, (erosion, erosion)))
    return out


@pytest.mark.parametrize("size", [224, 96])
def test_matches_opencv_dilate_then_erode_twice(size):
    rng = np.random.default_rng(size)
    yy, xx = np.mgrid[:size, :size]
    face = ((xx - size / 2) ** 2 / (0.35 * size) ** 2 + (yy - size / 2) ** 2 / (0.45 * size) ** 2 < 1)
    noisy = face & (rng.random((size, size)) > 0.02)  # pinholes the dilation closes
    masks = np.stack([noisy, rng.random((size, size)) > 0.5]).astype(np.float32)
    masks[1, :3] = 1.0  # touches the border: outside the image does not erode
    sides = (mask_morphology.scaled_side(5, size), mask_morphology.scaled_side(9, size))
    assert sides == ((5, 9) if size == 224 else (3, 3))
    got = mask_morphology.erode_face_mask(masks).numpy()
    for b in range(2):
        np.testing.assert_array_equal(got[b], _opencv_reference(masks[b], *sides))
    # the clean ellipse shrinks by about 6 px at 224 along its axes
    if size == 224:
        row = got[0, size // 2]
        assert 0.35 * size * 2 - 2 * 8 <= row.sum() <= 0.35 * size * 2 - 2 * 4


def test_soft_masks_and_bad_shapes():
    soft = np.full((1, 32, 32), 0.25, np.float32)
    soft[0, 10:20, 10:20] = 0.75
    got = mask_morphology.erode_face_mask(soft).numpy()
    assert got.min() >= 0.25 and got.max() <= 0.75  # grey-level: values come from the input
    for bad in (np.zeros((32, 32)), np.zeros((1, 32, 30)), np.zeros((1, 32, 32, 1))):
        with pytest.raises(ValueError):
            mask_morphology.erode_face_mask(bad)
    with pytest.raises(ValueError):
        mask_morphology.ellipse_footprint(0)
