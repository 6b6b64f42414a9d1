"""Identity recognizers for evaluation, loaded from local files (never downloaded).

The paper measures identity preservation with recognizers trained apart from its own loss
(LightCNN, evoLVe); users bring such a network as

  SavedModelRecognizer  a TensorFlow SavedModel (a named signature, or serving_default / the
                        first one), input float [B, H, W, C];
  OnnxRecognizer        an ONNX model run with onnxruntime (NCHW or NHWC input, detected);
  FaceNetRecognizer     FaceNet (Inception-ResNet-v1) with keras-facenet weights converted by
                        `face-gcn convert-facenet` (face_gcn.nets.facenet).
  FaceDescriptorRecognizer  dlib's 128-d face descriptor (face_gcn.nets.face_descriptor), its packaged
                        weights by default (the face_recognition_models package, converted once) or a
                        .weights.h5 from `face-gcn convert-face-api`: what evaluate uses when no
                        recognizer is given.

All share `embed(images) -> [B, D]`: images are RGB [B, H, W, 3] in [0, 255], uint8 or float.
SavedModel and ONNX networks get them resized bilinearly to `input_size` (the network's own
static size when not given), converted to grey when the network takes one channel (ITU-R 601
luma), reordered to BGR if asked, and scaled by `preprocessing`:
  "facenet"  (x - 127.5) / 128
  "unit"     x / 255
  "raw"      x unchanged
"""

from __future__ import annotations

import os

import numpy as np

from face_gcn import savedmodel_io, tf_errors

PREPROCESSING = ("facenet", "unit", "raw")
KINDS = ("savedmodel", "onnx", "facenet", "face_descriptor")
_LUMA = np.array([0.299, 0.587, 0.114])


class RecognizerError(ValueError):
    """A recognizer cannot be loaded or does not fit the contract."""


def check_images(images) -> np.ndarray:
    """[B, H, W, 3] uint8 or float in [0, 255] -> float32 array; ValueError otherwise."""
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"images must be [B, H, W, 3], got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"images must be a non-empty batch, got shape {array.shape}")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [0, 255], got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError("images contain nan or inf")
    return array


def _size_pair(input_size) -> tuple[int, int] | None:
    if input_size is None:
        return None
    if isinstance(input_size, (int, np.integer)):
        input_size = (int(input_size), int(input_size))
    size = tuple(int(v) for v in input_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"input_size must be a positive int or (height, width), got "
                         f"{input_size!r}")
    return size


def preprocess(images, input_size=None, preprocessing: str = "facenet",
               channels: int = 3, channel_order: str = "rgb") -> np.ndarray:
    """RGB [B, H, W, 3] in [0, 255] -> network input [B, h, w, channels] float32 (NHWC).

    Args:
      images: [B, H, W, 3] uint8 or float, RGB in [0, 255].
      input_size: None (keep H, W), an int (square) or (height, width); bilinear resize.
      preprocessing: "facenet" ((x - 127.5) / 128), "unit" (x / 255) or "raw".
      channels: 3, or 1 for grey (0.299 R + 0.587 G + 0.114 B).
      channel_order: "rgb" or "bgr" (3 channels only).
    """
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
    if channels not in (1, 3):
        raise ValueError(f"the network must take 1 or 3 channels, takes {channels}")
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    images = check_images(images)
    size = _size_pair(input_size)
    if size is not None and size != images.shape[1:3]:
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        images = tf.image.resize(images, size, method="bilinear").numpy()
    if channels == 1:
        images = (images.astype(np.float64) @ _LUMA)[..., None].astype(np.float32)
    elif channel_order == "bgr":
        images = images[..., ::-1]
    if preprocessing == "facenet":
        images = (images - 127.5) / 128.0
    elif preprocessing == "unit":
        images = images / 255.0
    return np.ascontiguousarray(images, dtype=np.float32)


def _as_embeddings(output, batch: int, source: str) -> np.ndarray:
    output = np.asarray(output)
    if output.ndim > 2 and all(d == 1 for d in output.shape[2:]):
        output = output.reshape(output.shape[:2])  # e.g. [B, D, 1, 1] from a 1x1 conv head
    if output.ndim != 2 or output.shape[0] != batch:
        raise RecognizerError(f"{source} must return embeddings [B, D] with B = {batch}, "
                              f"returned shape {output.shape}")
    return output.astype(np.float32, copy=False)


class Recognizer:
    """Base class: `embed(images [B, H, W, 3] in [0, 255]) -> [B, D] float32` in batches of
    `batch_size`. Subclasses implement `_embed_batch(float32 [b, H, W, 3]) -> [b, D]`."""

    name = "recognizer"

    def __init__(self, batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)

    def embed(self, images) -> np.ndarray:
        """images: [B, H, W, 3] uint8 or float RGB in [0, 255] -> [B, D] float32 embeddings."""
        images = check_images(images)
        chunks = [self._checked_batch(images[start:start + self.batch_size])
                  for start in range(0, images.shape[0], self.batch_size)]
        dims = {chunk.shape[1] for chunk in chunks}
        if len(dims) != 1:
            raise RecognizerError(f"{self.name} returned embeddings of sizes {sorted(dims)}")
        return np.concatenate(chunks, axis=0)

    def _checked_batch(self, images: np.ndarray) -> np.ndarray:
        """_embed_batch, with a network that fails or returns NaN/inf reported as a RecognizerError."""
        try:
            embeddings = np.asarray(self._embed_batch(images))
        except RecognizerError:
            raise
        except Exception as error:  # pylint: disable=broad-except  (a user's network: any TF or runtime error)
            detail = tf_errors.message_line(error)
            raise RecognizerError(f"{self.name} failed on {len(images)} image(s) of {images.shape[1:]}: "
                                  f"{type(error).__name__}: {detail}") from None
        if embeddings.ndim != 2 or embeddings.shape[0] != len(images):
            raise RecognizerError(f"{self.name} returned {embeddings.shape} for {len(images)} images; expected [B, D]")
        if not np.all(np.isfinite(embeddings)):
            raise RecognizerError(f"{self.name} returned NaN or inf embeddings")
        return embeddings

    def _embed_batch(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SavedModelRecognizer(Recognizer):
    """A TensorFlow SavedModel whose signature maps one image tensor [B, H, W, C] (C = 3, or 1
    for grey) to embeddings [B, D].

    Args:
      path: the SavedModel directory.
      signature: signature name; None: "serving_default" if present, else the first one.
      output: the output key when the signature returns several; None: the only output.
      input_size: resize to this (int or (h, w)); None: the signature's static H, W if any.
      preprocessing: "facenet" | "unit" | "raw" (see the module docstring).
      channel_order: "rgb" or "bgr".
    """

    def __init__(self, path: str, signature: str | None = None, output: str | None = None,
                 input_size=None, preprocessing: str = "facenet", channel_order: str = "rgb",
                 batch_size: int = 32):
        super().__init__(batch_size)
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"preprocessing must be one of {PREPROCESSING}, "
                             f"got {preprocessing!r}")
        loaded = savedmodel_io.load_signature(path, signature, role="recognizer", error=RecognizerError)
        self._loaded = loaded  # keeps the variables alive
        self._function = loaded.function
        self._input_name, spec, signature = loaded.input_name, loaded.input_spec, loaded.name
        shape = spec.shape
        if shape.rank != 4 or shape[-1] not in (1, 3):
            raise RecognizerError(f"recognizer input {self._input_name!r} must be [B, H, W, 3] "
                                  f"or [B, H, W, 1], is {shape}")
        self._dtype = spec.dtype
        self._channels = int(shape[-1])
        outputs = self._function.structured_outputs
        if output is None:
            if len(outputs) != 1:
                raise RecognizerError(f"recognizer signature {signature!r} returns several "
                                      f"outputs {sorted(outputs)}: name one")
            output = next(iter(outputs))
        elif output not in outputs:
            raise RecognizerError(f"recognizer signature {signature!r} has no output "
                                  f"{output!r} (has {sorted(outputs)})")
        self._output = output
        static = (shape[1], shape[2])
        self.input_size = _size_pair(input_size) or (static if None not in static else None)
        self.preprocessing = preprocessing
        self.channel_order = channel_order
        self.signature = signature
        self.name = f"savedmodel:{path}"
        preprocess(np.zeros((1, 2, 2, 3), np.uint8), None, preprocessing, self._channels,
                   channel_order)  # validates the options now

    def _embed_batch(self, images):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        net_input = preprocess(images, self.input_size, self.preprocessing, self._channels,
                               self.channel_order)
        result = self._function(**{self._input_name: tf.cast(net_input, self._dtype)})
        return _as_embeddings(result[self._output].numpy(), images.shape[0], self.name)


class OnnxRecognizer(Recognizer):
    """An ONNX model run with onnxruntime (CPU), one image input, embeddings [B, D] out.

    The layout is read from the model's input shape: [B, C, H, W] (NCHW, as most exported
    PyTorch recognizers) when dimension 1 is 1 or 3, else [B, H, W, C].

    Args:
      path: the .onnx file.
      input_name / output: names; None: the only input / the first output.
      input_size, preprocessing, channel_order: as for SavedModelRecognizer.
      layout: "auto", "nchw" or "nhwc".
    """

    def __init__(self, path: str, input_name: str | None = None, output: str | None = None,
                 input_size=None, preprocessing: str = "facenet", channel_order: str = "rgb",
                 layout: str = "auto", batch_size: int = 32):
        super().__init__(batch_size)
        try:
            import onnxruntime  # pylint: disable=import-outside-toplevel
        except ImportError as error:
            raise RecognizerError("ONNX recognizers need the 'onnxruntime' package "
                                  "(pip install onnxruntime)") from error
        if not os.path.isfile(path):
            raise RecognizerError(f"recognizer ONNX file not found: {path}")
        if layout not in ("auto", "nchw", "nhwc"):
            raise ValueError(f"layout must be 'auto', 'nchw' or 'nhwc', got {layout!r}")
        try:
            self._session = onnxruntime.InferenceSession(
                path, providers=["CPUExecutionProvider"])
        except Exception as error:  # pylint: disable=broad-except
            raise RecognizerError(f"could not load an ONNX model from {path}: {error}") \
                from error
        inputs = {i.name: i for i in self._session.get_inputs()}
        if input_name is None:
            if len(inputs) != 1:
                raise RecognizerError(f"ONNX model {path} takes several inputs {sorted(inputs)}"
                                      ": name the image one")
            input_name = next(iter(inputs))
        if input_name not in inputs:
            raise RecognizerError(f"ONNX model {path} has no input {input_name!r} "
                                  f"(has {sorted(inputs)})")
        info = inputs[input_name]
        shape = list(info.shape)
        if len(shape) != 4:
            raise RecognizerError(f"ONNX input {input_name!r} must be 4-D, is {shape}")
        if layout == "auto":
            layout = "nchw" if shape[1] in (1, 3) else "nhwc"
        channel_dim, spatial = (1, shape[2:4]) if layout == "nchw" else (3, shape[1:3])
        channels = shape[channel_dim]
        if channels not in (1, 3):
            raise RecognizerError(f"ONNX input {input_name!r} {shape} read as {layout} does not "
                                  "take 1 or 3 channels")
        if info.type not in ("tensor(float)", "tensor(float16)", "tensor(double)"):
            raise RecognizerError(f"ONNX input {input_name!r} must be a float tensor, is "
                                  f"{info.type}")
        self._dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                       "tensor(double)": np.float64}[info.type]
        output_names = [o.name for o in self._session.get_outputs()]
        if output is None:
            output = output_names[0]
        elif output not in output_names:
            raise RecognizerError(f"ONNX model {path} has no output {output!r} "
                                  f"(has {output_names})")
        self._input_name, self._output, self._channels = input_name, output, int(channels)
        self.layout = layout
        static = tuple(spatial) if all(isinstance(d, int) for d in spatial) else None
        self.input_size = _size_pair(input_size) or static
        self.preprocessing = preprocessing
        self.channel_order = channel_order
        self.name = f"onnx:{path}"
        preprocess(np.zeros((1, 2, 2, 3), np.uint8), None, preprocessing, self._channels,
                   channel_order)  # validates the options now

    def _embed_batch(self, images):
        net_input = preprocess(images, self.input_size, self.preprocessing, self._channels,
                               self.channel_order)
        if self.layout == "nchw":
            net_input = np.ascontiguousarray(net_input.transpose(0, 3, 1, 2))
        result = self._session.run([self._output],
                                   {self._input_name: net_input.astype(self._dtype)})[0]
        return _as_embeddings(result, images.shape[0], self.name)


class NetworkRecognizer(Recognizer):
    """One of face_gcn's own recognition networks (face_gcn.nets.recognition) with weights from a local
    `.weights.h5`; returns its unit embedding. weights None: the network's packaged weights (dlib's
    descriptor only)."""

    kind = ""

    def __init__(self, weights: str | None = None, batch_size: int = 32):
        super().__init__(batch_size)
        from face_gcn.nets import recognition  # pylint: disable=import-outside-toplevel
        label = recognition.NAMES[self.kind]
        if weights is not None and not os.path.isfile(weights):
            raise RecognizerError(f"{label} weights file not found: {weights}")
        try:
            self._model = recognition.build(self.kind, weights)
        except Exception as error:  # pylint: disable=broad-except
            raise RecognizerError(f"could not load {label} weights from {weights or 'its package'}: "
                                  f"{tf_errors.message_line(error)}") from error
        self._recognition = recognition
        self.name = f"{self.kind}:{weights or 'packaged'}"

    def _embed_batch(self, images):
        outputs = self._recognition.embed(self._model, images)
        return _as_embeddings(outputs.embedding.numpy(), images.shape[0], self.name)


class FaceNetRecognizer(NetworkRecognizer):
    """FaceNet (face_gcn.nets.facenet) with weights from `face-gcn convert-facenet`; 512-d unit embedding."""

    kind = "facenet"

    def __init__(self, weights: str, batch_size: int = 32):
        super().__init__(weights, batch_size)


class FaceDescriptorRecognizer(NetworkRecognizer):
    """dlib's face descriptor (face_gcn.nets.face_descriptor); 128-d unit embedding. weights None: the
    packaged ones."""

    kind = "face_descriptor"


def guess_kind(path: str) -> str:
    """"savedmodel" for a directory with saved_model.pb, "onnx" for *.onnx, and for *.h5 "facenet" or
    "face_descriptor" by the network its weights are for (FaceNet when the file cannot tell);
    RecognizerError otherwise."""
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "savedmodel"
    if path.lower().endswith(".onnx"):
        return "onnx"
    if path.lower().endswith(".h5"):
        from face_gcn.nets import recognition  # pylint: disable=import-outside-toplevel
        return recognition.weights_kind(path) or "facenet"
    if not os.path.exists(path):
        raise RecognizerError(f"recognizer not found: {path}")
    raise RecognizerError(f"cannot tell the recognizer kind of {path!r}: give the kind "
                          f"(one of {KINDS})")


def load_recognizer(path: str, kind: str = "auto", **options) -> Recognizer:
    """Loads a recognizer by path.

    Args:
      path: SavedModel directory, .onnx file, or a FaceNet or dlib descriptor .weights.h5.
      kind: "savedmodel", "onnx", "facenet", "face_descriptor" or "auto" (guess_kind).
      **options: the constructor's keyword arguments (input_size, preprocessing, ...); options
        that are None are dropped, so CLI defaults pass through.
    """
    if kind == "auto":
        kind = guess_kind(path)
    options = {key: value for key, value in options.items() if value is not None}
    if kind == "savedmodel":
        return SavedModelRecognizer(path, **options)
    if kind == "onnx":
        return OnnxRecognizer(path, **options)
    if kind in ("facenet", "face_descriptor"):
        unused = sorted(set(options) - {"batch_size"})
        if unused:
            raise RecognizerError(f"{kind} recognizers take no options {unused} (the network "
                                  "fixes its own size and preprocessing)")
        network = FaceNetRecognizer if kind == "facenet" else FaceDescriptorRecognizer
        return network(path, **options)
    raise RecognizerError(f"recognizer kind must be one of {KINDS} or 'auto', got {kind!r}")
