"""Output folders that a run owns: a lock, a record of what face-gcn wrote there, no overwrites.

A command that writes per-photo files into ``--out`` opens it as an OutputFolder:

- only one run at a time: OUT/.face-gcn.lock is held with flock for the run (released by the
  kernel when the process ends, so a killed run never leaves a stale lock); a second run into the
  same folder is refused, naming the holder's pid and command;
- a record, OUT/.face-gcn-outputs.json, maps every file face-gcn wrote (relative path) to the
  photo it came from. A file is replaced only when the record says face-gcn wrote it for the same
  photo (a re-run updates its results); a file face-gcn did not write (the user's own) is never
  replaced, and another photo's outputs are never replaced either: the new photo's outputs take the
  next free name (me_2, me_3, ...);
- an --out that is the folder of an input photo (or an input folder itself) is refused;
- face_gcn.data.prepare.list_inputs leaves out every file a record lists, so a later run never
  reads these outputs back as photos.

Platforms without fcntl (Windows) get the record and the name checks but no lock.
"""

from __future__ import annotations

import os

from face_gcn import fileio

RECORD_NAME = ".face-gcn-outputs.json"
LOCK_NAME = ".face-gcn.lock"
RECORD_FORMAT = "face-gcn-outputs"


class OutputFolderError(Exception):
    """An output folder that cannot be used: in use by another run, an input folder, a file of the user's."""


def read_record(folder: str) -> dict[str, str]:
    """{relative path: source photo} of the record in ``folder`` ({} when there is none); ValueError
    when it is unreadable or not a record."""
    path = os.path.join(folder, RECORD_NAME)
    if not os.path.exists(path):
        return {}
    record = fileio.read_format_json(path, RECORD_FORMAT, "output record")
    files = record.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ValueError(f"{path}: no files map")
    return dict(files)


def recorded_outputs(folder: str) -> set[str]:
    """Absolute paths of the files the record in ``folder`` lists (empty when there is none or it is unreadable)."""
    try:
        files = read_record(folder)
    except ValueError:
        return set()
    return {os.path.abspath(os.path.join(folder, name)) for name in files}


def outputs_above(path: str) -> set[str]:
    """The recorded outputs of every output folder that is ``path`` or one of its ancestors."""
    found, folder = set(), os.path.abspath(path)
    while True:
        found |= recorded_outputs(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            return found
        folder = parent


def _same_folder(first: str, second: str) -> bool:
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


class OutputFolder:
    """``with OutputFolder(out, "face-gcn fit", inputs=paths) as folder:`` ... ``folder.claim(...)``.

    inputs: the input photos (files) and folders given on the command line. flag: the option that
    named the folder, for messages.
    """

    def __init__(self, path: str, command: str, inputs=(), flag: str = "--out"):
        self.path = os.path.abspath(path)
        self.command, self.flag = command, flag
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputFolderError(f"{flag} {path} is a file, not a folder")
        for item in inputs:
            folder = item if os.path.isdir(item) else os.path.dirname(os.path.abspath(item))
            if os.path.isdir(self.path) and _same_folder(folder, self.path):
                raise OutputFolderError(f"{flag} {path} is the folder of the input photos ({item}); "
                                        "give a separate output folder")
        self._lock_handle = None
        self._files: dict[str, str] = {}   # relative path -> source photo
        self._stems: set[str] = set()      # names claimed by this run

    # -- the run's lifetime -------------------------------------------------------------------
    def __enter__(self) -> "OutputFolder":
        os.makedirs(self.path, exist_ok=True)
        self._lock()
        self._files = self._read_record()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()  # closing the descriptor releases the flock
            self._lock_handle = None

    def _lock(self) -> None:
        try:
            import fcntl  # pylint: disable=import-outside-toplevel
        except ImportError:  # pragma: no cover - Windows: no lock
            return
        handle = open(os.path.join(self.path, LOCK_NAME), "a+", encoding="utf-8")  # pylint: disable=consider-using-with
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise OutputFolderError(f"{self.flag} {self.path} is in use by another face-gcn run ({holder}); "
                                    "wait for it to finish or give another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, {self.command}\n")
        handle.flush()
        self._lock_handle = handle

    def _read_record(self) -> dict:
        try:
            return read_record(self.path)
        except ValueError as error:
            raise OutputFolderError(f"{os.path.join(self.path, RECORD_NAME)} is damaged ({error}); "
                                    "move it away to use this folder") from None

    # -- names and files ----------------------------------------------------------------------
    def _replaceable(self, relative: str, source: str) -> bool:
        """Whether this run may write ``relative`` for ``source``: absent, or face-gcn's for the same photo."""
        if not os.path.lexists(os.path.join(self.path, relative)):
            return True
        return self._files.get(relative) == source

    def claim(self, source: str, preferred: str, files_for) -> str:
        """A name for ``source``'s outputs: ``preferred``, else preferred_2, _3, ... until every file
        of ``files_for(name)`` (relative paths) may be written; the name is reserved for this run."""
        name, index = preferred, 2
        while name in self._stems or not all(self._replaceable(rel, source) for rel in files_for(name)):
            name, index = f"{preferred}_{index}", index + 1
        self._stems.add(name)
        return name

    def check_writable(self, relatives, source: str = "") -> None:
        """Raises OutputFolderError when one of ``relatives`` exists and face-gcn did not write it for ``source``."""
        for relative in relatives:
            if not self._replaceable(relative, source):
                owner = self._files.get(relative)
                whose = f"another photo's output ({owner})" if owner is not None else "not written by face-gcn"
                raise OutputFolderError(f"{os.path.join(self.path, relative)} exists and is {whose}; "
                                        f"it is left untouched: move it or give another {self.flag}")

    def record(self, relatives, source: str = "") -> None:
        """Notes ``relatives`` as written for ``source``; the record on disk is replaced atomically."""
        for relative in relatives:
            self._files[relative] = source
        fileio.write_json(os.path.join(self.path, RECORD_NAME),
                          {"format": RECORD_FORMAT, "version": 1, "files": dict(sorted(self._files.items()))})
