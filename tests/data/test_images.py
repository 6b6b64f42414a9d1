"""face_gcn.data.images: every input kind becomes 8-bit RGB, bad files are refused by reason."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from face_gcn.data import images


def _png_bytes(array):
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (40, 60, 3)).astype(np.uint8)


def test_colour_png_round_trips_exactly(rgb):
    loaded = images.decode_image(_png_bytes(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)))
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert loaded.notes == ()


def test_sixteen_bit_maps_back_to_eight_bit(rgb):
    deep = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257
    loaded = images.decode_image(_png_bytes(deep))
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert "16-bit" in loaded.notes


def test_grayscale_is_replicated(rgb):
    gray = rgb[..., 0]
    loaded = images.decode_image(_png_bytes(gray))
    np.testing.assert_array_equal(loaded.rgb, np.stack([gray] * 3, axis=-1))
    assert "grayscale" in loaded.notes


def test_alpha_is_dropped(rgb):
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    loaded = images.decode_image(_png_bytes(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)))
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert "alpha_dropped" in loaded.notes


def test_palette_png_matches_pillow(rgb):
    palette = Image.fromarray(rgb).quantize(colors=16)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    loaded = images.decode_image(buffer.getvalue())
    np.testing.assert_array_equal(loaded.rgb, np.asarray(palette.convert("RGB")))
    assert "palette" in loaded.notes


def test_gif_and_animated_gif_decode_their_first_frame(rgb):
    still, animated = io.BytesIO(), io.BytesIO()
    Image.fromarray(rgb).save(still, format="GIF")
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:])
    loaded = images.decode_image(still.getvalue())
    with Image.open(io.BytesIO(still.getvalue())) as reference:
        np.testing.assert_array_equal(loaded.rgb, np.asarray(reference.convert("RGB")))
    assert "first_frame" not in loaded.notes
    loaded = images.decode_image(animated.getvalue())
    with Image.open(io.BytesIO(animated.getvalue())) as reference:
        np.testing.assert_array_equal(loaded.rgb, np.asarray(reference.convert("RGB")))
    assert "first_frame" in loaded.notes


def test_exif_orientation_is_applied():
    tall = np.zeros((40, 20, 3), np.uint8)
    tall[:10] = 255  # white band at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    Image.fromarray(tall).save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    reference = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue()))))
    loaded = images.decode_image(buffer.getvalue())
    assert loaded.rgb.shape == reference.shape == (20, 40, 3)
    assert np.abs(loaded.rgb.astype(int) - reference.astype(int)).mean() < 3


@pytest.mark.parametrize("data, reason", [
    (b"plain text, not an image" * 10, "unreadable"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "unreadable"),
])
def test_non_images_are_unreadable(data, reason):
    with pytest.raises(images.ImageRejected) as caught:
        images.decode_image(data)
    assert caught.value.reason == reason


def test_truncated_png_is_unreadable(rgb):
    data = _png_bytes(rgb)
    with pytest.raises(images.ImageRejected) as caught:
        images.decode_image(data[: len(data) // 2])
    assert caught.value.reason == "unreadable"


def test_huge_header_is_refused_before_decoding(png_header):
    # 60000 x 60000 x 3 bytes would be 10 GB: refused from the header alone
    with pytest.raises(images.ImageRejected) as caught:
        images.decode_image(png_header(60000, 60000))
    assert caught.value.reason == "too_large"
    with pytest.raises(images.ImageRejected) as caught:
        images.decode_image(png_header(8000, 7000), max_pixels=50_000_000)
    assert caught.value.reason == "too_large"


def test_size_limits_and_missing_files(tmp_path, rgb):
    path = tmp_path / "photo.png"
    path.write_bytes(_png_bytes(rgb))
    assert images.load_image(path).rgb.shape == (40, 60, 3)
    with pytest.raises(images.ImageRejected) as caught:
        images.load_image(path, max_file_bytes=100)
    assert caught.value.reason == "too_large"
    with pytest.raises(images.ImageRejected) as caught:
        images.load_image(path, max_pixels=40 * 60 - 1)
    assert caught.value.reason == "too_large"
    with pytest.raises(images.ImageRejected) as caught:
        images.load_image(tmp_path / "absent.png")
    assert caught.value.reason == "missing"
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(images.ImageRejected) as caught:
        images.load_image(tmp_path / "empty.png")
    assert caught.value.reason == "unreadable"


def test_downscale_reports_per_axis_scale():
    image = np.zeros((300, 1000, 3), np.uint8)
    small, scale = images.downscale_to_max_side(image, 500)
    assert small.shape == (150, 500, 3)
    np.testing.assert_allclose(scale, [0.5, 0.5])
    same, scale = images.downscale_to_max_side(image, 1000)
    assert same is image and np.all(scale == 1)
