"""Frozen graphs laid out like Deng's FaceReconModel.pb, with random weights: the reference that
convert-deng's tests and benchmark compare the Keras rebuild against.

Built from raw TensorFlow ops in a TF1 graph (tf.pad, tf.nn.conv2d, fused batch norm, max-pool,
add, relu, reduce_mean, bias_add, squeeze, concat), not from Keras layers, with the node names
TF-slim and freeze_graph give Deng's network (e.g. resnet_v1_50/Pad, resnet_v1_50/conv1/weights,
resnet_v1_50/conv1/BatchNorm/FusedBatchNorm, resnet_v1_50/block1/unit_3/bottleneck_v1/shortcut/MaxPool,
resnet_v1_50/pool5, fc-id/weights, fc-id/squeezed, coeff): variables are Const nodes read through
Identity ".../read" nodes, as in a frozen graph.

The weights are random but scaled so that activations stay of order one through the network (the
input is BGR in [0, 255], as Deng's) and the 257 coefficients come out of order one, like a trained
network's, so that a 1e-3 comparison means something.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

RESNET_V1_50_WIDTHS = (64, 128, 256, 512)
RESNET_V1_50_UNITS = (3, 4, 6, 3)
HEAD_WIDTHS = (("fc-id", 80), ("fc-ex", 64), ("fc-tex", 80), ("fc-angles", 3), ("fc-gamma", 27), ("fc-XY", 2),
               ("fc-Z", 1))
EPSILON = 1e-5  # slim's (TF1's fused_batch_norm raised epsilons below 1.001e-5 to that)


class _Writer:
    def __init__(self, rng: np.random.Generator, epsilon: float):
        self.rng = rng
        self.epsilon = epsilon

    def variable(self, name: str, value: np.ndarray):
        constant = tf.constant(value.astype(np.float32), name=name)
        return tf.identity(constant, name=f"{name}/read")

    def conv_bn(self, x, scope: str, width: int, kernel: int, stride: int, relu: bool, gain: float = 1.0):
        """slim.conv2d + batch norm under `scope`; a strided kernel > 1 is conv2d_same (Pad + VALID),
        the Pad named in the enclosing scope as slim's is."""
        depth_in = int(x.shape[-1])
        fan_in = kernel * kernel * depth_in
        weights = self.rng.standard_normal((kernel, kernel, depth_in, width)) * np.sqrt(2.0 / fan_in)
        if stride > 1 and kernel > 1:
            before = (kernel - 1) // 2
            enclosing = scope.rsplit("/", 1)[0]
            x = tf.pad(x, [[0, 0], [before, kernel - 1 - before], [before, kernel - 1 - before], [0, 0]],
                       name=f"{enclosing}/Pad")
            padding = "VALID"
        else:
            padding = "SAME"
        y = tf.nn.conv2d(x, self.variable(f"{scope}/weights", weights), strides=[1, stride, stride, 1],
                         padding=padding, name=f"{scope}/Conv2D")
        # Moving statistics near the true ones for these weights (inputs of order one): the
        # normalised output is of order `gain`.
        mean = self.rng.normal(0.0, 0.2, width)
        variance = self.rng.uniform(0.6, 1.6, width)
        gamma = gain * self.rng.uniform(0.5, 1.0, width)
        beta = self.rng.normal(0.0, 0.2, width) * gain
        bn = f"{scope}/BatchNorm"
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            y, self.variable(f"{bn}/gamma", gamma), self.variable(f"{bn}/beta", beta),
            mean=self.variable(f"{bn}/moving_mean", mean), variance=self.variable(f"{bn}/moving_variance", variance),
            epsilon=self.epsilon, is_training=False, name=f"{bn}/FusedBatchNorm")
        return tf.nn.relu(y, name=f"{scope}/Relu") if relu else y


def build_graph_def(widths=RESNET_V1_50_WIDTHS, units=RESNET_V1_50_UNITS, root_width: int = 64, seed: int = 0,
                    epsilon: float = EPSILON, image_size: int = 224,
                    input_offset: float = 0.0) -> tf.compat.v1.GraphDef:
    """The GraphDef of Deng's R-Net with random weights: resnet_v1_50 (bottleneck `widths` and
    `units` per block; the defaults are the real ones) and the seven coefficient heads.

    input_offset: subtracted from the pixels before the network (Deng's graph subtracts nothing):
    a graph that its weights cannot tell apart from Deng's but that computes something else.
    """
    rng = np.random.default_rng(seed)
    writer = _Writer(rng, epsilon)
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, image_size, image_size, 3], name="input_imgs")
        pixels = tf.subtract(images, input_offset, name="sub") if input_offset else images
        x = _root(writer, pixels, root_width)
        x = tf.nn.max_pool2d(x, 3, 2, "SAME", name="resnet_v1_50/pool1/MaxPool")
        depth_in = root_width
        for b, (width, count) in enumerate(zip(widths, units), start=1):
            for u in range(1, count + 1):
                stride = 2 if u == count and b < len(widths) else 1
                scope = f"resnet_v1_50/block{b}/unit_{u}/bottleneck_v1"
                depth = 4 * width
                if depth != depth_in:
                    shortcut = writer.conv_bn(x, f"{scope}/shortcut", depth, 1, stride, relu=False)
                elif stride > 1:
                    shortcut = tf.nn.max_pool2d(x, 1, stride, "SAME", name=f"{scope}/shortcut/MaxPool")
                else:
                    shortcut = x
                residual = writer.conv_bn(x, f"{scope}/conv1", width, 1, 1, relu=True)
                residual = writer.conv_bn(residual, f"{scope}/conv2", width, 3, stride, relu=True)
                # A small residual branch, as trained ResNets have: the sum stays of order one.
                residual = writer.conv_bn(residual, f"{scope}/conv3", depth, 1, 1, relu=False, gain=0.4)
                x = tf.nn.relu(tf.add(shortcut, residual, name=f"{scope}/add"), name=f"{scope}/Relu")
                depth_in = depth
        pool5 = tf.reduce_mean(x, [1, 2], keepdims=True, name="resnet_v1_50/pool5")
        heads = []
        for name, width in HEAD_WIDTHS:
            weights = rng.standard_normal((1, 1, depth_in, width)) / np.sqrt(depth_in)
            y = tf.nn.conv2d(pool5, writer.variable(f"{name}/weights", weights), strides=1, padding="SAME",
                             name=f"{name}/Conv2D")
            y = tf.nn.bias_add(y, writer.variable(f"{name}/biases", rng.normal(0.0, 0.1, width)),
                               name=f"{name}/BiasAdd")
            heads.append(tf.squeeze(y, [1, 2], name=f"{name}/squeezed"))
        tf.identity(tf.concat(heads, axis=1, name="concat"), name="coeff")
    return graph.as_graph_def()


def _root(writer: _Writer, images, root_width: int):
    """resnet_v1_50/Pad -> conv1 7x7 stride 2 -> BN -> ReLU, weights scaled for inputs in [0, 255]."""
    x = tf.pad(images, [[0, 0], [3, 3], [3, 3], [0, 0]], name="resnet_v1_50/Pad")
    weights = writer.rng.standard_normal((7, 7, 3, root_width)) * np.sqrt(2.0 / 147) / 128.0
    y = tf.nn.conv2d(x, writer.variable("resnet_v1_50/conv1/weights", weights), strides=[1, 2, 2, 1],
                     padding="VALID", name="resnet_v1_50/conv1/Conv2D")
    bn = "resnet_v1_50/conv1/BatchNorm"
    # Uniform pixels in [0, 255] have mean 127.5: the weights' sum sets each channel's mean.
    mean = weights.sum(axis=(0, 1, 2)) * 127.5
    variance = np.square(weights).sum(axis=(0, 1, 2)) * 255.0 ** 2 / 12.0
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(
        y, writer.variable(f"{bn}/gamma", writer.rng.uniform(0.5, 1.0, root_width)),
        writer.variable(f"{bn}/beta", writer.rng.normal(0.0, 0.2, root_width)),
        mean=writer.variable(f"{bn}/moving_mean", mean), variance=writer.variable(f"{bn}/moving_variance", variance),
        epsilon=writer.epsilon, is_training=False, name=f"{bn}/FusedBatchNorm")
    return tf.nn.relu(y, name="resnet_v1_50/conv1/Relu")


def write_graph(path: str | os.PathLike, **kwargs) -> str:
    """Writes build_graph_def(**kwargs) as a binary GraphDef file; returns the path."""
    path = os.fspath(path)
    with open(path, "wb") as handle:
        handle.write(build_graph_def(**kwargs).SerializeToString())
    return path
