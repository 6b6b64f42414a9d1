"""The three texture GCNs of Lin et al. 2020 (Sec. 3.3): Decoder, Refiner, Combiner.

All three are Keras functional models built from a mesh hierarchy (face_gcn.graph.hierarchy),
so they work for any mesh (the demo model's 3,643 vertices, BFM's 35,709). Level 0 is the full
mesh, level L the coarsest; hierarchy.down[k] is D_k [V_{k+1}, V_k], hierarchy.up[k] is
U_k [V_k, V_{k+1}]. Every graph layer stores its sparse matrix as non-trainable weights, so a
`.keras` file of `build_texture_gcn(...)` loads back without the hierarchy.

Tensors: vertex features are [B, V, F]; colours are [B, V, 3] in [-1, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from face_gcn.graph.layers import BiasActivation, ChebConv, ChebResBlock, MeshResample

DEFAULT_EMBEDDING_SIZE = 3840  # 2048 regressor pool5 + 1792 FaceNet AvgPool_1a_8x8
DECODER_WIDTHS = (32, 16, 16, 16, 16)
DECODER_WIDTHS_WIDE = (32, 32, 64, 128, 256)
REFINER_WIDTHS = (16, 32, 64, 128)
REFINER_LATENT = 512
REFINER_INPUT_CHANNELS = 7


@dataclasses.dataclass(frozen=True)
class GCNConfig:
    """Hyper-parameters of the texture GCNs.

    embedding_size: E, size of the image embedding the Decoder reads.
    decoder_widths: [F_coarsest, F_3, ..., F_0], one more than the number of levels below the
      coarsest (widths[0] is the Dense output per coarsest vertex).
    refiner_widths: encoder widths from the finest level down (decoder mirrors them).
    refiner_latent: size of the Refiner's bottleneck.
    refiner_skip_levels: how many of the coarsest encoder levels feed skip concatenations.
    K: Chebyshev order everywhere.
    lmax: Laplacian rescaling, "exact" (CoMA) or "fixed" (2, the authors' L - I).
    residual: Decoder stages are residual blocks (paper) or single Chebyshev convs.
    combiner_init: kernel initializer of the Combiner's Chebyshev conv. "zeros" (default) starts
      every colour at tanh(0) = 0 (mid-grey albedo) with gradients flowing at once; a random start
      can put the tanh deep in saturation, where training never recovers (seen on the demo).
    """

    embedding_size: int = DEFAULT_EMBEDDING_SIZE
    decoder_widths: Sequence[int] = DECODER_WIDTHS
    refiner_widths: Sequence[int] = REFINER_WIDTHS
    refiner_latent: int = REFINER_LATENT
    refiner_skip_levels: int = 2
    K: int = 6
    lmax: str = "exact"
    residual: bool = True
    combiner_init: str = "zeros"


def _check_hierarchy(hierarchy, stages: int, what: str):
    if hierarchy.num_levels - 1 < stages:
        raise ValueError(f"{what} needs {stages} levels below the full mesh, the hierarchy has "
                         f"{hierarchy.num_levels - 1} ({hierarchy.num_vertices})")


def _laplacians(hierarchy, lmax):
    return [hierarchy.chebyshev(level, lmax=lmax) for level in range(hierarchy.num_levels)]


def build_decoder(hierarchy, config: GCNConfig = GCNConfig(), laplacians=None, name="decoder") -> keras.Model:
    """Image embedding -> per-vertex features on the full mesh.

    Dense(E -> V_L * F_0) then, for each level from the coarsest up, upsample U and a Chebyshev
    residual block (bias + ELU inside).

    Input [B, E]; output [B, V_0, decoder_widths[-1]].
    """
    widths = [int(w) for w in config.decoder_widths]
    stages = len(widths) - 1
    _check_hierarchy(hierarchy, stages, "decoder")
    laplacians = laplacians or _laplacians(hierarchy, config.lmax)
    coarsest = stages
    embedding = keras.Input((config.embedding_size,), name="embedding")
    x = keras.layers.Dense(hierarchy.num_vertices[coarsest] * widths[0], kernel_initializer="he_normal",
                           name="fc")(embedding)
    x = keras.layers.Reshape((hierarchy.num_vertices[coarsest], widths[0]), name="to_vertices")(x)
    for stage, level in enumerate(range(coarsest - 1, -1, -1)):
        x = MeshResample(hierarchy.up[level], name=f"up{level}")(x)
        if config.residual:
            x = ChebResBlock(widths[stage + 1], config.K, laplacians[level], name=f"res{level}")(x)
        else:
            x = ChebConv(widths[stage + 1], config.K, laplacians[level], name=f"cheb{level}")(x)
            x = BiasActivation("elu", name=f"act{level}")(x)
    return keras.Model(embedding, x, name=name)


def build_refiner(hierarchy, config: GCNConfig = GCNConfig(), laplacians=None, name="refiner") -> keras.Model:
    """Per-vertex (albedo, image colour x vis, vis) -> per-vertex features on the full mesh.

    Encoder: per level, ChebConv + bias/ELU then downsample D. Bottleneck: Dense to
    refiner_latent (linear) and Dense back + ELU. Decoder: per level from the coarsest, upsample U,
    concatenate the encoder's features of that level (only at the `refiner_skip_levels` coarsest
    levels), ChebConv + bias/ELU; decoder widths are the encoder widths one level finer
    (refiner_widths[level - 1]), the full level uses refiner_widths[0].

    Input [B, V_0, 7]; output [B, V_0, refiner_widths[0]].
    """
    widths = [int(w) for w in config.refiner_widths]
    stages = len(widths)
    _check_hierarchy(hierarchy, stages, "refiner")
    if not 0 <= config.refiner_skip_levels <= stages:
        raise ValueError(f"refiner_skip_levels must be in [0, {stages}], got {config.refiner_skip_levels}")
    laplacians = laplacians or _laplacians(hierarchy, config.lmax)
    sizes = hierarchy.num_vertices
    inputs = keras.Input((sizes[0], REFINER_INPUT_CHANNELS), name="vertex_features")
    x, skips = inputs, {}
    for level, width in enumerate(widths):
        x = ChebConv(width, config.K, laplacians[level], name=f"enc_cheb{level}")(x)
        x = BiasActivation("elu", name=f"enc_act{level}")(x)
        skips[level] = x
        x = MeshResample(hierarchy.down[level], name=f"down{level}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(config.refiner_latent, kernel_initializer="he_normal", name="latent")(x)
    x = keras.layers.Dense(sizes[stages] * widths[-1], kernel_initializer="he_normal", name="unlatent")(x)
    x = keras.layers.Reshape((sizes[stages], widths[-1]), name="latent_to_vertices")(x)
    x = keras.layers.Activation("elu", name="latent_act")(x)
    skip_levels = set(range(stages - config.refiner_skip_levels, stages))
    for level in range(stages - 1, -1, -1):
        x = MeshResample(hierarchy.up[level], name=f"up{level}")(x)
        if level in skip_levels:
            x = keras.layers.Concatenate(axis=-1, name=f"skip{level}")([x, skips[level]])
        width = widths[max(level - 1, 0)]
        x = ChebConv(width, config.K, laplacians[level], name=f"dec_cheb{level}")(x)
        x = BiasActivation("elu", name=f"dec_act{level}")(x)
    return keras.Model(inputs, x, name=name)


def build_combiner(num_vertices: int, decoder_channels: int, refiner_channels: int, laplacian,
                   config: GCNConfig = GCNConfig(), name="combiner") -> keras.Model:
    """(Decoder features, Refiner features) -> colours: concat, one ChebConv, bias, tanh.

    Inputs [B, V, Fd] and [B, V, Fr]; output [B, V, 3] in [-1, 1].
    """
    decoded = keras.Input((num_vertices, decoder_channels), name="decoded")
    refined = keras.Input((num_vertices, refiner_channels), name="refined")
    x = keras.layers.Concatenate(axis=-1, name="concat")([decoded, refined])
    x = ChebConv(3, config.K, laplacian, kernel_initializer=config.combiner_init, name="cheb")(x)
    x = BiasActivation("tanh", name="tanh")(x)
    return keras.Model([decoded, refined], x, name=name)


def build_texture_gcn(hierarchy, config: GCNConfig = GCNConfig(), refiner: keras.Model | None = None,
                      name="texture_gcn") -> keras.Model:
    """Decoder + Refiner + Combiner as one Keras model.

    Call: ``model([embedding, vertex_features])`` with embedding [B, E] (E =
    config.embedding_size) and vertex_features [B, V_0, 7] from `refiner_inputs`; returns colours
    [B, V_0, 3] in [-1, 1] (map to [0, 1] with (c + 1) / 2). Sub-models are reachable as
    ``model.get_layer("decoder" | "refiner" | "combiner")``.

    refiner: None builds the GCN Refiner; any model [B, V_0, 7] -> [B, V_0, F] replaces it (the
    ablation baselines of face_gcn.nets.baselines).
    """
    laplacians = _laplacians(hierarchy, config.lmax)
    decoder = build_decoder(hierarchy, config, laplacians)
    if refiner is None:
        refiner = build_refiner(hierarchy, config, laplacians)
    expected = (hierarchy.num_vertices[0], REFINER_INPUT_CHANNELS)
    if tuple(refiner.input.shape[1:]) != expected or refiner.output.shape[1] != expected[0]:
        raise ValueError(f"refiner must map [B, {expected[0]}, {expected[1]}] to [B, {expected[0]}, F], "
                         f"got {refiner.input.shape} -> {refiner.output.shape}")
    combiner = build_combiner(hierarchy.num_vertices[0], decoder.output.shape[-1],
                              refiner.output.shape[-1], laplacians[0], config)
    embedding = keras.Input((config.embedding_size,), name="embedding")
    features = keras.Input((hierarchy.num_vertices[0], REFINER_INPUT_CHANNELS), name="vertex_features")
    colors = combiner([decoder(embedding), refiner(features)])
    return keras.Model([embedding, features], colors, name=name)


def refiner_inputs(albedo, image_colors, visibility) -> tf.Tensor:
    """The Refiner's 7 channels: (2 albedo - 1, (2 colour - 1) * vis, vis).

    Args:
      albedo: [B, V, 3] 3DMM albedo in [0, 1].
      image_colors: [B, V, 3] colours sampled from the photo (T_p), in [0, 1].
      visibility: [B, V] in [0, 1].
    Returns:
      [B, V, 7] float32.
    """
    albedo = tf.convert_to_tensor(albedo, tf.float32)
    image_colors = tf.convert_to_tensor(image_colors, tf.float32)
    visibility = tf.convert_to_tensor(visibility, tf.float32)
    if albedo.shape.rank != 3 or albedo.shape[-1] != 3 or image_colors.shape.rank != 3 \
            or image_colors.shape[-1] != 3:
        raise ValueError(f"albedo and image_colors must be [B, V, 3], got {albedo.shape}, {image_colors.shape}")
    if visibility.shape.rank != 2:
        raise ValueError(f"visibility must be [B, V], got {visibility.shape}")
    vis = visibility[..., tf.newaxis]
    return tf.concat([2.0 * albedo - 1.0, (2.0 * image_colors - 1.0) * vis, vis], axis=-1)


def count_parameters(model: keras.Model) -> dict[str, int]:
    """Trainable parameter count of the model and of each direct sub-model."""
    counts = {model.name: int(sum(np.prod(v.shape) for v in model.trainable_weights))}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            counts[layer.name] = int(sum(np.prod(v.shape) for v in layer.trainable_weights))
    return counts
