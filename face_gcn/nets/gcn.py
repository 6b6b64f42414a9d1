"""The three texture GCNs of Lin et al. 2020 (Sec. 3.3) as the authors build them.

Layer by layer the authors' released code (FuxiCV/3D-Face-GCNs): "normal" = model_normal.py (the
default), "resnet" = model_resnet.py (residual blocks, as the paper's text describes). Notation:
cheb(a->b) is a Chebyshev conv of order K with kernel [a*K, b] and no bias; "+b ELU" a per-channel
bias then ELU; U/D the hierarchy's up/down sampling. Level 0 is the full mesh, level L the
coarsest; hierarchy.down[k] is D_k [V_{k+1}, V_k], hierarchy.up[k] is U_k [V_k, V_{k+1}].

normal Decoder: FC(E -> V_L * w0) ReLU, reshape; per level up to 0: U, cheb(->w), +b ELU; then
  cheb(->3) +b ELU. Output: a 3-channel colour map.
normal Refiner: cheb(7->r0) at level 0 (no bias, no activation); per level 1..L: D, cheb, +b ELU
  (widths r0..r_{L-1}); flatten, FC(->latent) ReLU, FC(->V_L * r_{L-1}) ReLU; per level L-1..0:
  U, [concat the encoder's features of that level], cheb(->r_level), +b ELU (skips at the
  ``refiner_skip_levels`` coarsest of these levels: 2 in the authors' code, all of them is our
  full-resolution variant); then cheb(->3) +b ELU. Each "U, [concat], cheb" is one layer
  (UpsampleChebConv, named dec<level>_cheb) with the authors' kernel: it projects before it
  up-samples, the same function with its dense products on the coarser level.
resnet Decoder: FC ReLU, reshape; per level: U, residual block (the last one to 3 channels).
resnet Refiner: blocks r0 at level 0, D, r1 and r2 at level 1, U, r3 and 3 at level 0.
Combiner: concat the two colour maps (6 channels), cheb(6->3) with no bias, tanh.

The hierarchy's sparse matrices are non-trainable weights of the model, so a `.keras` file of
`build_texture_gcn(...)` loads back without the hierarchy. Each is held once (MeshMatrices: one
SparseMatrix per level's L~ and per U and D) and read by every layer that uses it: the Decoder, the
Refiner and the Combiner share the level-0 L~, the Decoder and the Refiner each U. Tensors: vertex features [B, V, F];
colours [B, V, 3] in [-1, 1]. Inside the Decoder and the Refiner the graph layers run vertex-major
([V, B, F], the sparse products' layout): each swaps the axes once on the way in and out (at the
coarsest level around the Refiner's FC layers), not every layer twice; the same arithmetic, and
`.keras` files written before this layout still load as they were built.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from face_gcn.graph.layers import (BiasActivation, ChebConv, ChebResBlock, MeshResample, SparseMatrix,
                                   SwapBatchAndVertices, UpsampleChebConv)

DEFAULT_EMBEDDING_SIZE = 3840  # 2048 regressor pool5 + 1792 FaceNet AvgPool_1a_8x8
COLOR_CHANNELS = 3
REFINER_INPUT_CHANNELS = 7
REFINER_LATENT = 512
VARIANTS = ("normal", "resnet")
LMAX_MODES = ("fixed", "exact")
COMBINER_INPUTS = ("colors", "features")
# Widths per variant, as the authors' code sets them ("wide" is their --wide flag, Decoder only).
DECODER_WIDTHS = {"normal": (32, 16, 16, 16, 16), "resnet": (32, 16, 16, 16)}
DECODER_WIDTHS_WIDE = {"normal": (32, 32, 64, 128, 256), "resnet": (32, 64, 128, 256)}
REFINER_WIDTHS = {"normal": (16, 32, 64, 128), "resnet": (16, 32, 32, 16)}


@dataclasses.dataclass(frozen=True)
class GCNConfig:
    """Hyper-parameters of the texture GCNs; the defaults build the authors' default model.

    embedding_size: E, size of the image embedding the Decoder reads.
    variant: "normal" (authors' default) or "resnet" (their residual-block model).
    decoder_widths: None (the variant's), or normal: [w0 (FC output per coarsest vertex), one
      width per up-step]; resnet: [w0, one width per up-step but the last, which is 3].
    refiner_widths: None (the variant's); normal: widths at levels 0..L-1 (conv at level k+1
      has width r_k); resnet: exactly 4 block widths.
    refiner_latent: size of the normal Refiner's bottleneck.
    refiner_skip_levels: normal Refiner: how many up-steps (from the coarsest) concatenate the
      encoder's features of their level; 2 as the authors, L = full-resolution skips (ours).
    K: Chebyshev order everywhere.
    lmax: Laplacian rescaling, "fixed" (lmax = 2, L~ = L - I: the authors, CoMA and cnn_graph) or
      "exact" (the largest eigenvalue of each level; ours).
    combiner_init: kernel initializer of the Combiner's conv: "he_normal" (authors) or "zeros"
      (ours: every colour starts at tanh(0) = 0, mid-grey, and never starts saturated).
    combiner_input: what the normal Decoder and Refiner hand the Combiner: "colors" (each ends in
      cheb(->3) +b ELU, the authors') or "features" (ours: their last feature maps, w_last + r0
      channels, so the Combiner's conv mixes features rather than two finished colour maps).
    """

    embedding_size: int = DEFAULT_EMBEDDING_SIZE
    variant: str = "normal"
    decoder_widths: Sequence[int] | None = None
    refiner_widths: Sequence[int] | None = None
    refiner_latent: int = REFINER_LATENT
    refiner_skip_levels: int = 2
    K: int = 6
    lmax: str = "fixed"
    combiner_init: str = "he_normal"
    combiner_input: str = "colors"

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.lmax not in LMAX_MODES:
            raise ValueError(f"lmax must be one of {LMAX_MODES}, got {self.lmax!r}")
        if self.combiner_input not in COMBINER_INPUTS:
            raise ValueError(f"combiner_input must be one of {COMBINER_INPUTS}, got {self.combiner_input!r}")
        if self.combiner_input == "features" and self.variant != "normal":
            raise ValueError("combiner_input='features' is defined for the normal variant only")
        for name, variant_widths in (("decoder_widths", DECODER_WIDTHS), ("refiner_widths", REFINER_WIDTHS)):
            widths = getattr(self, name)
            widths = tuple(int(w) for w in (variant_widths[self.variant] if widths is None else widths))
            if not widths or min(widths) < 1:
                raise ValueError(f"{name} must be positive integers, got {widths}")
            object.__setattr__(self, name, widths)
        if self.variant == "resnet" and len(self.refiner_widths) != 4:
            raise ValueError(f"the resnet Refiner has 4 blocks, refiner_widths has {len(self.refiner_widths)}")
        if self.K < 1 or self.refiner_latent < 1:
            raise ValueError(f"K and refiner_latent must be >= 1, got {self.K}, {self.refiner_latent}")

    @property
    def decoder_levels(self) -> int:
        """Up-steps of the Decoder (levels below the full mesh it needs)."""
        widths = len(self.decoder_widths)
        return widths - 1 if self.variant == "normal" else widths

    @property
    def refiner_levels(self) -> int:
        """Down-steps of the Refiner."""
        return len(self.refiner_widths) if self.variant == "normal" else 1


def _check_hierarchy(hierarchy, stages: int, what: str):
    if hierarchy.num_levels - 1 < stages:
        raise ValueError(f"{what} needs {stages} levels below the full mesh, the hierarchy has "
                         f"{hierarchy.num_levels - 1} ({hierarchy.num_vertices})")


@dataclasses.dataclass(frozen=True)
class MeshMatrices:
    """The hierarchy's matrices as shared SparseMatrix layers, one of each, for a network's graph layers.

    laplacians[k]: L~ of level k (rescaled as config.lmax says); up[k]: U_k [V_k, V_{k+1}];
    down[k]: D_k [V_{k+1}, V_k].
    """

    laplacians: tuple
    up: tuple
    down: tuple


def mesh_matrices(hierarchy, config: GCNConfig) -> MeshMatrices:
    """One SparseMatrix per level's L~ and per up- and down-sampling matrix of ``hierarchy``."""
    levels = range(hierarchy.num_levels)
    return MeshMatrices(
        laplacians=tuple(SparseMatrix(hierarchy.chebyshev(level, lmax=config.lmax), name=f"laplacian{level}")
                         for level in levels),
        up=tuple(SparseMatrix(matrix, name=f"up_matrix{k}") for k, matrix in enumerate(hierarchy.up)),
        down=tuple(SparseMatrix(matrix, name=f"down_matrix{k}") for k, matrix in enumerate(hierarchy.down)))


def _fully_connected(units: int, name: str):
    return keras.layers.Dense(units, activation="relu", kernel_initializer="he_normal", name=name)


def _cheb_elu(x, width, config, laplacian, name):
    """cheb(->width) +b ELU on vertex-major features."""
    x = ChebConv(width, config.K, laplacian, vertex_major=True, name=f"{name}_cheb")(x)
    return BiasActivation("elu", name=f"{name}_act")(x)


def _resample(x, matrix, name):
    return MeshResample(matrix, vertex_major=True, name=name)(x)


def _res_block(x, width, config, laplacian, name):
    return ChebResBlock(width, config.K, laplacian, vertex_major=True, name=name)(x)


def build_decoder(hierarchy, config: GCNConfig = GCNConfig(), matrices: MeshMatrices | None = None,
                  name="decoder") -> keras.Model:
    """Image embedding [B, E] -> colour map [B, V_0, 3] (before the Combiner; ELU range), or
    features [B, V_0, w_last] with combiner_input="features". matrices: the hierarchy's shared
    matrices (default: its own, mesh_matrices)."""
    stages = config.decoder_levels
    _check_hierarchy(hierarchy, stages, "decoder")
    matrices = matrices or mesh_matrices(hierarchy, config)
    level_laplacians = matrices.laplacians
    widths = config.decoder_widths
    embedding = keras.Input((config.embedding_size,), name="embedding")
    x = _fully_connected(hierarchy.num_vertices[stages] * widths[0], "fc")(embedding)
    x = keras.layers.Reshape((hierarchy.num_vertices[stages], widths[0]), name="to_vertices")(x)
    x = SwapBatchAndVertices(name="to_vertex_major")(x)
    out_widths = widths[1:] if config.variant == "normal" else widths[1:] + (COLOR_CHANNELS,)
    for level, width in zip(range(stages - 1, -1, -1), out_widths):
        x = _resample(x, matrices.up[level], f"up{level}")
        if config.variant == "normal":
            x = _cheb_elu(x, width, config, level_laplacians[level], f"level{level}")
        else:
            x = _res_block(x, width, config, level_laplacians[level], f"res{level}")
    if config.variant == "normal" and config.combiner_input == "colors":
        x = _cheb_elu(x, COLOR_CHANNELS, config, level_laplacians[0], "output")
    x = SwapBatchAndVertices(name="to_batch_major")(x)
    return keras.Model(embedding, x, name=name)


def build_refiner(hierarchy, config: GCNConfig = GCNConfig(), matrices: MeshMatrices | None = None,
                  name="refiner") -> keras.Model:
    """Per-vertex (albedo, photo colour x vis, vis) [B, V_0, 7] -> colour map [B, V_0, 3], or
    features [B, V_0, r0] with combiner_input="features". matrices: the hierarchy's shared
    matrices (default: its own, mesh_matrices)."""
    stages = config.refiner_levels
    _check_hierarchy(hierarchy, stages, "refiner")
    matrices = matrices or mesh_matrices(hierarchy, config)
    level_laplacians = matrices.laplacians
    widths, sizes = config.refiner_widths, hierarchy.num_vertices
    inputs = keras.Input((sizes[0], REFINER_INPUT_CHANNELS), name="vertex_features")
    x = SwapBatchAndVertices(name="to_vertex_major")(inputs)
    if config.variant == "resnet":
        x = _res_block(x, widths[0], config, level_laplacians[0], "res0")
        x = _resample(x, matrices.down[0], "down0")
        x = _res_block(x, widths[1], config, level_laplacians[1], "res1")
        x = _res_block(x, widths[2], config, level_laplacians[1], "res2")
        x = _resample(x, matrices.up[0], "up0")
        x = _res_block(x, widths[3], config, level_laplacians[0], "res3")
        x = _res_block(x, COLOR_CHANNELS, config, level_laplacians[0], "res4")
        return keras.Model(inputs, SwapBatchAndVertices(name="to_batch_major")(x), name=name)
    if not 0 <= config.refiner_skip_levels <= stages:
        raise ValueError(f"refiner_skip_levels must be in [0, {stages}], got {config.refiner_skip_levels}")
    x = ChebConv(widths[0], config.K, level_laplacians[0], vertex_major=True, name="input_cheb")(x)
    encoded = {0: x}
    for level in range(1, stages + 1):
        x = _resample(x, matrices.down[level - 1], f"down{level - 1}")
        x = _cheb_elu(x, widths[level - 1], config, level_laplacians[level], f"enc{level}")
        encoded[level] = x
    x = SwapBatchAndVertices(name="coarsest_to_batch_major")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = _fully_connected(config.refiner_latent, "latent")(x)
    x = _fully_connected(sizes[stages] * widths[-1], "unlatent")(x)
    x = keras.layers.Reshape((sizes[stages], widths[-1]), name="latent_to_vertices")(x)
    x = SwapBatchAndVertices(name="coarsest_to_vertex_major")(x)
    skip_levels = set(range(stages - config.refiner_skip_levels, stages))
    for level in range(stages - 1, -1, -1):  # U, [concat the skip], cheb: one layer (UpsampleChebConv)
        step_input = [x, encoded[level]] if level in skip_levels else x
        x = UpsampleChebConv(widths[level], config.K, level_laplacians[level], matrices.up[level],
                             name=f"dec{level}_cheb")(step_input)
        x = BiasActivation("elu", name=f"dec{level}_act")(x)
    if config.combiner_input == "colors":
        x = _cheb_elu(x, COLOR_CHANNELS, config, level_laplacians[0], "output")
    return keras.Model(inputs, SwapBatchAndVertices(name="to_batch_major")(x), name=name)


def build_combiner(num_vertices: int, decoder_channels: int, refiner_channels: int, laplacian,
                   config: GCNConfig = GCNConfig(), name="combiner") -> keras.Model:
    """(Decoder map [B, V, Fd], Refiner map [B, V, Fr]) -> colours [B, V, 3] in [-1, 1]:
    concat, one bias-free Chebyshev conv, tanh. laplacian: the level-0 L~ (SciPy sparse, or the
    shared SparseMatrix); None only for K = 1."""
    decoded = keras.Input((num_vertices, decoder_channels), name="decoded")
    refined = keras.Input((num_vertices, refiner_channels), name="refined")
    x = keras.layers.Concatenate(axis=-1, name="concat")([decoded, refined])
    x = ChebConv(COLOR_CHANNELS, config.K, laplacian, kernel_initializer=config.combiner_init, name="cheb")(x)
    x = keras.layers.Activation("tanh", name="tanh")(x)
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
    matrices = mesh_matrices(hierarchy, config)
    decoder = build_decoder(hierarchy, config, matrices)
    if refiner is None:
        refiner = build_refiner(hierarchy, config, matrices)
    expected = (hierarchy.num_vertices[0], REFINER_INPUT_CHANNELS)
    if tuple(refiner.input.shape[1:]) != expected or refiner.output.shape[1] != expected[0]:
        raise ValueError(f"refiner must map [B, {expected[0]}, {expected[1]}] to [B, {expected[0]}, F], "
                         f"got {refiner.input.shape} -> {refiner.output.shape}")
    combiner = build_combiner(hierarchy.num_vertices[0], decoder.output.shape[-1],
                              refiner.output.shape[-1], matrices.laplacians[0], config)
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


def fully_connected_layers(model: keras.Model) -> list:
    """Every Dense layer of the model and its sub-models (the layers the authors regularise)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(fully_connected_layers(layer))
        elif isinstance(layer, keras.layers.Dense):
            found.append(layer)
    return found


def fully_connected_l2(model: keras.Model) -> tf.Tensor:
    """sum over the FC layers of (||W||^2 + ||b||^2) / 2 (tf.nn.l2_loss of each, as the authors)."""
    total = tf.constant(0.0)
    for layer in fully_connected_layers(model):
        for weight in layer.trainable_weights:
            total += tf.nn.l2_loss(tf.cast(weight, tf.float32))
    return total


def count_parameters(model: keras.Model) -> dict[str, int]:
    """Trainable parameter count of the model and of each direct sub-model."""
    counts = {model.name: int(sum(np.prod(v.shape) for v in model.trainable_weights))}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            counts[layer.name] = int(sum(np.prod(v.shape) for v in layer.trainable_weights))
    return counts
