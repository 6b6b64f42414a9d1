"""Inference-only rewrites of trained networks (reconstruction.forward.for_inference: the SavedModel
export, `face-gcn reconstruct` and the benchmark).

fold_batch_norms: every BatchNormalization whose only input is a plain Conv2D (channels last) that
feeds nothing else is folded into that convolution, for inference: with s = gamma / sqrt(var + eps)
per output channel, kernel' = kernel s and bias' = (bias - mean) s + beta. The BatchNormalization
becomes a pass-through. In a TensorFlow graph an unfolded Keras 3 BatchNormalization is a Mul and an
AddV2 over the whole activation (grappler cannot fold them: the statistics are variables), and the
convolution's Relu then stays a separate pass too; folded, Conv2D + BiasAdd + Relu fuse into one
_FusedConv2D. The folded network computes the same function up to float32 rounding, and only in
inference mode (a BatchNormalization in training mode uses the batch's statistics).
"""

from __future__ import annotations

import keras
import numpy as np

CHANNELS_LAST_AXES = (-1, 3)


class FoldedBatchNorm(keras.layers.Layer):
    """Where a BatchNormalization was, after fold_batch_norms moved it into its convolution: x -> x."""

    def call(self, inputs, training=None, mask=None):  # the BatchNormalization's call signature
        del training, mask
        return inputs


def _nested_layers(model: keras.Model):
    """Every layer of the model but its inputs, depth first through nested models (the models
    themselves included)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        yield layer
        if isinstance(layer, keras.Model):
            yield from _nested_layers(layer)


def _foldable_pairs(model: keras.Model) -> dict:
    """{id(Conv2D): its BatchNormalization} of the pairs fold_batch_norms folds (by identity: names repeat
    across nested models)."""
    pairs = {}
    for layer in _nested_layers(model):
        if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
            continue
        parents = layer._inbound_nodes[0].parent_nodes  # Keras 3 functional graph (private but stable)
        if len(parents) != 1:
            continue
        conv = parents[0].operation
        axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
        if (type(conv) is keras.layers.Conv2D and conv.data_format == "channels_last"  # pylint: disable=unidiomatic-typecheck
                and axis in CHANNELS_LAST_AXES and len(conv._inbound_nodes) == 1 and len(conv._outbound_nodes) == 1):
            pairs[id(conv)] = layer
    return pairs


def _clone_layer(layer, pairs: dict, folded_norms: set):
    if id(layer) in pairs:
        return layer.__class__.from_config(dict(layer.get_config(), use_bias=True))
    if id(layer) in folded_norms:
        return FoldedBatchNorm(name=layer.name, dtype=layer.dtype_policy)
    if isinstance(layer, keras.layers.Lambda):  # its function object as it is (configs name it, not carry it)
        return keras.layers.Lambda(layer.function, output_shape=layer._output_shape, arguments=dict(layer.arguments),
                                   name=layer.name, dtype=layer.dtype_policy)
    return layer.__class__.from_config(layer.get_config())


def folded_conv_weights(kernel, bias, gamma, beta, mean, variance, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """Conv2D weights with the BatchNormalization after it folded in: (kernel [kh, kw, in, C], bias [C]),
    float32, computed in float64. bias/gamma/beta None: the layer has none (0, 1, 0)."""
    kernel = np.asarray(kernel, np.float64)
    channels = kernel.shape[-1]
    scale = (np.ones(channels) if gamma is None else np.asarray(gamma, np.float64)) / np.sqrt(
        np.asarray(variance, np.float64) + epsilon)
    shift = np.zeros(channels) if beta is None else np.asarray(beta, np.float64)
    bias = np.zeros(channels) if bias is None else np.asarray(bias, np.float64)
    return (kernel * scale).astype(np.float32), ((bias - np.asarray(mean, np.float64)) * scale + shift).astype(np.float32)


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """A new model computing ``model``'s inference function with its Conv2D + BatchNormalization pairs
    folded (module docstring); nested models are rewritten too. ``model`` is left as it was; weights are
    copied, not shared. A model with nothing to fold comes back as a plain clone."""
    pairs = _foldable_pairs(model)
    folded_norms = {id(norm) for norm in pairs.values()}
    folded = keras.models.clone_model(model, clone_function=lambda layer: _clone_layer(layer, pairs, folded_norms),
                                      recursive=True)
    for source, target in zip(_nested_layers(model), _nested_layers(folded)):
        if source.name != target.name:
            raise ValueError(f"fold_batch_norms: the clone's layers are out of order ({source.name} vs {target.name})")
        if isinstance(source, keras.Model) or id(source) in folded_norms:
            continue
        if id(source) in pairs:
            norm = pairs[id(source)]
            target.set_weights(folded_conv_weights(
                source.kernel.numpy(), source.bias.numpy() if source.use_bias else None,
                norm.gamma.numpy() if norm.scale else None, norm.beta.numpy() if norm.center else None,
                norm.moving_mean.numpy(), norm.moving_variance.numpy(), norm.epsilon))
        elif source.weights:
            target.set_weights(source.get_weights())
    folded.trainable = False
    return folded
