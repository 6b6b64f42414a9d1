"""The TFRecord example schema of prepared faces, its writer and its parsers.

One tf.train.Example per face:
  image/encoded   bytes  PNG, [S, S, 3] uint8 RGB aligned crop
  mask/encoded    bytes  PNG, [S, S] uint8 face-region mask, values {0, 1}
  landmarks       float  [10] = [5, 2] (x, y) crop pixels, row-major (left eye, right eye,
                         nose, left mouth corner, right mouth corner)
  transform       float  [6] = [2, 3] affine map original pixels -> crop pixels, row-major
Pixel coordinates here are pixel indices (OpenCV's: the centre of pixel (row i, column j) is
(j, i)); the renderer's continuous coordinates are these plus 0.5 (camera.to_pixel_indices).
  original_size   int64  [2] (height, width) of the source photo
  crop_size       int64  [1] S
  num_faces       int64  [1] faces MTCNN found (the largest was kept)
  source          bytes  the source path, UTF-8
Optional ground truth (synthetic faces; absent for prepare-data photos):
  coefficients    float  [257] Deng's layout, the coefficients the face was rendered from
  landmarks68     float  [136] = [68, 2] iBUG-68 (x, y) crop pixel indices, like `landmarks`
Both are written together or not at all. The parser fills absent fields with zeros and sets
has_ground_truth to 0.0 (1.0 when present), so batches of mixed origin stack, and files written
before these fields existed stay readable.
Optional detected landmarks (prepare-data with dlib's shape predictor; absent where it was
unavailable or implausible for that photo, which then has only MTCNN's 5):
  landmarks68/detected  float  [136] = [68, 2] iBUG-68 (x, y) crop pixel indices, like `landmarks`
Parsed as landmarks68_detected [68, 2] (zeros when absent) and has_landmarks68_detected [] float32.
Optional coarse stage (a coarse cache, `face-gcn prepare-coarse`; parsed when asked for):
  coarse/coefficients  float  [257] the fixed coarse stage's coefficients (regressor + fit)
  coarse/embedding     float  [E] the texture GCN's image embedding (regressor pool features
                              [+ FaceNet's]), E recorded in the cache's manifest
"""

from __future__ import annotations

import dataclasses
import os
import struct

import numpy as np

from face_gcn import tf_errors

IMAGE_KEY = "image/encoded"
MASK_KEY = "mask/encoded"
NUM_COEFFICIENTS = 257
NUM_LANDMARKS68 = 68
DETECTED68_KEY = "landmarks68/detected"
COARSE_COEFFICIENTS_KEY = "coarse/coefficients"
EMBEDDING_KEY = "coarse/embedding"


@dataclasses.dataclass(frozen=True)
class FaceExample:
    """One prepared face; shapes as in the module docstring (S = crop_size)."""

    image: np.ndarray       # [S, S, 3] uint8
    mask: np.ndarray        # [S, S] uint8 {0, 1}
    landmarks: np.ndarray   # [5, 2] float32 crop pixels
    transform: np.ndarray   # [2, 3] float64
    original_size: tuple[int, int]
    num_faces: int
    source: str
    coefficients: np.ndarray | None = None  # [257] float32 ground truth (synthetic only)
    landmarks68: np.ndarray | None = None   # [68, 2] float32 crop pixel indices (synthetic only)
    coarse_coefficients: np.ndarray | None = None  # [257] float32 (coarse cache only)
    embedding: np.ndarray | None = None            # [E] float32 (coarse cache only)
    landmarks68_detected: np.ndarray | None = None  # [68, 2] float32 crop pixel indices (dlib's; photos)

    def __post_init__(self):
        size = self.image.shape[0]
        if self.image.shape != (size, size, 3) or self.image.dtype != np.uint8:
            raise ValueError(f"image must be [S, S, 3] uint8, got {self.image.shape} "
                             f"{self.image.dtype}")
        if self.mask.shape != (size, size) or self.mask.dtype != np.uint8:
            raise ValueError(f"mask must be [{size}, {size}] uint8, got {self.mask.shape} "
                             f"{self.mask.dtype}")
        if np.shape(self.landmarks) != (5, 2) or np.shape(self.transform) != (2, 3):
            raise ValueError("landmarks must be [5, 2] and transform [2, 3]")
        if (self.coefficients is None) != (self.landmarks68 is None):
            raise ValueError("coefficients and landmarks68 must be given together (ground truth)")
        if self.coefficients is not None:
            if np.shape(self.coefficients) != (NUM_COEFFICIENTS,):
                raise ValueError(f"coefficients must be [{NUM_COEFFICIENTS}], got "
                                 f"{np.shape(self.coefficients)}")
            if np.shape(self.landmarks68) != (NUM_LANDMARKS68, 2):
                raise ValueError(f"landmarks68 must be [{NUM_LANDMARKS68}, 2], got "
                                 f"{np.shape(self.landmarks68)}")

        if self.landmarks68_detected is not None and (
                np.shape(self.landmarks68_detected) != (NUM_LANDMARKS68, 2)
                or not np.all(np.isfinite(self.landmarks68_detected))):
            raise ValueError(f"landmarks68_detected must be a finite [{NUM_LANDMARKS68}, 2] array, got "
                             f"{np.shape(self.landmarks68_detected)}")

        if (self.coarse_coefficients is None) != (self.embedding is None):
            raise ValueError("coarse_coefficients and embedding must be given together (coarse cache)")
        if self.coarse_coefficients is not None and (
                np.shape(self.coarse_coefficients) != (NUM_COEFFICIENTS,) or np.ndim(self.embedding) != 1):
            raise ValueError(f"coarse_coefficients must be [{NUM_COEFFICIENTS}] and embedding [E], got "
                             f"{np.shape(self.coarse_coefficients)} and {np.shape(self.embedding)}")

    @property
    def has_ground_truth(self) -> bool:
        return self.coefficients is not None

    @property
    def crop_size(self) -> int:
        return int(self.image.shape[0])


def _png(array: np.ndarray) -> bytes:
    import cv2  # pylint: disable=import-outside-toplevel
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def serialize(example: FaceExample) -> bytes:
    """FaceExample -> serialized tf.train.Example."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    def byte_feature(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def float_feature(values):
        return tf.train.Feature(float_list=tf.train.FloatList(
            value=np.asarray(values, np.float32).ravel().tolist()))

    def int_feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(
            value=[int(v) for v in np.ravel(values)]))

    features = {
        IMAGE_KEY: byte_feature(_png(example.image)),
        MASK_KEY: byte_feature(_png(example.mask)),
        "landmarks": float_feature(example.landmarks),
        "transform": float_feature(example.transform),
        "original_size": int_feature(example.original_size),
        "crop_size": int_feature([example.crop_size]),
        "num_faces": int_feature([example.num_faces]),
        "source": byte_feature(example.source.encode("utf-8")),
    }
    if example.has_ground_truth:
        features["coefficients"] = float_feature(example.coefficients)
        features["landmarks68"] = float_feature(example.landmarks68)
    if example.landmarks68_detected is not None:
        features[DETECTED68_KEY] = float_feature(example.landmarks68_detected)
    if example.coarse_coefficients is not None:
        features[COARSE_COEFFICIENTS_KEY] = float_feature(example.coarse_coefficients)
        features[EMBEDDING_KEY] = float_feature(example.embedding)
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def feature_spec(embedding_size: int = 0):
    """The tf.io.parse_single_example spec of the schema (optional fields as VarLenFeature; the
    coarse-cache fields required when embedding_size > 0)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    coarse = {COARSE_COEFFICIENTS_KEY: tf.io.FixedLenFeature([NUM_COEFFICIENTS], tf.float32),
              EMBEDDING_KEY: tf.io.FixedLenFeature([embedding_size], tf.float32)} if embedding_size > 0 else {}
    return {**coarse,
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        MASK_KEY: tf.io.FixedLenFeature([], tf.string),
        "landmarks": tf.io.FixedLenFeature([10], tf.float32),
        "transform": tf.io.FixedLenFeature([6], tf.float32),
        "original_size": tf.io.FixedLenFeature([2], tf.int64),
        "crop_size": tf.io.FixedLenFeature([1], tf.int64),
        "num_faces": tf.io.FixedLenFeature([1], tf.int64),
        "source": tf.io.FixedLenFeature([], tf.string),
        "coefficients": tf.io.VarLenFeature(tf.float32),
        "landmarks68": tf.io.VarLenFeature(tf.float32),
        DETECTED68_KEY: tf.io.VarLenFeature(tf.float32),
    }


def _optional(sparse, size: int, name: str):
    """A VarLen field -> (dense [size] values or zeros, present 0/1 bool); any other length fails."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    values = sparse.values
    count = tf.size(values)
    check = tf.debugging.Assert(tf.logical_or(tf.equal(count, 0), tf.equal(count, size)),
                                [f"{name} must have 0 or {size} values, got", count])
    with tf.control_dependencies([check]):
        present = tf.equal(count, size)
    dense = tf.cond(present, lambda: tf.reshape(values, [size]),
                    lambda: tf.zeros([size], tf.float32))
    return dense, present


def parse(serialized, crop_size: int, embedding_size: int = 0):
    """Graph-mode parser of one serialized example.

    Returns a dict: image [S, S, 3] uint8, mask [S, S, 1] uint8, landmarks [5, 2] float32,
    transform [2, 3] float32, original_size [2] int64, num_faces [] int64, source [] string,
    coefficients [257] float32, landmarks68 [68, 2] float32 (zeros when absent) and
    has_ground_truth [] float32 (1.0 when both are present, else 0.0), landmarks68_detected [68, 2]
    float32 (zeros when absent) and has_landmarks68_detected [] float32. With embedding_size > 0
    (a coarse cache, where the fields must be present): also coarse_coefficients [257] and
    embedding [E].
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    parsed = tf.io.parse_single_example(serialized, feature_spec(embedding_size))
    image = tf.io.decode_png(parsed[IMAGE_KEY], channels=3)
    mask = tf.io.decode_png(parsed[MASK_KEY], channels=1)
    image = tf.ensure_shape(image, [crop_size, crop_size, 3])
    mask = tf.ensure_shape(mask, [crop_size, crop_size, 1])
    coefficients, has_coefficients = _optional(parsed["coefficients"], NUM_COEFFICIENTS,
                                               "coefficients")
    landmarks68, has_landmarks68 = _optional(parsed["landmarks68"], 2 * NUM_LANDMARKS68,
                                             "landmarks68")
    has_ground_truth = tf.logical_and(has_coefficients, has_landmarks68)
    zero = tf.zeros_like(coefficients)
    coefficients = tf.where(has_ground_truth, coefficients, zero)
    landmarks68 = tf.where(has_ground_truth, landmarks68, tf.zeros_like(landmarks68))
    detected68, has_detected68 = _optional(parsed[DETECTED68_KEY], 2 * NUM_LANDMARKS68, DETECTED68_KEY)
    coarse = {"coarse_coefficients": parsed[COARSE_COEFFICIENTS_KEY],
              "embedding": parsed[EMBEDDING_KEY]} if embedding_size > 0 else {}
    return {
        **coarse,
        "image": image,
        "mask": mask,
        "landmarks": tf.reshape(parsed["landmarks"], [5, 2]),
        "transform": tf.reshape(parsed["transform"], [2, 3]),
        "original_size": parsed["original_size"],
        "num_faces": parsed["num_faces"][0],
        "source": parsed["source"],
        "coefficients": coefficients,
        "landmarks68": tf.reshape(landmarks68, [NUM_LANDMARKS68, 2]),
        "has_ground_truth": tf.cast(has_ground_truth, tf.float32),
        "landmarks68_detected": tf.reshape(detected68, [NUM_LANDMARKS68, 2]),
        "has_landmarks68_detected": tf.cast(has_detected68, tf.float32),
    }


def write_shard(path: str, serialized_examples) -> int:
    """Writes serialized examples to ``path`` atomically (temp file, then os.replace).

    Returns the number of records written.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from face_gcn import fileio  # pylint: disable=import-outside-toplevel
    count = 0
    with fileio.atomic_path(path) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in serialized_examples:
                writer.write(record)
                count += 1
    return count


_RECORD_HEADER = 12   # uint64 length, uint32 masked CRC of the length
_RECORD_FOOTER = 4    # uint32 masked CRC of the data


def count_framed_records(path: str) -> int:
    """Records in a TFRecord file, from its length fields alone (seeks; reads no payload).

    Raises ValueError naming the file and the byte offset where a record is cut short (a file
    truncated by a kill or a full disk) or a length field points past the end. Payload CRCs are
    not checked here (TensorFlow checks them while reading)."""
    size = os.path.getsize(path)
    count, offset = 0, 0
    with open(path, "rb") as handle:
        while offset < size:
            header = handle.read(_RECORD_HEADER)
            if len(header) < _RECORD_HEADER:
                raise ValueError(f"{path}: truncated TFRecord file: record {count} starts at byte {offset} but the "
                                 f"file ends at byte {size} ({count} complete records); prepare it again")
            (length,) = struct.unpack("<Q", header[:8])
            end = offset + _RECORD_HEADER + length + _RECORD_FOOTER
            if end > size:
                raise ValueError(f"{path}: truncated or damaged TFRecord file: record {count} at byte {offset} "
                                 f"needs {end - offset} bytes, the file ends at byte {size} ({count} complete "
                                 "records); prepare it again")
            handle.seek(end)
            offset, count = end, count + 1
    return count


def count_records(files) -> int:
    """Records in TFRecord files, each checked for truncation (count_framed_records)."""
    return sum(count_framed_records(path) for path in files)


def data_loss_message(files, error) -> str:
    """A one-line account of TensorFlow's DataLossError while reading ``files`` (a record whose CRC
    does not match: its bytes changed after it was written)."""
    detail = tf_errors.message_line(error)
    where = files[0] if len(files) == 1 else f"one of {len(files)} files ({files[0]} ...)"
    return f"damaged training data in {where}: {detail}; prepare the data again"
