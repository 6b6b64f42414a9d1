"""Synthetic training faces rendered from a morphable model, with their ground-truth albedo.

Each sample: random coefficients (morphable.sampling), a per-vertex DETAIL albedo added to the
model's albedo (moles, freckles, brow hairs, lip cracks, skin grain: fine structure a smooth
3DMM albedo basis cannot represent), SH lighting, Deng's camera, a random background and mild
sensor noise. The result is an aligned crop in the schema of face_gcn.data.tfrecords, so the
training pipeline reads it exactly as it reads prepared photos:
  image      the render composited over the background, uint8
  mask       render coverage AND the model's front (face-region) vertex mask, rasterized
  landmarks  5 points from the projected 68: eye centres (mean of 36-41, 42-47), nose tip 30,
             mouth corners 48 and 54, crop pixels
  transform  identity (the render IS the crop); original_size (S, S); num_faces 1
  source     "synthetic:<seed>:<split>:<index>"
  coefficients, landmarks68   the ground truth (optional schema fields; prepared photos lack them)
Every random number of sample i comes from np.random.default_rng([seed, split_id, i]), so a
sample's coefficients, detail, ground truth and background do not depend on the batch size or
the shard layout (its rendered pixels may, by float rounding in batched matrix products).

The detail is defined per vertex on the mean shape, so it moves with the face. Colours are
linear and written to the image without a tone curve (the renderer's convention).
"""

from __future__ import annotations

import dataclasses
import os
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from face_gcn import fileio
from face_gcn.data import landmarks68 as ibug
from face_gcn.data import tfrecords
from face_gcn.mesh import normals as normals_lib
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.morphable import formation, sampling
from face_gcn.render import camera, deferred, face_renderer, lighting

SPLITS = {"train": 0, "heldout": 1}
GROUND_TRUTH_FILE = "ground_truth.npz"
MANIFEST_FILE = "manifest.json"
FORMAT = "face_gcn synthetic v1"


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """image_size: S pixels; noise_std: sensor noise, fraction of full scale; detail_scale:
    multiplies every detail amplitude (0 turns the detail off); backend: rasterizer."""

    image_size: int = 224
    noise_std: float = 0.01
    detail_scale: float = 1.0
    backend: str = "auto"

    def __post_init__(self):
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")
        if self.noise_std < 0 or self.detail_scale < 0:
            raise ValueError("noise_std and detail_scale must be non-negative")


# ----------------------------------------------------------------------------- detail albedo

def mean_edge_length(model) -> float:
    """Mean edge length of the mean shape, model units."""
    v, t = np.asarray(model.mean_shape, np.float64), np.asarray(model.triangles)
    edges = np.concatenate([v[t[:, 0]] - v[t[:, 1]], v[t[:, 1]] - v[t[:, 2]],
                            v[t[:, 2]] - v[t[:, 0]]])
    return float(np.mean(np.linalg.norm(edges, axis=1)))


def detail_unit(model) -> float:
    """The length the detail's sizes are given in, model units: the mean edge length, but at
    least 2% of the outer eye-corner span (landmarks 36-45), so that a dense mesh (BFM) still
    gets spots of a few millimetres while a coarse one gets spots a mesh edge wide."""
    marks = np.asarray(model.mean_shape, np.float64)[np.asarray(model.landmark_indices)]
    return max(mean_edge_length(model), 0.02 * float(np.linalg.norm(marks[45] - marks[36])))


def _spots(points, centres, sigmas, amplitudes) -> np.ndarray:
    """Sum of isotropic Gaussians: points [V, 3], centres [N, 3], sigmas [N], amplitudes [N]
    -> [V], truncated at 3 sigma."""
    out = np.zeros(points.shape[0])
    for centre, sigma, amplitude in zip(centres, sigmas, amplitudes):
        squared = np.sum((points - centre) ** 2, axis=1)
        near = squared < (3.0 * sigma) ** 2
        out[near] += amplitude * np.exp(-0.5 * squared[near] / sigma ** 2)
    return out


def _distance_to_polyline(points2d, polyline) -> np.ndarray:
    """Distance of [V, 2] points to a [K, 2] open polyline -> [V]."""
    best = np.full(points2d.shape[0], np.inf)
    for a, b in zip(polyline[:-1], polyline[1:]):
        ab = b - a
        t = np.clip((points2d - a) @ ab / max(ab @ ab, 1e-12), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points2d - (a + t[:, None] * ab), axis=1))
    return best


def _inside_polygon(points2d, polygon) -> np.ndarray:
    """[V, 2] points inside the closed [K, 2] polygon (even-odd rule) -> [V] bool."""
    x, y = points2d[:, 0], points2d[:, 1]
    inside = np.zeros(points2d.shape[0], bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_cross)
    return inside


def detail_albedo(model, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """A random high-frequency albedo offset for one face.

    Sizes are in detail_unit(model). Moles (a few dark-brown spots, radius ~1-2 units),
    freckles (many faint small spots on the cheeks and nose, on about half the faces), brow
    hairs (thin stripes near landmarks 17-26), lip cracks (fine near-vertical stripes inside
    the outer lip contour, 48-59; both about zero mean, so the smooth brow and lip colours
    stay the model's) and per-vertex skin grain.

    Args:
      model: MorphableModel; the detail is laid out on its mean shape.
      rng: the only source of randomness.
      scale: multiplies every amplitude.
    Returns:
      [V, 3] float32 linear-RGB offsets (mostly negative: darkening), to add to the albedo.
    """
    points = np.asarray(model.mean_shape, np.float64)
    xy = points[:, :2]
    marks = points[np.asarray(model.landmark_indices)]
    skin = np.asarray(model.skin_mask)
    edge = detail_unit(model)
    num_v = points.shape[0]
    detail = np.zeros((num_v, 3))

    # Moles: dark brown, sharp falloff.
    skin_ids = np.flatnonzero(skin) if skin.any() else np.arange(num_v)
    count = int(rng.integers(1, 6))
    centres = points[rng.choice(skin_ids, count)]
    moles = _spots(points, centres, edge * rng.uniform(0.6, 1.2, count),
                   rng.uniform(0.2, 0.4, count))
    detail -= np.minimum(moles, 0.45)[:, None] * np.array([0.85, 1.0, 1.0])

    # Freckles: cheeks and nose, between the lower eyelids and the upper lip.
    if rng.random() < 0.5:
        top = 0.5 * (marks[40, 1] + marks[47, 1])
        bottom = marks[51, 1]
        half_width = 0.6 * (marks[45, 0] - marks[36, 0])
        region = skin & (xy[:, 1] < top) & (xy[:, 1] > bottom) \
            & (np.abs(xy[:, 0] - marks[ibug.NOSE_TIP, 0]) < half_width)
        ids = np.flatnonzero(region) if region.any() else skin_ids
        count = int(rng.integers(20, 80))
        freckles = _spots(points, points[rng.choice(ids, count)] +
                          rng.normal(0.0, 0.3 * edge, (count, 3)),
                          edge * rng.uniform(0.35, 0.6, count), rng.uniform(0.04, 0.1, count))
        detail -= np.minimum(freckles, 0.15)[:, None] * np.array([0.7, 1.0, 1.1])

    # Brow hairs: stripes across a hair direction tilted outward, inside a band along the brow.
    period = edge * rng.uniform(2.0, 2.6)
    for side, brow in zip((-1.0, 1.0), (ibug.IMAGE_LEFT_BROW, ibug.IMAGE_RIGHT_BROW)):
        distance = _distance_to_polyline(xy, marks[list(brow), :2])
        band = np.clip(1.0 - distance / (1.2 * edge), 0.0, 1.0)
        tilt = side * rng.uniform(0.2, 0.5)
        across = np.stack([-np.sin(tilt), np.cos(tilt)])            # normal to the hairs
        jitter = rng.normal(0.0, 0.6, num_v)
        hairs = 0.5 + 0.5 * np.cos(2 * np.pi * (xy @ across) / period + jitter)
        # Strands darker, gaps lighter, about the model's own (smooth) brow colour.
        darkening = band * rng.uniform(0.15, 0.3) * (hairs - 0.5)
        detail -= darkening[:, None] * np.array([1.0, 1.0, 0.9])

    # Lip cracks: near-vertical fine stripes inside the outer lip contour.
    inside = _inside_polygon(xy, marks[list(ibug.OUTER_LIPS), :2]).astype(np.float64)
    period = edge * rng.uniform(2.0, 2.8)
    phase = rng.uniform(0, 2 * np.pi)
    wobble = 0.4 * np.sin(2 * np.pi * xy[:, 1] / (4 * edge) + rng.uniform(0, 2 * np.pi))
    cracks = np.maximum(np.cos(2 * np.pi * xy[:, 0] / period + phase + wobble), 0.0) ** 2
    # cos^2 of the positive half averages 1/4: cracks darker, ridges lighter than the mean.
    lips = inside * (rng.uniform(0.06, 0.14) * (cracks - 0.25) + rng.normal(0.0, 0.015, num_v))
    detail -= lips[:, None] * np.array([0.6, 1.0, 0.9])

    # Skin grain: independent per-vertex noise, nearly grey.
    grain = rng.normal(0.0, 0.012, num_v)[:, None] + rng.normal(0.0, 0.003, (num_v, 3))
    detail += grain * skin[:, None]
    return (scale * detail).astype(np.float32)


def basis_residual_fraction(model, detail) -> float:
    """Fraction of the energy of ``detail`` [V, 3] (or [N, V, 3]) that the model's albedo
    basis plus its mean albedo cannot represent (least-squares residual / total)."""
    detail = np.asarray(detail, np.float64).reshape(-1, 3 * model.num_vertices).T  # [3V, N]
    span = np.concatenate([np.asarray(model.albedo_basis, np.float64),
                           np.asarray(model.mean_albedo, np.float64).reshape(-1, 1)], axis=1)
    solution, *_ = np.linalg.lstsq(span, detail, rcond=None)
    residual = detail - span @ solution
    return float(np.sum(residual ** 2) / max(np.sum(detail ** 2), 1e-30))


# ----------------------------------------------------------------------------- rendering

class AlbedoRender(NamedTuple):
    """Render of B faces with given albedo (V vertices, S pixels)."""

    posed: tf.Tensor       # [B, V, 3] world units
    normals: tf.Tensor     # [B, V, 3] unit, world frame
    colors: tf.Tensor      # [B, V, 3] albedo * SH shading
    landmarks: tf.Tensor   # [B, 68, 2] crop pixels (x right, y down)
    image: tf.Tensor       # [B, S, S, 3] lit colours, 0 where no face
    alpha: tf.Tensor       # [B, S, S] coverage {0, 1}
    region: tf.Tensor      # [B, S, S] interpolated vertex mask (0 outside the coverage)


def render_with_albedo(model, coefficients, albedo, vertex_mask, image_size: int,
                       backend: str = "auto") -> AlbedoRender:
    """The forward model of face_renderer.render_coefficients with the albedo given.

    Args:
      model: MorphableModel.
      coefficients: [B, 257] Deng's layout (its tex block is ignored: ``albedo`` is used).
      albedo: [B, V, 3] linear RGB.
      vertex_mask: [V] 0/1 values rasterized alongside the colours.
      image_size: S.
    Returns:
      AlbedoRender.
    """
    coefficients = tf.convert_to_tensor(coefficients, tf.float32)
    albedo = tf.convert_to_tensor(albedo, tf.float32)
    if coefficients.shape.rank != 2 or coefficients.shape[1] != coeff_lib.NUM_COEFFICIENTS:
        raise ValueError(f"coefficients must be [B, 257], got {coefficients.shape}")
    if albedo.shape.rank != 3 or albedo.shape[1:] != (model.num_vertices, 3) \
            or albedo.shape[0] != coefficients.shape[0]:
        raise ValueError(f"albedo must be [{coefficients.shape[0]}, {model.num_vertices}, 3], "
                         f"got {albedo.shape}")
    vertex_mask = np.asarray(vertex_mask, np.float32)
    if vertex_mask.shape != (model.num_vertices,):
        raise ValueError(f"vertex_mask must be [{model.num_vertices}], got {vertex_mask.shape}")
    blocks = coeff_lib.split_coefficients(coefficients)
    tensors = formation.model_tensors(model)
    shape = formation.shape_from_model(model, blocks.id, blocks.exp)
    posed = camera.rigid_transform(shape, blocks.angles, blocks.translation)
    normals = normals_lib.vertex_normals(posed, tensors.triangles, tensors.vertex_triangles)
    colors = lighting.illuminate(albedo, normals, blocks.gamma)
    focal, center = face_renderer.camera_for_size(image_size)
    landmarks = camera.project_landmarks(posed, tensors.landmark_indices, focal=focal,
                                         center=center, image_height=image_size)
    clip = camera.deng_clip_space(posed, focal=focal, center=center, image_width=image_size,
                                  image_height=image_size)
    batch = tf.shape(colors)[0]
    mask_channel = tf.broadcast_to(tf.constant(vertex_mask)[tf.newaxis, :, tf.newaxis],
                                   [batch, model.num_vertices, 1])
    rendered, alpha = deferred.render_vertex_colors(
        clip, tensors.triangles, tf.concat([colors, mask_channel], axis=-1), image_size,
        image_size, backend=backend)
    return AlbedoRender(posed=posed, normals=normals, colors=colors, landmarks=landmarks,
                        image=rendered[..., :3], alpha=alpha, region=rendered[..., 3])


# ----------------------------------------------------------------------------- backgrounds

def random_background(rng: np.random.Generator, size: int, avoid_color=None) -> np.ndarray:
    """A cluttered but face-free background: a colour gradient, blurred random ellipses and
    rectangles, and low-frequency noise.

    Args:
      avoid_color: [3] a colour (e.g. the mean skin albedo) that the shapes stay away from.
    Returns:
      [size, size, 3] float32 in [0, 1].
    """
    import cv2  # pylint: disable=import-outside-toplevel

    def color():
        for _ in range(20):
            candidate = rng.uniform(0.0, 1.0, 3)
            if avoid_color is None or np.linalg.norm(candidate - avoid_color) > 0.25:
                return candidate
        return candidate

    corners = np.stack([color() for _ in range(4)]).reshape(2, 2, 3).astype(np.float32)
    image = cv2.resize(corners, (size, size), interpolation=cv2.INTER_LINEAR)
    for _ in range(int(rng.integers(2, 7))):
        layer = np.zeros((size, size), np.float32)
        centre = tuple(int(v) for v in rng.uniform(0, size, 2))
        axes = tuple(int(v) for v in rng.uniform(0.05, 0.35, 2) * size + 1)
        if rng.random() < 0.5:
            cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        else:
            cv2.rectangle(layer, (centre[0] - axes[0], centre[1] - axes[1]),
                          (centre[0] + axes[0], centre[1] + axes[1]), 1.0, -1)
        sigma = float(rng.uniform(0.005, 0.04) * size) + 0.5
        layer = cv2.GaussianBlur(layer, (0, 0), sigma) * rng.uniform(0.5, 1.0)
        image = image * (1 - layer[..., None]) + layer[..., None] * color().astype(np.float32)
    coarse = rng.normal(0.0, 0.04, (8, 8, 3)).astype(np.float32)
    image = image + cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- samples

@dataclasses.dataclass(frozen=True)
class SyntheticBatch:
    """B samples (S pixels, V vertices)."""

    images: np.ndarray        # [B, S, S, 3] uint8
    masks: np.ndarray         # [B, S, S] uint8 {0, 1}
    landmarks: np.ndarray     # [B, 5, 2] float32 crop pixels
    landmarks68: np.ndarray   # [B, 68, 2] float32 crop pixels
    coefficients: np.ndarray  # [B, 257] float32
    albedo: np.ndarray        # [B, V, 3] float32 ground truth, clip(3DMM + detail, 0, 1)
    detail: np.ndarray        # [B, V, 3] float32
    coverage: np.ndarray      # [B, S, S] uint8 {0, 1} render coverage
    sources: tuple            # B strings


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one sample (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return np.random.default_rng([int(seed), SPLITS[split], int(index)])


def source_name(seed: int, split: str, index: int) -> str:
    return f"synthetic:{seed}:{split}:{index}"


def generate_batch(model, seed: int, split: str, indices, config: SyntheticConfig
                   ) -> SyntheticBatch:
    """Renders the samples ``indices`` of (seed, split)."""
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("indices must not be empty")
    size = config.image_size
    rngs = [sample_rng(seed, split, i) for i in indices]
    coefficients = np.concatenate([sampling.sample_coefficients(rng, 1) for rng in rngs])
    details = np.stack([detail_albedo(model, rng, config.detail_scale) for rng in rngs])
    # One face at a time, so a sample's ground truth never depends on its batch.
    tex = coeff_lib.split_coefficients(tf.constant(coefficients)).tex
    base = np.concatenate([formation.albedo_from_model(model, tex[b:b + 1]).numpy()
                           for b in range(len(indices))])
    albedo = np.clip(base + details, 0.0, 1.0).astype(np.float32)
    render = render_with_albedo(model, coefficients, albedo, model.front_mask, size,
                                backend=config.backend)
    face, alpha = render.image.numpy(), render.alpha.numpy()
    region = render.region.numpy()
    skin_colour = np.asarray(model.mean_albedo)[np.asarray(model.skin_mask)].mean(axis=0) \
        if np.any(model.skin_mask) else None
    images = np.empty((len(indices), size, size, 3), np.uint8)
    for b, rng in enumerate(rngs):
        background = random_background(rng, size, skin_colour)
        composite = alpha[b, ..., None] * face[b] + (1.0 - alpha[b, ..., None]) * background
        composite = composite + rng.normal(0.0, config.noise_std, composite.shape)
        images[b] = np.round(np.clip(composite, 0.0, 1.0) * 255.0).astype(np.uint8)
    masks = ((alpha > 0.5) & (region > 0.5)).astype(np.uint8)
    landmarks68 = camera.to_pixel_indices(render.landmarks).numpy().astype(np.float32)
    return SyntheticBatch(
        images=images, masks=masks, landmarks=ibug.five_from_68(landmarks68).astype(np.float32),
        landmarks68=landmarks68, coefficients=coefficients.astype(np.float32), albedo=albedo,
        detail=details, coverage=(alpha > 0.5).astype(np.uint8),
        sources=tuple(source_name(seed, split, i) for i in indices))


def batch_examples(batch: SyntheticBatch):
    """SyntheticBatch -> tfrecords.FaceExample list."""
    size = batch.images.shape[1]
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return [tfrecords.FaceExample(image=batch.images[b], mask=batch.masks[b],
                                  landmarks=batch.landmarks[b], transform=identity,
                                  original_size=(size, size), num_faces=1,
                                  source=batch.sources[b], coefficients=batch.coefficients[b],
                                  landmarks68=batch.landmarks68[b])
            for b in range(batch.images.shape[0])]


# ----------------------------------------------------------------------------- datasets

def shard_path(output_dir: str, shard: int, num_shards: int) -> str:
    return os.path.join(output_dir, f"synthetic-{shard:05d}-of-{num_shards:05d}.tfrecord")


def write_dataset(output_dir: str, model, num_images: int, seed: int, split: str = "train",
                  config: SyntheticConfig = SyntheticConfig(), num_shards: int = 1,
                  batch_size: int = 16, progress: bool = False) -> dict:
    """Renders ``num_images`` samples into ``output_dir``:
      synthetic-KKKKK-of-NNNNN.tfrecord  contiguous index ranges, in index order
      ground_truth.npz  coefficients [N, 257], albedo [N, V, 3], detail [N, V, 3] (float32),
                        landmarks68 [N, 68, 2], sources [N] (unicode), record order
      manifest.json     counts, seed, split, model name, image size, shard files
    An existing ``output_dir`` is rewritten only when it holds nothing but an earlier write_dataset's
    files (whose shards are removed first, so no stale shard stays next to the new ones).
    Returns the manifest dict.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    if not 1 <= num_shards <= num_images:
        raise ValueError(f"num_shards must be in [1, num_images], got {num_shards}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _clear_previous_dataset(output_dir)
    num_v = model.num_vertices
    coefficients = np.zeros((num_images, coeff_lib.NUM_COEFFICIENTS), np.float32)
    albedo = np.zeros((num_images, num_v, 3), np.float32)
    detail = np.zeros((num_images, num_v, 3), np.float32)
    landmarks68 = np.zeros((num_images, 68, 2), np.float32)
    bounds = np.linspace(0, num_images, num_shards + 1).round().astype(int)
    bar = None
    if progress:
        from tqdm import tqdm  # pylint: disable=import-outside-toplevel
        bar = tqdm(total=num_images, desc=f"make-synthetic {split}", unit="img")

    def records(start, stop):
        for first in range(start, stop, batch_size):
            indices = range(first, min(first + batch_size, stop))
            batch = generate_batch(model, seed, split, indices, config)
            rows = slice(indices[0], indices[-1] + 1)
            coefficients[rows], albedo[rows], detail[rows] = (batch.coefficients, batch.albedo,
                                                              batch.detail)
            landmarks68[rows] = batch.landmarks68
            for example in batch_examples(batch):
                yield tfrecords.serialize(example)
            if bar is not None:
                bar.update(len(indices))

    shards = []
    try:
        for shard in range(num_shards):
            path = shard_path(output_dir, shard, num_shards)
            tfrecords.write_shard(path, records(bounds[shard], bounds[shard + 1]))
            shards.append(os.path.basename(path))
    finally:
        if bar is not None:
            bar.close()
    sources = np.array([source_name(seed, split, i) for i in range(num_images)])
    with fileio.atomic_write(os.path.join(output_dir, GROUND_TRUTH_FILE)) as handle:
        np.savez(handle, coefficients=coefficients, albedo=albedo, detail=detail,
                 landmarks68=landmarks68, sources=sources)
    manifest = {
        "format": FORMAT, "split": split, "num_images": num_images, "seed": int(seed),
        "model": model.name, "num_vertices": num_v, "image_size": config.image_size,
        "noise_std": config.noise_std, "detail_scale": config.detail_scale,
        "num_shards": num_shards, "shards": shards,
        "shard_counts": np.diff(bounds).tolist(), "ground_truth": GROUND_TRUTH_FILE,
    }
    fileio.write_json(os.path.join(output_dir, MANIFEST_FILE), manifest)
    return manifest


def _clear_previous_dataset(output_dir: str) -> None:
    """Removes an earlier write_dataset's shards from ``output_dir``; ValueError when the folder holds
    anything else (the user's files are never replaced or mixed with ours)."""
    if not os.path.isdir(output_dir):
        return
    present = {name for name in os.listdir(output_dir) if not name.startswith(".")}
    ours = set()
    if MANIFEST_FILE in present:
        try:
            previous = fileio.read_format_json(os.path.join(output_dir, MANIFEST_FILE), FORMAT, "manifest")
        except ValueError:
            previous = None
        if previous is not None:
            ours = {MANIFEST_FILE, GROUND_TRUTH_FILE} | {name for name in previous.get("shards", [])
                                                          if isinstance(name, str) and os.path.basename(name) == name}
    foreign = sorted(present - ours)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ValueError(f"{output_dir} holds files that make-synthetic did not write ({shown}); "
                         "give an empty or new folder")
    for name in ours - {MANIFEST_FILE, GROUND_TRUTH_FILE}:
        if os.path.exists(os.path.join(output_dir, name)):
            os.remove(os.path.join(output_dir, name))


def load_ground_truth(output_dir: str) -> dict:
    """ground_truth.npz of a dataset folder -> dict of arrays (no pickle)."""
    return fileio.read_npz(os.path.join(output_dir, GROUND_TRUTH_FILE))
