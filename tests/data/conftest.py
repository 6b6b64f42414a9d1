"""Shared fixtures for face_gcn.data tests: real-photo test files built from
skimage.data.astronaut() (one real face) and one MTCNN detector for the whole session."""

import struct
import zlib

import cv2
import numpy as np
import pytest


def astronaut(size=256):
    """[size, size, 3] uint8 RGB; the face is about 45 px wide at 256."""
    import skimage.data
    return cv2.resize(skimage.data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)


def write_bgr(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png_header_only(width, height):
    """A small PNG file whose header claims width x height (8-bit RGB); its pixel data is a
    few bytes, so only a reader that trusts the header would try to allocate the image."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


@pytest.fixture(scope="session")
def png_header():
    return png_header_only


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory):
    """A folder with every case prepare-data must handle; returns (folder, expectations)."""
    folder = tmp_path_factory.mktemp("photos")
    face = astronaut(256)
    write_bgr(folder / "a_face.png", face)
    write_bgr(folder / "b_face.jpg", face)
    cv2.imwrite(str(folder / "c_gray.png"), cv2.cvtColor(face, cv2.COLOR_RGB2GRAY))
    rgba = np.concatenate([face, np.full(face.shape[:2] + (1,), 200, np.uint8)], axis=2)
    cv2.imwrite(str(folder / "d_rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    cv2.imwrite(str(folder / "e_deep16.png"),
                cv2.cvtColor(face, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    two = np.full((256, 256 + 192, 3), 128, np.uint8)
    two[:, :256] = face
    two[32:224, 256:] = astronaut(192)
    write_bgr(folder / "f_two_faces.png", two)
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (128, 128, 3)).astype(np.uint8), (9, 9), 3)
    write_bgr(folder / "g_noise.png", noise)
    encoded = (folder / "a_face.png").read_bytes()
    (folder / "h_truncated.png").write_bytes(encoded[: len(encoded) // 3])
    (folder / "i_not_an_image.jpg").write_bytes(b"this is a text file, not a photo\n" * 20)
    (folder / "j_huge.png").write_bytes(png_header_only(60000, 60000))
    expected = {
        "a_face.png": ("written", ""), "b_face.jpg": ("written", ""),
        "c_gray.png": ("written", ""), "d_rgba.png": ("written", ""),
        "e_deep16.png": ("written", ""), "f_two_faces.png": ("written", ""),
        "g_noise.png": ("skipped", "no_face"), "h_truncated.png": ("skipped", "unreadable"),
        "i_not_an_image.jpg": ("skipped", "unreadable"), "j_huge.png": ("skipped", "too_large"),
    }
    return folder, expected


@pytest.fixture(scope="session")
def detector():
    from face_gcn.data import detection
    return detection.FaceDetector()


@pytest.fixture(scope="session")
def standard_landmarks():
    """Deng's 5 standard 3D landmarks (the design brief's numbers), [5, 3]."""
    return np.array([[-.311487, .290361, .133780], [.309799, .289720, .131795],
                     [.003253, -.046179, .552442], [-.252169, -.381339, .224057],
                     [.248466, -.381282, .222358]])
