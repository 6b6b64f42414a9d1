"""Robust photo loading: any common file -> 8-bit RGB [H, W, 3], or a reason it was refused.

Decoding is OpenCV's, from bytes already read (so a path with odd characters works). The
header is probed with Pillow first (lazily: no pixels are decoded), so a file that claims to
be enormous is refused before any memory is allocated for it; a file Pillow cannot identify
is refused as unreadable. Conversions:
  grayscale -> RGB (replicated), RGBA / LA -> RGB (alpha dropped), palette -> RGB,
  16-bit -> 8-bit (value / 257, rounded), float -> 8-bit (clipped to [0, 1] first),
  EXIF orientation applied (OpenCV does this when decoding in any mode but UNCHANGED).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000


class ImageRejected(Exception):
    """A file that cannot become an RGB photo; ``reason`` is a short stable key for counting."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    """rgb: [H, W, 3] uint8. notes: conversions applied, e.g. ("grayscale", "16-bit")."""

    rgb: np.ndarray
    notes: tuple[str, ...]


def _probe_header(data: bytes, max_pixels: int) -> tuple[str, tuple[int, int], int]:
    """Reads format mode, size and frame count from the header only; refuses oversize or unknown files."""
    import io  # pylint: disable=import-outside-toplevel

    from PIL import Image  # pylint: disable=import-outside-toplevel
    try:
        with Image.open(io.BytesIO(data)) as probe:
            mode, size, frames = probe.mode, probe.size, int(getattr(probe, "n_frames", 1))
    except Image.DecompressionBombError as error:
        raise ImageRejected("too_large", str(error)) from error
    except Exception as error:  # pylint: disable=broad-except
        raise ImageRejected("unreadable", f"not a recognised image ({error})") from error
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageRejected("unreadable", f"image header gives size {width}x{height}")
    if width * height > max_pixels:
        raise ImageRejected("too_large", f"{width}x{height} pixels exceeds the limit of "
                                         f"{max_pixels} pixels")
    return mode, size, frames


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decodes encoded image bytes to 8-bit RGB.

    Raises:
      ImageRejected: reason "unreadable" (not an image, truncated, corrupt) or "too_large".
    """
    import cv2  # pylint: disable=import-outside-toplevel

    mode, _, frames = _probe_header(data, max_pixels)
    notes = ["first_frame"] if frames > 1 else []  # an animated GIF, WebP or a multi-page TIFF
    if mode in ("RGBA", "LA", "PA") or mode.endswith("A"):
        notes.append("alpha_dropped")
    if mode == "P":
        notes.append("palette")
    buffer = np.frombuffer(data, dtype=np.uint8)
    # ANYDEPTH keeps 16-bit samples, ANYCOLOR keeps grayscale as one channel; both still apply
    # EXIF orientation (only IMREAD_UNCHANGED ignores it). Alpha is dropped by these flags.
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as error:
        raise ImageRejected("unreadable", f"OpenCV could not decode it ({error})") from error
    if image is None or image.size == 0:
        raise ImageRejected("unreadable", "OpenCV could not decode it (corrupt or truncated)")
    if image.dtype == np.uint16:
        notes.append("16-bit")
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    elif image.dtype.kind == "f":
        notes.append("float")
        image = np.round(np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageRejected("unreadable", f"unsupported sample type {image.dtype}")
    if image.ndim == 2 or image.shape[2] == 1:
        notes.append("grayscale")
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    elif image.shape[2] == 4:
        if "alpha_dropped" not in notes:
            notes.append("alpha_dropped")
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        raise ImageRejected("unreadable", f"unsupported channel count {image.shape[2]}")
    return LoadedImage(np.ascontiguousarray(image), tuple(notes))


def load_image(path: str | os.PathLike, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Reads and decodes one file; see decode_image. Adds reasons "missing" and "too_large"."""
    try:
        size = os.stat(path).st_size
    except OSError as error:
        raise ImageRejected("missing", str(error)) from error
    if size > max_file_bytes:
        raise ImageRejected("too_large", f"file is {size} bytes, limit {max_file_bytes}")
    if size == 0:
        raise ImageRejected("unreadable", "empty file")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ImageRejected("unreadable", str(error)) from error
    return decode_image(data, max_pixels)


def downscale_to_max_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Shrinks [H, W, C] so its longer side is at most ``max_side`` (area filter).

    Returns:
      (image, scale): scale [2] float64 = (new width / old width, new height / old height),
      (1, 1) when unchanged; a point (x, y) in the small image is (x / sx, y / sy) in the
      original (pixel-centre convention: OpenCV's resize maps edges to edges, so exactly
      ((x + 0.5) / sx - 0.5, ...)).
    """
    import cv2  # pylint: disable=import-outside-toplevel
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image, np.ones(2)
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, np.array([size[0] / width, size[1] / height])
