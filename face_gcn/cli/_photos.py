"""Photo handling shared by the commands that reconstruct photos (`fit`, `reconstruct`).

Input listing (files and folders, searched recursively), the output folder (locked, names that
never replace a file face-gcn did not write for the same photo), a progress bar,
and the detect -> align -> mask step: MTCNN's largest face, Deng's similarity alignment to the
morphable model's 5 standard landmarks (MTCNN's), and, when asked for, dlib's 68 landmarks of that
face (face_gcn.data.landmarks68; MTCNN's 5 when they are unavailable) for the fit, the face mask's
region or both, then the face mask from a segmenter. A photo that cannot be used raises SkipImage
with a short reason ("no_face", "unreadable", "missing", ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

import numpy as np


class SkipImage(Exception):
    """A photo that is skipped; ``reason`` is a short key for counting, ``detail`` says more."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def list_images(arguments) -> list[str]:
    """Image files and folders (searched recursively) -> absolute paths, in order, without repeats."""
    from face_gcn.data import prepare  # pylint: disable=import-outside-toplevel
    found = []
    for argument in arguments:
        if os.path.isdir(argument):
            found += prepare.list_inputs(argument)
        elif os.path.isfile(argument):
            found.append(os.path.abspath(argument))
        else:
            raise ValueError(f"{argument!r} is neither an image file nor a folder")
    return list(dict.fromkeys(found))


def segmenter_classes(values, prog: str) -> list[int]:
    """--segmenter_classes as integers; a one-line error of ``prog`` otherwise."""
    from face_gcn.cli._errors import fail  # pylint: disable=import-outside-toplevel
    try:
        return [int(value) for value in values]
    except ValueError:
        fail(prog, f"--segmenter_classes must be integers, e.g. 1,2,3; got {','.join(values)}")


SEGMENTER_HELP = ("'builtin' (skin colour and brightness in the landmarks' face region), 'builtin_chroma' (the "
                  "first built-in: skin colour only) or the path of a face-parsing SavedModel.")


def check_segmenter(spec: str, prog: str) -> str:
    """--segmenter as given for a built-in one, else the SavedModel folder's absolute path; a one-line
    error of ``prog`` when it is neither."""
    from face_gcn.cli._errors import fail  # pylint: disable=import-outside-toplevel
    from face_gcn.data import masks  # pylint: disable=import-outside-toplevel
    if spec in masks.BUILTINS:
        return spec
    if not os.path.isdir(spec):
        fail(prog, f"--segmenter must be one of {', '.join(masks.BUILTINS)} or a SavedModel folder; {spec!r} "
                   "is not a folder")
    return os.path.abspath(spec)


def output_stem(path: str) -> str:
    """A file-system-safe output name from the photo's file name (face_gcn.output_folder adds _2, _3, ...)."""
    base = os.path.splitext(os.path.basename(path))[0] or "image"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in base)


class PhotoOutputs:
    """The output folder of a photo command: locked for the run, names that never replace a file face-gcn
    did not write for the same photo (face_gcn.output_folder), summary.json checked before any work."""

    def __init__(self, out: str, command: str, inputs):
        from face_gcn import output_folder  # pylint: disable=import-outside-toplevel
        self.folder = output_folder.OutputFolder(out, command, inputs)

    def __enter__(self) -> "PhotoOutputs":
        self.folder.__enter__()
        self.folder.check_writable(["summary.json"])
        return self

    def __exit__(self, *exc_info):
        self.folder.__exit__(*exc_info)

    @property
    def path(self) -> str:
        return self.folder.path

    def claim(self, source: str) -> str:
        """The output name for ``source``; its files are recorded as face-gcn's before they are written."""
        from face_gcn.fit import outputs  # pylint: disable=import-outside-toplevel
        name = self.folder.claim(source, output_stem(source), outputs.reconstruction_files)
        self.folder.record(outputs.reconstruction_files(name), source)
        return name

    def write_summary(self, summary: dict) -> None:
        from face_gcn import fileio  # pylint: disable=import-outside-toplevel
        self.folder.record(["summary.json"])
        fileio.write_json(os.path.join(self.folder.path, "summary.json"), summary)


@contextlib.contextmanager
def open_outputs(out: str, prog: str, inputs):
    """An entered PhotoOutputs for a command's run; a folder it cannot use (in use by another run, the
    photo folder, a file face-gcn did not write) ends the command in one line of ``prog``."""
    from face_gcn import output_folder  # pylint: disable=import-outside-toplevel
    from face_gcn.cli._errors import fail  # pylint: disable=import-outside-toplevel
    try:
        with PhotoOutputs(out, prog, inputs) as outputs:
            yield outputs
    except output_folder.OutputFolderError as error:
        fail(prog, str(error))


def progress(items, desc: str, enabled: bool = True):
    """tqdm over items (hidden when disabled or not on a terminal); the items themselves without tqdm."""
    try:
        from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover
        return items
    return tqdm(items, desc=desc, unit="image", disable=not enabled or None)


def reason_counts(failed: list[dict]) -> str:
    """'no_face 2, unreadable 1' (or 'none') from summary failure records."""
    counts = {}
    for item in failed:
        counts[item["reason"]] = counts.get(item["reason"], 0) + 1
    return ", ".join(f"{reason} {count}" for reason, count in counts.items()) or "none"


@dataclasses.dataclass(frozen=True)
class AlignedPhoto:
    """original: [H, W, 3] uint8 photo. crop: [S, S, 3] uint8. mask: [S, S] uint8 {0, 1}.
    landmarks: [5, 2] MTCNN's, crop pixel indices. transform: [2, 3] original pixels -> crop pixels.
    source: the file; seconds: spent reading, detecting, aligning and masking it. landmarks68:
    [68, 2] dlib's that the fit follows, crop pixel indices, or None; landmarks_note: "68", "5" (asked for) or
    "5 (fallback: reason)"; mask_landmarks: the same note for the landmarks the mask's face region came from."""

    original: np.ndarray
    crop: np.ndarray
    mask: np.ndarray
    landmarks: np.ndarray
    transform: np.ndarray
    num_faces: int
    detection_score: float
    source: str = ""
    seconds: float = 0.0
    landmarks68: np.ndarray | None = None
    landmarks_note: str = "5"
    mask_landmarks: str = "5"

    @property
    def fit_landmarks(self) -> np.ndarray:
        """The landmarks the fit uses: [68, 2] when present, else [5, 2]; crop pixel indices."""
        return self.landmarks if self.landmarks68 is None else self.landmarks68


class PhotoAligner:
    """Detector and segmenter, built once; ``align(path)`` gives an AlignedPhoto or raises SkipImage.

    standard_landmarks: [5, 3] (or [5, 2]) the morphable model's alignment landmarks.
    landmarks: 68 adds dlib's 68 of each face for the fit (falling back to MTCNN's 5 per photo, with the reason
    in landmarks_note); 5 keeps MTCNN's. mask_landmarks: the same choice for the face region of the built-in
    segmenter (None: as ``landmarks``). landmarks68_model: the predictor file (default: the packaged one).
    """

    def __init__(self, standard_landmarks, crop_size: int, segmenter: str = "builtin", segmenter_classes=(),
                 min_face_size: int = 20, landmarks: int = 5, landmarks68_model: str | None = None,
                 mask_landmarks: int | None = None):
        from face_gcn.data import detection, landmarks68, masks  # pylint: disable=import-outside-toplevel
        mask_landmarks = landmarks if mask_landmarks is None else mask_landmarks
        if landmarks not in (5, 68) or mask_landmarks not in (5, 68):
            raise ValueError(f"landmarks and mask_landmarks must be 5 or 68, got {landmarks}, {mask_landmarks}")
        self.standard_landmarks = standard_landmarks
        self.crop_size = int(crop_size)
        self.detector = detection.FaceDetector(min_face_size=min_face_size)
        self.segmenter = masks.make_segmenter(segmenter, face_classes=list(segmenter_classes) or None)
        self.fit68, self.mask68 = landmarks == 68, mask_landmarks == 68
        self.landmarks68, self.unavailable68 = (None, "")
        if self.fit68 or self.mask68:
            self.landmarks68, self.unavailable68 = landmarks68.load_detector(landmarks68_model)

    def align(self, path: str) -> AlignedPhoto:
        from face_gcn.data import alignment, images, landmarks68  # pylint: disable=import-outside-toplevel
        started = time.perf_counter()
        try:
            loaded = images.load_image(path)
        except images.ImageRejected as rejected:
            raise SkipImage(rejected.reason, rejected.detail) from None
        found = self.detector.detect(loaded.rgb)
        if found.largest is None:
            raise SkipImage("no_face", "MTCNN found no face")
        face = found.largest
        transform = alignment.alignment_transform(face.landmarks, self.standard_landmarks, self.crop_size)
        crop = alignment.warp_to_crop(loaded.rgb, transform, self.crop_size)
        landmarks = alignment.apply_transform(transform, face.landmarks)
        points68, note = landmarks68.in_crop(self.landmarks68, self.unavailable68, loaded.rgb, face, transform)
        mask_points = points68 if self.mask68 and points68 is not None else landmarks
        mask = np.asarray(self.segmenter.segment(crop, mask_points), np.uint8)
        return AlignedPhoto(original=loaded.rgb, crop=crop, mask=mask, landmarks=landmarks, transform=transform,
                            num_faces=found.num_faces, detection_score=face.score, source=path,
                            seconds=time.perf_counter() - started,
                            landmarks68=points68 if self.fit68 else None, landmarks_note=note if self.fit68 else "5",
                            mask_landmarks=note if self.mask68 else "5")
