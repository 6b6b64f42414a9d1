"""Deng et al.'s released regressor, FaceReconModel.pb (a TF1 frozen GraphDef), loaded by path.

Tensor names as in microsoft/Deep3DFaceReconstruction's demo: input `input_imgs:0`
([B, 224, 224, 3] float32, BGR, 0-255), outputs `coeff:0` [B, 257] and
`resnet_v1_50/pool5:0` [B, 1, 1, 2048]. Our API takes RGB in [0, 255] like build_regressor.

The training and inference pipelines take Keras regressors: `face-gcn convert-deng` rebuilds this
graph as one (face_gcn.nets.deng_keras) and checks it against the graph run through this wrapper.
"""

from __future__ import annotations

import os

import tensorflow as tf
from google.protobuf import message

from face_gcn import fileio
from face_gcn.nets.regressor import FEATURE_SIZE, INPUT_SIZE, NUM_COEFFICIENTS, RegressorOutputs

INPUT_TENSOR = "input_imgs:0"
COEFF_TENSOR = "coeff:0"
POOL5_TENSOR = "resnet_v1_50/pool5:0"


class DengGraphError(ValueError):
    """The file is not a usable Deng regressor graph."""


def read_graph_def(path: str) -> tf.compat.v1.GraphDef:
    """Parses a binary GraphDef file; raises FileNotFoundError / DengGraphError naming `path`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"frozen graph not found: {path}")
    fileio.refuse_lfs_pointer(path, "frozen graph", DengGraphError)
    with open(path, "rb") as f:
        data = f.read()
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except message.DecodeError as error:
        raise DengGraphError(f"{path}: not a binary TensorFlow GraphDef ({error})") from None
    if not graph_def.node:
        raise DengGraphError(f"{path}: not a TensorFlow GraphDef (no nodes)")
    return graph_def


class DengFrozenRegressor:
    """Callable wrapper of FaceReconModel.pb: RGB images -> RegressorOutputs.

    Example:
      regressor = DengFrozenRegressor("network/FaceReconModel.pb")
      coefficients, features = regressor(images)  # [B, 257], [B, 2048]
    """

    def __init__(self, path: str, graph_def: tf.compat.v1.GraphDef | None = None,
                 feature_size: int | None = FEATURE_SIZE):
        """path: the .pb file (read unless `graph_def`, its parsed contents, is given; then only
        named in messages). feature_size: the pool5 width required (None: any)."""
        self.path = os.fspath(path)
        self.feature_size = feature_size
        if graph_def is None:
            graph_def = read_graph_def(self.path)
        node_names = {node.name for node in graph_def.node}
        missing = [name for name in (INPUT_TENSOR, COEFF_TENSOR, POOL5_TENSOR)
                   if name.rsplit(":", 1)[0] not in node_names]
        if missing:
            raise DengGraphError(f"{self.path}: missing tensors {', '.join(missing)} "
                                 "(expected Deng's FaceReconModel.pb)")

        def import_graph(images_bgr):
            coeff, pool5 = tf.compat.v1.import_graph_def(
                graph_def, name="deng", input_map={INPUT_TENSOR: images_bgr},
                return_elements=[COEFF_TENSOR, POOL5_TENSOR])
            return coeff, pool5

        spec = tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 3], tf.float32)
        try:
            self._function = tf.compat.v1.wrap_function(import_graph, [spec])
        except (ValueError, TypeError) as error:
            raise DengGraphError(f"{self.path}: cannot import the graph ({error})") from None
        coeff_shape, pool5_shape = (t.shape for t in self._function.outputs)
        if coeff_shape.rank not in (None, 2) or coeff_shape[-1] not in (None, NUM_COEFFICIENTS):
            raise DengGraphError(f"{self.path}: {COEFF_TENSOR} has shape {coeff_shape}, "
                                 f"expected [B, {NUM_COEFFICIENTS}]")
        if (feature_size is not None and pool5_shape.rank is not None
                and pool5_shape[-1] not in (None, feature_size)):
            raise DengGraphError(f"{self.path}: {POOL5_TENSOR} has shape {pool5_shape}, "
                                 f"expected [B, 1, 1, {feature_size}]")

    def __call__(self, images) -> RegressorOutputs:
        """images: [B, 224, 224, 3] float32 RGB in [0, 255] -> coefficients [B, 257],
        features [B, 2048]."""
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank != 4 or tuple(images.shape[1:]) != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"images must be [B, {INPUT_SIZE}, {INPUT_SIZE}, 3], "
                             f"got {images.shape}")
        coeff, pool5 = self._function(tf.reverse(images, axis=[-1]))
        batch = tf.shape(images)[0]
        if coeff.shape[-1] != NUM_COEFFICIENTS:
            raise DengGraphError(f"{self.path}: {COEFF_TENSOR} gave shape {coeff.shape}")
        spatial = tuple(pool5.shape[1:-1])
        width = self.feature_size or pool5.shape[-1]
        if pool5.shape[-1] != width or any(d not in (1, None) for d in spatial):
            raise DengGraphError(f"{self.path}: {POOL5_TENSOR} gave shape {pool5.shape}, "
                                 f"expected [B, 1, 1, {width}]")
        return RegressorOutputs(coeff, tf.reshape(pool5, [batch, width]))
