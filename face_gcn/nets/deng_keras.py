"""Deng et al.'s regressor (FaceReconModel.pb) rebuilt as a Keras model, weights copied by name.

Deng's R-Net (microsoft/Deep3DFaceReconstruction, networks.py) is TF-slim's resnet_v1_50 under
resnet_arg_scope, then seven 1x1 convolutions with biases on pool5, squeezed and concatenated:

    input_imgs [B, 224, 224, 3] BGR in [0, 255] (no mean subtraction)
    resnet_v1_50/Pad (3, 3) -> conv1 7x7 stride 2 VALID -> BatchNorm -> ReLU
    resnet_v1_50/pool1: 3x3 max-pool stride 2 'SAME'
    block1..block4 of bottleneck_v1 units (3, 4, 6, 3 units; bottleneck widths 64, 128, 256, 512;
      output depth 4x): conv1 1x1 -> BN -> ReLU, conv2 3x3 (stride s: explicit Pad (1, 1) then
      VALID, else 'SAME') -> BN -> ReLU, conv3 1x1 -> BN; the shortcut is a 1x1 conv (stride s) +
      BN where the depth changes, else the input subsampled by a 1x1 max-pool of stride s;
      ReLU(shortcut + residual). The stride (2 in blocks 1-3, 1 in block 4) sits in each block's
      LAST unit.
    resnet_v1_50/pool5: spatial mean [B, 1, 1, 2048]
    fc-id 80 | fc-ex 64 | fc-tex 80 | fc-angles 3 | fc-gamma 27 | fc-XY 2 | fc-Z 1 -> coeff [B, 257]

Convolutions in the backbone have no biases; batch norms have gamma, beta, moving_mean and
moving_variance (slim's scale=True) and epsilon 1e-5 (TF1's fused_batch_norm raised epsilons below
1.001e-5 to that value): the converter takes the epsilon the graph's FusedBatchNorm nodes carry.

The Keras model takes what face_gcn's regressors take (RGB in [0, 255]; the flip to BGR is its
first layer, face_gcn.nets.regressor.RgbToBgr) and gives what they give: {"coefficients" [B, 257],
"features" [B, 2048]}, with the seven heads as one Dense layer (their kernels side by side).
Layers are named after the graph's scopes with "/" -> "." and "resnet_v1_50/", "bottleneck_v1/"
left out: "conv1", "block2.unit_4.conv2", "block2.unit_4.conv2.bn", "block1.unit_1.shortcut".

The layout (units per block, widths, strides) is read from the graph, so a narrower or shallower
graph with the same names converts too (the tests use one); Deng's file has RESNET_V1_50.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping

import keras
import numpy as np
import tensorflow as tf

from face_gcn.nets import regressor as regressor_lib

SCOPE = "resnet_v1_50"
UNIT_SCOPE = "bottleneck_v1"
HEADS = (("fc-id", 80), ("fc-ex", 64), ("fc-tex", 80), ("fc-angles", 3), ("fc-gamma", 27), ("fc-XY", 2),
         ("fc-Z", 1))
BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")  # Keras BatchNormalization's order
SLIM_EPSILON = 1e-5
SLIM_BN_DECAY = 0.997
_WEIGHT_SUFFIXES = ("/weights", "/biases") + tuple("/BatchNorm/" + name for name in BN_VARIABLES)
_UNIT = re.compile(rf"^{SCOPE}/block(\d+)/unit_(\d+)/{UNIT_SCOPE}/conv1/weights$")


class DengConversionError(ValueError):
    """The graph does not hold Deng's network as convert-deng expects it; the message says what."""


@dataclasses.dataclass(frozen=True)
class BlockLayout:
    """One block of bottleneck units: output depth, bottleneck width, and each unit's stride."""

    depth: int
    bottleneck: int
    strides: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Layout:
    """The backbone's shape: root conv (kernel, width, stride), pool1, and the blocks."""

    blocks: tuple[BlockLayout, ...]
    root_width: int = 64
    root_kernel: int = 7
    root_stride: int = 2
    pool_size: int = 3
    pool_stride: int = 2
    pool_padding: str = "same"
    unit_kernel: int = 3
    epsilon: float = 1.001e-5  # slim's 1e-5 as TF1's fused batch norm stores it

    @property
    def feature_size(self) -> int:
        return self.blocks[-1].depth

    def describe(self) -> str:
        units = ", ".join(str(len(block.strides)) for block in self.blocks)
        widths = ", ".join(str(block.bottleneck) for block in self.blocks)
        return f"units {units}; bottleneck widths {widths}; {self.feature_size} features"


def _slim_block(depth: int, units: int, stride: int) -> BlockLayout:
    return BlockLayout(4 * depth, depth, (1,) * (units - 1) + (stride,))


RESNET_V1_50 = Layout(blocks=(_slim_block(64, 3, 2), _slim_block(128, 4, 2), _slim_block(256, 6, 2),
                              _slim_block(512, 3, 1)))


def graph_scope(layer_name: str) -> str:
    """Keras layer name -> the graph scope whose variables it holds ("block1.unit_2.conv3" ->
    "resnet_v1_50/block1/unit_2/bottleneck_v1/conv3"; "conv1" -> "resnet_v1_50/conv1")."""
    parts = layer_name.split(".")
    if len(parts) == 1:
        return f"{SCOPE}/{parts[0]}"
    return "/".join([SCOPE, parts[0], parts[1], UNIT_SCOPE] + parts[2:])


def _conv_bn(x, name: str, width: int, kernel: int, stride: int, epsilon: float, relu: bool):
    """slim.conv2d (no bias) + batch norm [+ ReLU]; stride > 1 with kernel > 1 is conv2d_same:
    explicit zero padding (k-1)//2 before, the rest after, then VALID."""
    if stride > 1 and kernel > 1:
        before = (kernel - 1) // 2
        x = keras.layers.ZeroPadding2D(((before, kernel - 1 - before),) * 2, name=f"{name}.pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = keras.layers.Conv2D(width, kernel, strides=stride, padding=padding, use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=SLIM_BN_DECAY, epsilon=epsilon, name=f"{name}.bn")(x)
    return keras.layers.ReLU(name=f"{name}.relu")(x) if relu else x


def build_deng_regressor(layout: Layout = RESNET_V1_50, name: str = "deng_resnet_v1_50") -> keras.Model:
    """The Keras model of Deng's network (random weights; convert_graph_def fills them in).

    Returns a model from images [B, 224, 224, 3] (float32 RGB in [0, 255]) to {"coefficients"
    [B, 257], "features" [B, layout.feature_size]}, like regressor.build_regressor's.
    """
    size = regressor_lib.INPUT_SIZE
    images = keras.Input(shape=(size, size, 3), name="images")
    x = regressor_lib.RgbToBgr(name="rgb_to_bgr")(images)
    x = _conv_bn(x, "conv1", layout.root_width, layout.root_kernel, layout.root_stride, layout.epsilon, relu=True)
    x = keras.layers.MaxPooling2D(layout.pool_size, strides=layout.pool_stride, padding=layout.pool_padding,
                                  name="pool1")(x)
    depth_in = layout.root_width
    for b, block in enumerate(layout.blocks, start=1):
        for u, stride in enumerate(block.strides, start=1):
            unit = f"block{b}.unit_{u}"
            if block.depth != depth_in:
                shortcut = _conv_bn(x, f"{unit}.shortcut", block.depth, 1, stride, layout.epsilon, relu=False)
            elif stride > 1:
                shortcut = keras.layers.MaxPooling2D(1, strides=stride, padding="same", name=f"{unit}.shortcut")(x)
            else:
                shortcut = x
            residual = _conv_bn(x, f"{unit}.conv1", block.bottleneck, 1, 1, layout.epsilon, relu=True)
            residual = _conv_bn(residual, f"{unit}.conv2", block.bottleneck, layout.unit_kernel, stride,
                                layout.epsilon, relu=True)
            residual = _conv_bn(residual, f"{unit}.conv3", block.depth, 1, 1, layout.epsilon, relu=False)
            x = keras.layers.Add(name=f"{unit}.add")([shortcut, residual])
            x = keras.layers.ReLU(name=f"{unit}.relu")(x)
            depth_in = block.depth
    features = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
    coefficients = keras.layers.Dense(regressor_lib.NUM_COEFFICIENTS, name="coefficients")(features)
    return keras.Model(images, {"coefficients": coefficients, "features": features}, name=name)


def graph_constants(graph_def: tf.compat.v1.GraphDef) -> dict[str, np.ndarray]:
    """{node name: value} of the graph's float Const nodes that look like slim variables
    (.../weights, .../biases, .../BatchNorm/{gamma,beta,moving_mean,moving_variance}), as float32."""
    constants = {}
    for node in graph_def.node:
        if node.op == "Const" and node.name.endswith(_WEIGHT_SUFFIXES):
            value = tf.make_ndarray(node.attr["value"].tensor)
            if np.issubdtype(value.dtype, np.floating):
                constants[node.name] = value.astype(np.float32, copy=False)
    return constants


def _node_int_attr(nodes: Mapping[str, tf.compat.v1.NodeDef], name: str, attr: str, index: int, default: int):
    node = nodes.get(name)
    if node is None or attr not in node.attr:
        return default
    return int(node.attr[attr].list.i[index])


def _bn_epsilon(graph_def: tf.compat.v1.GraphDef) -> float:
    """The batch norms' epsilon: the FusedBatchNorm nodes' attribute (all must agree), else the
    non-fused form's `BatchNorm/batchnorm/add/y` constant, else slim's 1e-5."""
    found = set()
    for node in graph_def.node:
        if node.op.startswith("FusedBatchNorm") and "/BatchNorm/" in node.name:
            found.add(round(float(node.attr["epsilon"].f), 12))
        elif node.op == "Const" and node.name.endswith("/BatchNorm/batchnorm/add/y"):
            found.add(round(float(tf.make_ndarray(node.attr["value"].tensor)), 12))
    if len(found) > 1:
        raise DengConversionError(f"batch norms with different epsilons {sorted(found)}")
    return found.pop() if found else SLIM_EPSILON


def infer_layout(graph_def: tf.compat.v1.GraphDef, constants: Mapping[str, np.ndarray]) -> Layout:
    """The backbone's Layout from the names and shapes of its weights and the strides of its nodes.

    Raises DengConversionError when the weights do not form a resnet_v1 of bottleneck units.
    """
    nodes = {node.name: node for node in graph_def.node}
    root = constants.get(f"{SCOPE}/conv1/weights")
    if root is None:
        raise DengConversionError(f"no constant {SCOPE}/conv1/weights (not Deng's resnet_v1_50 network, "
                                  "or its variables were renamed)")
    if root.ndim != 4 or root.shape[0] != root.shape[1] or root.shape[2] != 3:
        raise DengConversionError(f"{SCOPE}/conv1/weights has shape {root.shape}, expected [k, k, 3, width]")
    units = {}
    for name in constants:
        match = _UNIT.match(name)
        if match:
            units.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if not units or sorted(units) != list(range(1, len(units) + 1)):
        raise DengConversionError(f"blocks {sorted(units)} under {SCOPE}/, expected block1, block2, ...")
    depth_in = int(root.shape[3])
    blocks = []
    for b in sorted(units):
        if sorted(units[b]) != list(range(1, len(units[b]) + 1)):
            raise DengConversionError(f"{SCOPE}/block{b} has units {sorted(units[b])}, expected unit_1, unit_2, ...")
        depth = bottleneck = None
        strides = []
        for u in sorted(units[b]):
            scope = f"{SCOPE}/block{b}/unit_{u}/{UNIT_SCOPE}"
            shapes = {}
            for conv in ("conv1", "conv2", "conv3"):
                if f"{scope}/{conv}/weights" not in constants:
                    raise DengConversionError(f"no constant {scope}/{conv}/weights")
                shapes[conv] = constants[f"{scope}/{conv}/weights"].shape
            width = shapes["conv1"][3]
            expected = {"conv1": (1, 1, depth_in, width), "conv3": (1, 1, width, shapes["conv3"][3])}
            expected["conv2"] = (shapes["conv2"][0], shapes["conv2"][0], width, width)
            for conv, shape in shapes.items():
                if tuple(shape) != expected[conv]:
                    raise DengConversionError(f"{scope}/{conv}/weights has shape {tuple(shape)}, "
                                              f"expected {expected[conv]}")
            if (depth, bottleneck) not in ((None, None), (shapes["conv3"][3], width)):
                raise DengConversionError(f"{scope} changes the widths of block{b}")
            depth, bottleneck = int(shapes["conv3"][3]), int(width)
            if shapes["conv2"][0] != RESNET_V1_50.unit_kernel:
                raise DengConversionError(f"{scope}/conv2 is {shapes['conv2'][0]}x{shapes['conv2'][0]}, expected 3x3")
            has_shortcut = f"{scope}/shortcut/weights" in constants
            if has_shortcut and depth == depth_in:
                raise DengConversionError(f"{scope} has a shortcut convolution but keeps the depth ({depth})")
            if not has_shortcut and depth != depth_in:
                raise DengConversionError(f"{scope} changes the depth ({depth_in} -> {depth}) but has no constant "
                                          f"{scope}/shortcut/weights")
            default_stride = 2 if u == len(units[b]) and b < len(units) else 1
            strides.append(_node_int_attr(nodes, f"{scope}/conv2/Conv2D", "strides", 1, default_stride))
            depth_in = depth
        blocks.append(BlockLayout(depth, bottleneck, tuple(strides)))
    pool = nodes.get(f"{SCOPE}/pool1/MaxPool")
    pool_padding = pool.attr["padding"].s.decode().lower() if pool is not None and "padding" in pool.attr else "same"
    return Layout(blocks=tuple(blocks), root_width=int(root.shape[3]), root_kernel=int(root.shape[0]),
                  root_stride=_node_int_attr(nodes, f"{SCOPE}/conv1/Conv2D", "strides", 1, 2),
                  pool_size=_node_int_attr(nodes, f"{SCOPE}/pool1/MaxPool", "ksize", 1, 3),
                  pool_stride=_node_int_attr(nodes, f"{SCOPE}/pool1/MaxPool", "strides", 1, 2),
                  pool_padding=pool_padding, epsilon=_bn_epsilon(graph_def))


def _take(constants: Mapping[str, np.ndarray], used: set, name: str, shape) -> np.ndarray:
    if name not in constants:
        raise DengConversionError(f"no constant {name}")
    value = constants[name]
    if tuple(value.shape) != tuple(shape):
        raise DengConversionError(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    used.add(name)
    return value


def convert_graph_def(graph_def: tf.compat.v1.GraphDef, name: str = "deng_resnet_v1_50"):
    """Deng's frozen graph -> (Keras model with its weights, Layout, number of values copied).

    Every backbone layer takes its weights from the Const nodes of its scope; the seven heads'
    kernels [1, 1, F, n] and biases [n] become the "coefficients" Dense layer. Weight constants under
    resnet_v1_50/ or fc-*/ that the model has no place for are an error (another layout).
    """
    constants = graph_constants(graph_def)
    layout = infer_layout(graph_def, constants)
    model = build_deng_regressor(layout, name=name)
    used: set[str] = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            scope = graph_scope(layer.name)
            layer.set_weights([_take(constants, used, f"{scope}/weights", layer.kernel.shape)])
        elif isinstance(layer, keras.layers.BatchNormalization):
            scope = graph_scope(layer.name[:-len(".bn")]) + "/BatchNorm"
            width = layer.gamma.shape[0]
            values = []
            for variable in BN_VARIABLES:
                if variable == "gamma" and f"{scope}/gamma" not in constants:
                    values.append(np.ones(width, np.float32))  # slim with scale=False
                else:
                    values.append(_take(constants, used, f"{scope}/{variable}", (width,)))
            layer.set_weights(values)
    features = layout.feature_size
    kernels, biases = [], []
    for head, width in HEADS:
        kernels.append(_take(constants, used, f"{head}/weights", (1, 1, features, width)).reshape(features, width))
        biases.append(_take(constants, used, f"{head}/biases", (width,)))
    model.get_layer("coefficients").set_weights([np.concatenate(kernels, axis=1), np.concatenate(biases)])
    unused = sorted(n for n in constants if n not in used and (n.startswith(SCOPE + "/") or n.startswith("fc-")))
    if unused:
        more = f" and {len(unused) - 3} more" if len(unused) > 3 else ""
        raise DengConversionError(f"weights the resnet_v1_50 layout has no place for: {', '.join(unused[:3])}{more}")
    return model, layout, int(sum(constants[n].size for n in used))


def compare_with_graph(model: keras.Model, frozen, num_images: int = 3, seed: int = 0) -> dict:
    """Runs the Keras model and the frozen graph (frozen: a deng_graph.DengFrozenRegressor) on
    random RGB images in [0, 255], one image at a time through the graph (a frozen graph may fix
    its batch at 1). Returns {"coefficients": max |difference|, "features": max |difference|,
    "coefficient_scale": max |graph coefficient|, "feature_scale": max |graph feature|}."""
    rng = np.random.default_rng(seed)
    size = regressor_lib.INPUT_SIZE
    images = rng.uniform(0.0, 255.0, (num_images, size, size, 3)).astype(np.float32)
    got = regressor_lib.regress(model, images)
    want_coefficients, want_features = [], []
    for image in images:
        coefficients, features = frozen(image[None])
        want_coefficients.append(coefficients.numpy()[0])
        want_features.append(features.numpy()[0])
    want_coefficients, want_features = np.stack(want_coefficients), np.stack(want_features)
    return {"coefficients": float(np.max(np.abs(got.coefficients.numpy() - want_coefficients))),
            "features": float(np.max(np.abs(got.features.numpy() - want_features))),
            "coefficient_scale": float(np.max(np.abs(want_coefficients))),
            "feature_scale": float(np.max(np.abs(want_features)))}
