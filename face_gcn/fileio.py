"""Atomic output files: a reader never sees a half-written mesh, image or JSON.

Every writer in face_gcn goes through ``atomic_write``: the data is written to a temporary
file in the destination directory, flushed, and moved over the destination with os.replace.
Readers of model and weights files call ``refuse_lfs_pointer`` first: a Git LFS pointer checked
out in place of the file says so instead of failing as a corrupt file. Files face_gcn generates
once and reuses (mesh hierarchies, converted weights) live under ``cache_directory()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from typing import IO, Iterator

import numpy as np

CACHE_ENV = "FACE_GCN_CACHE"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_directory() -> str:
    """Where generated files are cached: $FACE_GCN_CACHE, default ~/.cache/face_gcn (not created here)."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "face_gcn")


def _default_file_mode() -> int:
    """0o666 less the process umask: the mode open() would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path next to ``path``; on success it is moved over ``path``.

    For writers that need a file name (e.g. tf.io.TFRecordWriter). The temporary name keeps every
    extension of ``path`` (".weights.h5", not only ".h5": Keras reads the format from it). The
    directory is created if missing; on failure the temporary file is removed and ``path`` is
    left untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    first_dot = name.find(".", 1)
    suffix = name[first_dot:] if first_dot > 0 else ""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[str]:
    """Yields an empty staging directory next to ``path``; on success it replaces ``path`` whole.

    For outputs made of several files (model directories, SavedModels). An existing ``path`` is
    moved aside, the staging directory renamed into place, and the old one removed; on failure
    the staging directory is removed and ``path`` is left untouched.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    recover_directory(path)
    staging = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(path) + ".", dir=parent)
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=".old-" + os.path.basename(path) + ".", dir=parent)
            os.replace(path, os.path.join(old, "previous"))
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def recover_directory(path: str | os.PathLike) -> None:
    """Cleans up after an atomic_directory that was killed: removes its staging directories
    (.tmp-NAME.*), and if ``path`` itself is missing because the kill came between moving the
    old directory aside and moving the new one in, puts the old one (.old-NAME.*/previous) back."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.dirname(path), os.path.basename(path)
    if not os.path.isdir(parent):
        return
    for entry in sorted(os.listdir(parent)):
        stale = os.path.join(parent, entry)
        if entry.startswith(f".tmp-{name}.") and os.path.isdir(stale):
            shutil.rmtree(stale, ignore_errors=True)
        elif entry.startswith(f".old-{name}.") and os.path.isdir(stale):
            previous = os.path.join(stale, "previous")
            if not os.path.exists(path) and os.path.isdir(previous):
                os.replace(previous, path)
            shutil.rmtree(stale, ignore_errors=True)


def replaceable_directory(path: str | os.PathLike, marker: str, entries=None) -> bool:
    """Whether ``path`` may be replaced by atomic_directory: it is missing, an empty directory, or a
    directory holding ``marker`` (a file our own output of that kind always has) and, when ``entries``
    is given, nothing but those names (a file of the user's put there is never deleted)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return True
    if not os.path.isdir(path):
        return False
    present = set(os.listdir(path))
    if not present:
        return True
    return os.path.isfile(os.path.join(path, marker)) and (entries is None or present <= set(entries))


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Opens a temporary file next to ``path``; on success it replaces ``path``.

    Args:
      path: the destination; its directory is created if missing.
      mode: "wb" or "w" (text, UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def read_format_json(path: str | os.PathLike, expected_format: str, what: str = "file") -> dict:
    """A JSON object whose "format" field is ``expected_format``; ValueError naming the file otherwise."""
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable ({error})") from None
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        raise ValueError(f"{path}: not a {expected_format} {what}")
    return payload


def write_json(path: str | os.PathLike, payload) -> None:
    """Writes ``payload`` (JSON-serialisable; NumPy scalars and arrays allowed) atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(payload, handle, indent=2, default=_to_builtin)
        handle.write("\n")


def _to_builtin(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes an RGB(A) image atomically as PNG.

    Args:
      image: [H, W, 3] or [H, W, 4] (or [H, W]) float in [0, 1] (clipped) or uint8, RGB order.
    """
    import cv2  # pylint: disable=import-outside-toplevel

    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must be [H, W], [H, W, 3] or [H, W, 4], got {image.shape}")
    if image.dtype != np.uint8:
        if image.dtype.kind != "f":
            raise ValueError(f"image must be float in [0, 1] or uint8, got {image.dtype}")
        image = np.round(np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode PNG for {path}")
    with atomic_write(path, "wb") as handle:
        handle.write(encoded.tobytes())


ZIP_MAGIC = b"PK\x03\x04"  # a .npz is a zip archive of .npy files


def read_npz(path: str | os.PathLike) -> dict:
    """The arrays of a NumPy .npz archive ({name: ndarray}), never unpickling anything.

    Raises ValueError for anything else: NumPy's own message for a file that is not a zip archive, or
    that holds object arrays, suggests loading it with pickle, which no file given to face_gcn should be.
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        head = handle.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        raise ValueError(f"not a .npz archive (a zip file starts with {ZIP_MAGIC!r}; this one with {head!r})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "pickle" in str(error):
            raise ValueError("the archive holds Python objects (pickled arrays), which face_gcn never loads") from None
        raise
    except (zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"damaged .npz archive ({error})") from None


LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/"
LFS_POINTER_MAX_BYTES = 1024  # a pointer is three short text lines


def is_lfs_pointer(path: str | os.PathLike) -> bool:
    """True if ``path`` is a small file holding a Git LFS pointer instead of its content."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > LFS_POINTER_MAX_BYTES:
            return False
        with open(path, "rb") as handle:
            return handle.read(len(LFS_POINTER_PREFIX)) == LFS_POINTER_PREFIX
    except OSError:
        return False


def refuse_lfs_pointer(path: str | os.PathLike, what: str = "file", error=ValueError) -> None:
    """Raises ``error`` naming the problem if ``path`` is a Git LFS pointer (see is_lfs_pointer)."""
    if is_lfs_pointer(path):
        raise error(f"{os.fspath(path)} is a Git LFS pointer, not the {what}: fetch the real file "
                    "(git lfs pull) or give its path")
