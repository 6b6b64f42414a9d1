"""prepare-data: photos -> detected, aligned, masked crops in sharded TFRecords + manifest.

Layout of the output directory:
  faces-00000-of-00004.tfrecord   the examples of shard 0 (schema: face_gcn.data.tfrecords)
  faces-00000-of-00004.json       that shard's per-file outcomes, sources and settings
  manifest.json                   counts written / skipped by reason, per-file reasons,
                                  photos with several faces, shards reused and written
Inputs are sorted and split into contiguous shards. A shard's .tfrecord is written first (to a
temporary file moved into place with os.replace), its .json last, holding the record file's
SHA-256; a shard is finished when its .json lists the same sources and settings and the digest of
the .tfrecord beside it, so a run killed between the two files never leaves records under a
sidecar that does not describe them. Re-running skips finished shards and redoes the others. Photos are processed by a pool of worker processes (spawned, each with its
own MTCNN and segmenter); one bad file is recorded and never stops the run, even one that
kills its worker process (see parallel_outcomes).
With PrepareConfig.landmarks68 (off by default: dlib's 68-point model is for non-commercial use)
every record also carries dlib's 68 landmarks of its face (face_gcn.data.landmarks68) where they are
available and plausible, and the built-in segmenter draws the face region of those records' masks from
them; each file's outcome says "landmarks": "68" or "5 (fallback: reason)", and the manifest counts both.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import multiprocessing
import os
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from face_gcn import fileio, output_folder
from face_gcn.data import alignment, images, landmarks68, tfrecords

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")
MANIFEST = "manifest.json"
WRITTEN = "written"
SKIPPED = "skipped"


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Settings of one run. standard_landmarks: [5, 3] model units, as nested tuples."""

    standard_landmarks: tuple
    crop_size: int = 224
    rescale: float = alignment.DENG_RESCALE
    segmenter: str = "builtin"
    segmenter_classes: tuple = ()
    segmenter_input_size: int = 0
    min_face_size: int = 20
    min_score: float = 0.9
    detect_max_side: int = 1024
    max_pixels: int = images.DEFAULT_MAX_PIXELS
    max_file_bytes: int = images.DEFAULT_MAX_FILE_BYTES
    landmarks68: bool = False

    def __post_init__(self):
        points = np.asarray(self.standard_landmarks, dtype=np.float64)
        if points.shape != (5, 3):
            raise ValueError(f"standard_landmarks must be [5, 3], got {points.shape}")
        object.__setattr__(self, "standard_landmarks",
                           tuple(tuple(float(v) for v in row) for row in points))
        object.__setattr__(self, "segmenter_classes",
                           tuple(int(c) for c in self.segmenter_classes))
        if not 16 <= self.crop_size <= 4096:
            raise ValueError(f"crop_size must be in [16, 4096], got {self.crop_size}")

    def fingerprint(self) -> str:
        """Digest of the settings (and of the built-in segmenter's version, whose masks they name)."""
        from face_gcn.data import masks  # pylint: disable=import-outside-toplevel
        settings = dataclasses.asdict(self)
        if self.segmenter in masks.BUILTINS:
            settings["builtin_segmenter_version"] = masks.BUILTIN_VERSION
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclasses.dataclass
class Outcome:
    """What happened to one input file; record is the serialized example when written."""

    source: str
    status: str
    reason: str = ""
    detail: str = ""
    num_faces: int = 0
    notes: tuple = ()
    record: bytes | None = None
    landmarks: str = ""

    def summary(self) -> dict:
        return {"source": self.source, "status": self.status, "reason": self.reason,
                "detail": self.detail, "num_faces": self.num_faces, "notes": list(self.notes),
                "landmarks": self.landmarks}


def list_inputs(spec: str) -> list[str]:
    """A folder (searched recursively for image extensions) or a .txt list of paths (one a
    line; blank lines and lines starting with # ignored; relative paths are relative to the
    list's folder). Returns sorted absolute paths; raises ValueError with a clear message.
    A folder's files that a face-gcn output record lists (face_gcn.output_folder) are left out."""
    if os.path.isdir(spec):
        found, ours = [], output_folder.outputs_above(spec)
        for root, dirs, files in os.walk(spec):
            dirs.sort()
            if output_folder.RECORD_NAME in files:
                ours |= output_folder.recorded_outputs(root)
            found += [os.path.abspath(os.path.join(root, name)) for name in files
                      if name.lower().endswith(IMAGE_EXTENSIONS)]
        photos = [path for path in found if path not in ours]
        if not photos:
            left_out = f" ({len(found)} face-gcn outputs left out)" if found else ""
            raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {spec}{left_out}")
        return sorted(photos)
    if os.path.isfile(spec):
        base = os.path.dirname(os.path.abspath(spec))
        try:
            with open(spec, encoding="utf-8") as handle:
                lines = [line.strip() for line in handle]
        except UnicodeDecodeError as error:
            raise ValueError(f"{spec} is not a UTF-8 text list of paths "
                             "(give a folder or a .txt file with one path a line)") from error
        paths = [os.path.abspath(os.path.join(base, line)) for line in lines
                 if line and not line.startswith("#")]
        if not paths:
            raise ValueError(f"the file list {spec} names no files")
        return sorted(dict.fromkeys(paths))
    raise ValueError(f"--input {spec!r} is neither a folder nor a file list")


class FaceProcessor:
    """Loads, detects, aligns, crops and masks one photo at a time (one per process)."""

    def __init__(self, config: PrepareConfig, detector=None, segmenter=None):
        from face_gcn.data import detection, masks  # pylint: disable=import-outside-toplevel
        self.config = config
        self.detector = detector or detection.FaceDetector(
            min_face_size=config.min_face_size, min_score=config.min_score,
            max_side=config.detect_max_side)
        self.segmenter = segmenter or masks.make_segmenter(
            config.segmenter, face_classes=config.segmenter_classes or None,
            input_size=config.segmenter_input_size or None)
        self.standard = np.asarray(config.standard_landmarks, dtype=np.float64)
        self.landmarks68, self.unavailable68 = (None, "not asked for")
        if config.landmarks68:
            self.landmarks68, self.unavailable68 = landmarks68.load_detector()

    def process(self, path: str) -> Outcome:
        try:
            return self._process(path)
        except Exception as error:  # pylint: disable=broad-except
            return Outcome(path, SKIPPED, "error", f"{type(error).__name__}: {error}")

    def _process(self, path: str) -> Outcome:
        config = self.config
        try:
            loaded = images.load_image(path, config.max_file_bytes, config.max_pixels)
        except images.ImageRejected as rejected:
            return Outcome(path, SKIPPED, rejected.reason, rejected.detail)
        found = self.detector.detect(loaded.rgb)
        if found.largest is None:
            return Outcome(path, SKIPPED, "no_face", "MTCNN found no face", 0, loaded.notes)
        face = found.largest
        transform = alignment.alignment_transform(face.landmarks, self.standard,
                                                  config.crop_size, config.rescale)
        crop = alignment.warp_to_crop(loaded.rgb, transform, config.crop_size)
        landmarks = alignment.apply_transform(transform, face.landmarks)
        points68, note = landmarks68.in_crop(self.landmarks68, self.unavailable68, loaded.rgb, face, transform)
        mask = self.segmenter.segment(crop, landmarks if points68 is None else points68)
        points68 = None if points68 is None else points68.astype(np.float32)
        example = tfrecords.FaceExample(
            image=crop, mask=np.asarray(mask, np.uint8), landmarks=landmarks.astype(np.float32),
            transform=transform, original_size=loaded.rgb.shape[:2],
            num_faces=found.num_faces, source=path, landmarks68_detected=points68)
        notes = loaded.notes + (("several_faces",) if found.num_faces > 1 else ())
        return Outcome(path, WRITTEN, "", "", found.num_faces, notes,
                       tfrecords.serialize(example), note)


def shard_paths(output_dir: str, index: int, count: int) -> tuple[str, str]:
    stem = os.path.join(output_dir, f"faces-{index:05d}-of-{count:05d}")
    return stem + ".tfrecord", stem + ".json"


def split_into_shards(files: list[str], num_shards: int) -> list[list[str]]:
    """Contiguous, near-equal blocks of the sorted files; never more shards than files."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    num_shards = min(num_shards, max(1, len(files)))
    bounds = np.linspace(0, len(files), num_shards + 1).round().astype(int)
    return [files[bounds[i]:bounds[i + 1]] for i in range(num_shards)]


def _shard_is_finished(record_path, sidecar_path, sources, fingerprint) -> dict | None:
    if not (os.path.isfile(record_path) and os.path.isfile(sidecar_path)):
        return None
    try:
        with open(sidecar_path, encoding="utf-8") as handle:
            sidecar = json.load(handle)
    except (OSError, ValueError):
        return None
    if sidecar.get("sources") != sources or sidecar.get("fingerprint") != fingerprint:
        return None
    if sidecar.get("record_sha256") != fileio.file_sha256(record_path):
        return None  # the records are not the ones this sidecar describes (a run killed mid-shard)
    return sidecar


_WORKER: FaceProcessor | None = None


def _init_worker(config: PrepareConfig, threads: int):
    global _WORKER  # pylint: disable=global-statement
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import cv2  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    cv2.setNumThreads(1)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    _WORKER = FaceProcessor(config)


def _work(path: str) -> Outcome:
    return _WORKER.process(path)


def _worker_pool(config: PrepareConfig, workers: int):
    threads = max(1, (os.cpu_count() or 1) // workers)
    return futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=(config, threads))


def _finished_result(future):
    """The outcome of a future that completed normally, else None."""
    if future.done() and not future.cancelled() and future.exception() is None:
        return future.result()
    return None


def parallel_outcomes(paths: list[str], config: PrepareConfig, workers: int):
    """Yields one Outcome per path, in order, from ``workers`` spawned processes.

    A worker that dies (say a native crash while decoding a hostile file) breaks the pool.
    The files then in flight are retried one at a time in a fresh single-worker pool, so the
    file that kills a worker on its own is recorded as "worker_crashed" and the run goes on.
    """
    pool = _worker_pool(config, workers)
    window: collections.deque = collections.deque()
    upcoming = iter(paths)
    try:
        while True:
            while len(window) < 2 * workers:
                path = next(upcoming, None)
                if path is None:
                    break
                window.append((path, pool.submit(_work, path)))
            if not window:
                return
            _, future = window[0]
            try:
                outcome = future.result()
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                suspects = list(window)
                window.clear()
                yield from _retry_alone(suspects, config)
                pool = _worker_pool(config, workers)
                continue
            window.popleft()
            yield outcome
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _retry_alone(suspects, config: PrepareConfig):
    single = None
    try:
        for path, future in suspects:
            finished = _finished_result(future)
            if finished is not None:
                yield finished
                continue
            single = single or _worker_pool(config, 1)
            try:
                yield single.submit(_work, path).result()
            except BrokenProcessPool:
                single.shutdown(wait=False, cancel_futures=True)
                single = None
                yield Outcome(path, SKIPPED, "worker_crashed",
                              "the worker process died while handling this file")
    finally:
        if single is not None:
            single.shutdown(wait=False, cancel_futures=True)


def prepare(files: list[str], output_dir: str, config: PrepareConfig, num_shards: int = 1,
            workers: int = 1, progress: bool = True, processor: FaceProcessor | None = None,
            log=print) -> dict:
    """Runs the whole job; returns the manifest (also written to output_dir/manifest.json).

    Args:
      files: input paths (see list_inputs).
      workers: processes; 1 runs in this process (with ``processor`` if given).
    """
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    os.makedirs(output_dir, exist_ok=True)
    fingerprint = config.fingerprint()
    shards = split_into_shards(list(files), num_shards)
    count = len(shards)
    summaries: dict[int, list[dict]] = {}
    pending = []
    for index, sources in enumerate(shards):
        record_path, sidecar_path = shard_paths(output_dir, index, count)
        sidecar = _shard_is_finished(record_path, sidecar_path, sources, fingerprint)
        if sidecar is not None:
            summaries[index] = sidecar["files"]
        else:
            pending.append(index)
    reused = sorted(summaries)
    if reused and log:
        log(f"prepare-data: {len(reused)} of {count} shards already finished, skipped")

    def finish_shard(index, outcomes):
        record_path, sidecar_path = shard_paths(output_dir, index, count)
        tfrecords.write_shard(record_path, [o.record for o in outcomes if o.status == WRITTEN])
        fileio.write_json(sidecar_path, {"sources": shards[index], "fingerprint": fingerprint,
                                         "record_sha256": fileio.file_sha256(record_path),
                                         "files": [o.summary() for o in outcomes]})
        summaries[index] = [o.summary() for o in outcomes]

    work = [(index, path) for index in pending for path in shards[index]]
    bar = tqdm(total=len(files), initial=sum(len(shards[i]) for i in reused), unit="img",
               disable=not progress, desc="prepare-data")
    results = None
    try:
        if workers == 1:
            local = processor or FaceProcessor(config)
            results = (local.process(path) for _, path in work)
        else:
            results = parallel_outcomes([path for _, path in work], config, workers)
        current: list[Outcome] = []
        for (index, path), outcome in zip(work, results):
            current.append(outcome)
            bar.update(1)
            if len(current) == len(shards[index]):
                finish_shard(index, current)
                current = []
        for index in pending:  # shards with no files (an empty input list)
            if index not in summaries:
                finish_shard(index, [])
    finally:
        bar.close()
        if results is not None and hasattr(results, "close"):
            results.close()  # stops the worker processes
    manifest = build_manifest([summaries[i] for i in range(count)], config, reused,
                              [i for i in pending])
    fileio.write_json(os.path.join(output_dir, MANIFEST), manifest)
    return manifest


def build_manifest(shard_files: list[list[dict]], config: PrepareConfig, reused, redone) -> dict:
    """Counts and per-file outcomes over all shards."""
    files = []
    for index, outcomes in enumerate(shard_files):
        files += [dict(outcome, shard=index) for outcome in outcomes]
    by_reason: dict[str, int] = {}
    for entry in files:
        if entry["status"] == SKIPPED:
            by_reason[entry["reason"]] = by_reason.get(entry["reason"], 0) + 1
    notes: dict[str, int] = {}
    for entry in files:
        for note in entry["notes"]:
            notes[note] = notes.get(note, 0) + 1
    return {
        "total": len(files),
        "written": sum(entry["status"] == WRITTEN for entry in files),
        "skipped": sum(entry["status"] == SKIPPED for entry in files),
        "skipped_by_reason": dict(sorted(by_reason.items())),
        "conversions": dict(sorted(notes.items())),
        "several_faces": [{"source": e["source"], "num_faces": e["num_faces"]}
                          for e in files if e["num_faces"] > 1],
        "landmarks68": {"detected": sum(e.get("landmarks") == "68" for e in files if e["status"] == WRITTEN),
                        "fallback_to_5": sum(e.get("landmarks") != "68" for e in files if e["status"] == WRITTEN)},
        "num_shards": len(shard_files),
        "shards_reused": list(reused),
        "shards_written": list(redone),
        "config": dataclasses.asdict(config),
        "files": files,
    }
