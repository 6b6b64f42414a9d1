"""Files written for one reconstructed photo (shared by `face-gcn fit` and `reconstruct`).

Per image NAME in DIR:
  NAME_coarse.obj / NAME_refined.obj   mesh (posed, Deng's camera frame) with the ALBEDO as
                                       vertex colours (linear RGB in [0, 1])
  NAME_coarse.ply / NAME_refined.ply   the same mesh with the LIT colours (albedo x SH shading)
  NAME_overlay.png                     the refined face rendered at the photo's own resolution
                                       through the inverse alignment, pasted only where the face
                                       mask says face, its edge feathered inward (photo_overlay)
  NAME_sheet.png                       side by side at crop size: photo crop | coarse | refined |
                                       refined albedo (unlit), the renders pasted into the crop
  NAME.json                            coefficients, pose, camera, alignment transform, 5
                                       landmarks, metrics (face region), seconds, file names
  NAME.input.png, NAME.mask.png        the aligned crop and its face mask (also in both sub-folders)
  coarse/NAME.render.png, refined/NAME.render.png, */NAME.alpha.png
                                       renders composited into the crop, and the render coverage,
                                       the layout `face-gcn evaluate` reads
Metrics (psnr/ssim, coarse and refined) use face_gcn.evaluation.metrics on the composited
render vs the crop, inside face mask AND render coverage.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from face_gcn import fileio
from face_gcn.evaluation import metrics
from face_gcn.mesh import io as mesh_io
from face_gcn.morphable import coefficients as coeff_lib
from face_gcn.render import camera, deferred, face_renderer, lighting

METHODS = ("coarse", "refined")


@dataclasses.dataclass(frozen=True)
class FaceReconstruction:
    """Everything known about one reconstructed photo (S crop pixels, V vertices).

    crop: [S, S, 3] uint8 aligned crop. mask: [S, S] face region {0, 1}. landmarks: [5, 2] crop
    pixel indices. transform: [2, 3] original pixels -> crop pixels. original: [H, W, 3] uint8
    photo, or None (no overlay). coefficients: [257]. albedo: method -> [V, 3] in [0, 1].
    seconds: stage -> seconds. extra: more JSON fields (e.g. source path, losses).
    """

    name: str
    crop: np.ndarray
    mask: np.ndarray
    landmarks: np.ndarray
    transform: np.ndarray
    original: np.ndarray | None
    coefficients: np.ndarray
    albedo: dict
    seconds: dict
    extra: dict = dataclasses.field(default_factory=dict)


def render_views(model, coefficients, albedo_by_method: dict, image_size: int, backend: str = "auto"):
    """Renders the fitted geometry once per albedo (lit by the fitted light) and, unlit, the last albedo.

    Returns (posed [V, 3], alpha [S, S] float32, {method: (lit colours [V, 3], render [S, S, 3])},
    unlit render of the last albedo [S, S, 3]).
    """
    coefficients = np.asarray(coefficients, np.float32).reshape(1, -1)
    fitted = face_renderer.render_coefficients(model, coefficients, image_size, backend=backend)
    gamma = coeff_lib.split_coefficients(coefficients).gamma
    shading = lighting.sh_shading(fitted.normals, gamma).numpy()[0]
    views, alpha = {}, None
    for method, albedo in albedo_by_method.items():
        lit = np.asarray(albedo, np.float32) * shading
        image, alpha_t = deferred.shade_fragments(fitted.fragments, model.triangles, lit[None])
        views[method] = (lit, image.numpy()[0])
        alpha = alpha_t.numpy()[0]
    unlit, _ = deferred.shade_fragments(fitted.fragments, model.triangles, np.asarray(albedo, np.float32)[None])
    return fitted.posed.numpy()[0], alpha, views, unlit.numpy()[0]


def composite(render, alpha, background) -> np.ndarray:
    """render over background: [S, S, 3] float in [0, 1]."""
    a = np.asarray(alpha, np.float32)[..., None]
    return np.clip(render, 0.0, 1.0) * a + np.asarray(background, np.float32) * (1.0 - a)


def face_metrics(crop, composited, mask, alpha) -> tuple[float, float]:
    """(PSNR dB, SSIM) of one composited render vs the crop inside mask AND coverage."""
    region = (np.asarray(mask) > 0) & (np.asarray(alpha) > 0.5)
    image = np.asarray(crop, np.float64)[None] / (255.0 if np.asarray(crop).dtype == np.uint8 else 1.0)
    render = np.asarray(composited, np.float64)[None]
    return (float(metrics.masked_psnr(image, render, region[None])[0]),
            float(metrics.masked_ssim(image, render, region[None])[0]))


FEATHER_FRACTION = 0.03  # the overlay's inward edge ramp, as a fraction of the face's width in the photo
WINDOW_MARGIN = 4        # photo pixels around the face's projected bounding box


def feathered_alpha(coverage, face_mask, feather_px: float) -> np.ndarray:
    """[H, W] float32 in [0, 1]: 1 where the render covers the face mask, ramping to 0 over ``feather_px``
    pixels towards its edge, and 0 on and beyond it (an inward ramp, so no render colour beyond it)."""
    import cv2  # pylint: disable=import-outside-toplevel
    inside = ((np.asarray(coverage) > 0.5) & (np.asarray(face_mask) > 0.5)).astype(np.uint8)
    if not inside.any():
        return np.zeros(inside.shape, np.float32)
    distance = cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.clip((distance - 0.5) / max(float(feather_px), 1.0), 0.0, 1.0).astype(np.float32)


def photo_window(posed, crop_size: int, transform, photo_shape) -> tuple | None:
    """(x0, y0, width, height): the photo pixels the posed face [V, 3] projects into, plus WINDOW_MARGIN,
    inside the photo; None when it projects outside it."""
    height, width = photo_shape[:2]
    clip = camera.photo_window_clip_space(np.asarray(posed, np.float32)[None], crop_size, transform,
                                          (0, 0, width, height)).numpy()[0]
    x = ((clip[:, 0] / clip[:, 3] + 1.0) * 0.5 * width) - 0.5
    y = ((1.0 - clip[:, 1] / clip[:, 3]) * 0.5 * height) - 0.5
    x0, y0 = max(int(np.floor(x.min())) - WINDOW_MARGIN, 0), max(int(np.floor(y.min())) - WINDOW_MARGIN, 0)
    x1 = min(int(np.ceil(x.max())) + WINDOW_MARGIN + 1, width)
    y1 = min(int(np.ceil(y.max())) + WINDOW_MARGIN + 1, height)
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


def photo_overlay(model, posed, lit, face_mask, transform, original, crop_size: int,
                  backend: str = "auto") -> np.ndarray:
    """The face rendered at the photo's own resolution and pasted over it: [H, W, 3] uint8.

    posed [V, 3] and lit colours [V, 3] of the fitted face; face_mask [S, S] of the crop; transform maps
    photo pixels to crop pixels. The render goes through the crop's camera carried back by the inverse
    alignment (camera.photo_window_clip_space), in the window the face projects into; it is pasted where
    it covers the face mask (warped to the photo), with an inward feather of FEATHER_FRACTION of the
    window's width, so hair, hats and background keep the photo's pixels and no edge is drawn.
    """
    import cv2  # pylint: disable=import-outside-toplevel
    original = np.asarray(original)
    result = original.copy()
    window = photo_window(posed, crop_size, transform, original.shape)
    if window is None:
        return result
    x0, y0, width, height = window
    clip = camera.photo_window_clip_space(np.asarray(posed, np.float32)[None], crop_size, transform, window)
    image, coverage = deferred.render_vertex_colors(clip, model.triangles, np.asarray(lit, np.float32)[None],
                                                    width, height, backend=backend)
    # window pixel q is photo pixel q + (x0, y0), i.e. crop pixel A (q + o) + t
    matrix = np.asarray(transform, np.float64)
    to_crop = np.hstack([matrix[:, :2], (matrix[:, :2] @ [x0, y0] + matrix[:, 2])[:, None]])
    mask = cv2.warpAffine((np.asarray(face_mask) > 0).astype(np.float32), to_crop, (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = feathered_alpha(coverage.numpy()[0], mask, FEATHER_FRACTION * width)[..., None]
    photo = original[y0:y0 + height, x0:x0 + width].astype(np.float32) / 255.0
    blended = np.clip(image.numpy()[0], 0.0, 1.0) * alpha + photo * (1.0 - alpha)
    result[y0:y0 + height, x0:x0 + width] = np.round(blended * 255.0).astype(np.uint8)
    return result


def comparison_sheet(panels) -> np.ndarray:
    """Equal-size images [S, S, 3] (uint8, or float in [0, 1]) side by side, 4 px white gaps: [S, n S + gaps, 3]."""
    panels = [np.asarray(p) if np.asarray(p).dtype == np.uint8
              else np.round(np.clip(p, 0.0, 1.0) * 255.0).astype(np.uint8) for p in panels]
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([part for panel in panels for part in (panel, gap)][:-1], axis=1)


def reconstruction_files(name: str, methods=METHODS, with_overlay: bool = True) -> list[str]:
    """Every file write_reconstruction writes for ``name``, relative to the output folder."""
    files = [f"{name}.input.png", f"{name}.mask.png", f"{name}.json"]
    for method in methods:
        files += [f"{name}_{method}.obj", f"{name}_{method}.ply"]
        files += [f"{method}/{name}.{kind}.png" for kind in ("render", "alpha", "input", "mask")]
    files.append(f"{name}_sheet.png")
    if with_overlay:
        files.append(f"{name}_overlay.png")
    return files


def write_reconstruction(out_dir: str, model, face: FaceReconstruction, backend: str = "auto") -> dict:
    """Writes every file of one photo (module docstring); returns the JSON record written."""
    crop = np.asarray(face.crop)
    if crop.ndim != 3 or crop.shape[0] != crop.shape[1] or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"crop must be [S, S, 3] uint8, got {crop.shape} {crop.dtype}")
    size = crop.shape[0]
    mask = (np.asarray(face.mask) > 0).astype(np.uint8)
    if mask.shape != crop.shape[:2]:
        raise ValueError(f"mask must be {crop.shape[:2]}, got {mask.shape}")
    unknown = set(face.albedo) - set(METHODS)
    if unknown:
        raise ValueError(f"albedo methods must be among {METHODS}, got {sorted(unknown)}")
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.join(out_dir, face.name)
    posed, alpha, views, unlit = render_views(model, face.coefficients, face.albedo, size, backend)
    crop_float = crop.astype(np.float32) / 255.0
    record_metrics, files = {}, {}
    fileio.write_png(stem + ".input.png", crop)
    fileio.write_png(stem + ".mask.png", mask * 255)
    files.update(input=face.name + ".input.png", mask=face.name + ".mask.png")
    for method, (lit, render) in views.items():
        albedo = np.clip(np.asarray(face.albedo[method], np.float32), 0.0, 1.0)
        mesh_io.write_obj(f"{stem}_{method}.obj", posed, model.triangles, albedo)
        mesh_io.write_ply(f"{stem}_{method}.ply", posed, model.triangles, np.clip(lit, 0.0, 1.0))
        files[f"{method}_mesh_albedo"] = f"{face.name}_{method}.obj"
        files[f"{method}_mesh_lit"] = f"{face.name}_{method}.ply"
        composited = composite(render, alpha, crop_float)
        psnr, ssim = face_metrics(crop, composited, mask, alpha)
        record_metrics[f"psnr_{method}"] = psnr
        record_metrics[f"ssim_{method}"] = ssim
        folder = os.path.join(out_dir, method)
        os.makedirs(folder, exist_ok=True)
        sub = os.path.join(folder, face.name)
        fileio.write_png(sub + ".render.png", composited)
        fileio.write_png(sub + ".alpha.png", (alpha > 0.5).astype(np.uint8) * 255)
        fileio.write_png(sub + ".input.png", crop)
        fileio.write_png(sub + ".mask.png", mask * 255)
        files[f"{method}_render"] = f"{method}/{face.name}.render.png"
    final = "refined" if "refined" in views else next(iter(views))
    if face.original is not None:
        fileio.write_png(stem + "_overlay.png", photo_overlay(model, posed, views[final][0], mask, face.transform,
                                                              face.original, size, backend))
        files["overlay"] = face.name + "_overlay.png"
    white = np.ones_like(crop_float)
    fileio.write_png(stem + "_sheet.png", comparison_sheet(
        [crop] + [composite(views[method][1], alpha, crop_float) for method in views] + [composite(unlit, alpha, white)]))
    files["sheet"] = face.name + "_sheet.png"
    blocks = coeff_lib.split_coefficients(np.asarray(face.coefficients, np.float32))
    focal, center = face_renderer.camera_for_size(size)
    record = {
        "name": face.name,
        "coefficients": np.asarray(face.coefficients, np.float32),
        "coefficient_layout": {name: [s.start, s.stop] for name, s in coeff_lib.BLOCK_SLICES.items()},
        "pose": {"angles_xyz_radians": blocks.angles.numpy(), "translation": blocks.translation.numpy()},
        "camera": {"focal_px": focal, "principal_point_px": [center, center],
                   "camera_z": camera.DENG_CAMERA_DISTANCE, "image_size": size},
        "alignment": {"transform_original_to_crop": np.asarray(face.transform, np.float64),
                      "convention": "pixel indices (pixel centre at (j, i)) on both sides",
                      "original_size": None if face.original is None else list(np.asarray(face.original).shape[:2])},
        "landmarks_5_crop_px": np.asarray(face.landmarks, np.float64),
        "metrics": record_metrics,
        "metrics_region": "face mask AND render coverage, render composited into the crop",
        "seconds": {key: round(float(value), 3) for key, value in face.seconds.items()},
        "files": files,
        "morphable_model": model.name,
    }
    record.update(record_metrics)
    record.update(face.extra)
    fileio.write_json(stem + ".json", record)
    return record
