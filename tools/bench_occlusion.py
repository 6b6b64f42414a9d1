"""Occlusion-aware texture (issue 17 item 2), measured on real photos against hand-drawn skin masks.

For each photo: MTCNN, Deng's alignment and dlib's 68 landmarks once; then, per variant, the face
mask, `face-gcn fit`'s coarse fit (all photos of a variant as one batch) and test-time refinement.

Variants (the segmenter, the landmarks its face region comes from, the landmarks the fit follows):
  chroma5    builtin_chroma, 5, 5    what `fit` did before
  builtin5   builtin, 5, 5           `fit` now
  mask68     builtin, 68, 5          `fit --mask_landmarks 68`
  builtin68  builtin, 68, 68         `fit --landmarks 68`

Against a reference mask per photo (--references: NAME.png at the photo's size, 255 = face skin
with brows, eyes, nose and mouth; hair, headwear, glasses frames, hands, ears, neck and background
0; drawn by hand, never by this code), in the aligned crop:
  mask P / R / IoU   the segmenter's mask: precision, recall, intersection over union;
  render_out         fraction of the refined render (coverage) outside the reference;
  photo_out          fraction of the photo-textured render (pixels whose interpolated blend weight,
                     refine's w, is >= 0.5: texture carried from the photo rather than the 3DMM
                     albedo) outside the reference: hair, brims or background baked into the face;
  skin_textured      fraction of the reference skin under the render that is photo-textured;
  psnr_ref           PSNR of the refined render against the photo over reference skin x coverage.
Writes DIR/NAME.png per photo (crop | refined render pasted over the crop | photo-textured area in
green, the reference outline in magenta, per variant) and DIR/occlusion.json.

  python tools/bench_occlusion.py --photos /tmp/ten/photos --references /tmp/ten/reference --output_dir /tmp/occl
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import time

import numpy as np
from absl import app, flags

from face_gcn.cli import fit as fit_cli  # its flags (steps of each stage, crop size) apply here too

FLAGS = flags.FLAGS
flags.DEFINE_string("photos", None, "Folder of photos.")
flags.DEFINE_string("references", None, "Folder of NAME.png reference face masks (photo size).")
flags.DEFINE_string("output_dir", "/tmp/bench_occlusion", "Output folder (sheets and occlusion.json).")
flags.DEFINE_list("variants", ["chroma5", "builtin5", "mask68", "builtin68"], "Variants to run (module docstring).")

VARIANTS = {"chroma5": ("builtin_chroma", 5, 5), "builtin5": ("builtin", 5, 5), "mask68": ("builtin", 68, 5),
            "builtin68": ("builtin", 68, 68)}


def _reference_in_crop(path: str, transform, size: int):
    import cv2  # pylint: disable=import-outside-toplevel
    reference = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if reference is None:
        raise ValueError(f"cannot read the reference mask {path}")
    return cv2.warpAffine((reference > 127).astype(np.uint8), np.asarray(transform, np.float64), (size, size),
                          flags=cv2.INTER_NEAREST) > 0


def _figures(mask, reference, alpha, photo_textured, render, crop) -> dict:
    from face_gcn.evaluation import metrics  # pylint: disable=import-outside-toplevel
    covered = alpha > 0.5
    textured = photo_textured & covered
    hits = (mask & reference).sum()
    under = reference & covered
    return {
        "mask_precision": float(hits / max(mask.sum(), 1)),
        "mask_recall": float(hits / max(reference.sum(), 1)),
        "mask_iou": float(hits / max((mask | reference).sum(), 1)),
        "render_out": float((covered & ~reference).sum() / max(covered.sum(), 1)),
        "photo_out": float((textured & ~reference).sum() / max(textured.sum(), 1)),
        "skin_textured": float((textured & reference).sum() / max(under.sum(), 1)),
        "psnr_ref": float(metrics.masked_psnr(crop[None], render[None], under[None])[0]),
    }


def _sheet_tiles(crop, render, alpha, photo_textured, reference):
    import cv2  # pylint: disable=import-outside-toplevel
    composite = (render * alpha[..., None] + crop * (1.0 - alpha[..., None]))
    composite = (np.clip(composite, 0, 1) * 255).astype(np.uint8)
    textured = (crop * 255).astype(np.uint8)
    where = photo_textured & (alpha > 0.5)
    textured[where] = (0.5 * textured[where] + [0, 127, 0]).astype(np.uint8)
    outline, _ = cv2.findContours(reference.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    for tile in (composite, textured):
        cv2.drawContours(tile, outline, -1, (255, 0, 255), 1)
    return [composite, textured]


def main(argv):
    del argv
    import cv2  # pylint: disable=import-outside-toplevel

    from face_gcn.data import masks  # pylint: disable=import-outside-toplevel
    from face_gcn.fit import coarse_fit, refine  # pylint: disable=import-outside-toplevel
    from face_gcn.morphable import configured, formation  # pylint: disable=import-outside-toplevel
    from face_gcn.render import deferred, face_renderer  # pylint: disable=import-outside-toplevel

    if not FLAGS.photos or not FLAGS.references:
        raise app.UsageError("--photos and --references are required")
    unknown = set(FLAGS.variants) - set(VARIANTS)
    if unknown:
        raise app.UsageError(f"unknown variants {sorted(unknown)}; choose from {sorted(VARIANTS)}")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    model = configured.load_configured(None)
    size = FLAGS.crop_size
    triangles = formation.model_tensors(model).triangles
    low = FLAGS.low_resolution if FLAGS.low_resolution < size else 0
    fit_config = coarse_fit.FitConfig(stages=coarse_fit.default_stages(
        FLAGS.pose_steps, FLAGS.shape_steps, FLAGS.appearance_steps, low))
    pipeline = fit_cli.FitPipeline(model, size, fit_config, refine.RefineConfig(steps=max(1, FLAGS.refine_steps)),
                                   landmarks=68)
    photos, references = [], []
    for path in sorted(glob.glob(os.path.join(FLAGS.photos, "*"))):
        name = os.path.splitext(os.path.basename(path))[0]
        reference = os.path.join(FLAGS.references, name + ".png")
        if not os.path.isfile(reference):
            continue
        photo = pipeline.aligner.align(path)
        photos.append(photo)
        references.append(_reference_in_crop(reference, photo.transform, size))
    print(f"{len(photos)} photos with references; 68 landmarks on "
          f"{sum(p.landmarks68 is not None for p in photos)}")

    results = {os.path.basename(p.source): {} for p in photos}
    tiles = [[p.crop] for p in photos]
    for variant in FLAGS.variants:
        segmenter_name, mask_count, fit_count = VARIANTS[variant]
        segmenter = masks.make_segmenter(segmenter_name)
        variant_photos = []
        for photo in photos:
            points = photo.landmarks68 if mask_count == 68 and photo.landmarks68 is not None else photo.landmarks
            mask = segmenter.segment(photo.crop, points)
            variant_photos.append(dataclasses.replace(
                photo, mask=mask, landmarks68=photo.landmarks68 if fit_count == 68 else None))
        started = time.perf_counter()
        fits = pipeline.fit(variant_photos)
        fit_seconds = time.perf_counter() - started
        for index, (photo, reference, fit) in enumerate(zip(variant_photos, references, fits)):
            if isinstance(fit, Exception):
                print(f"{variant} {photo.source}: fit failed: {fit}")
                continue
            coefficients = fit[0]
            refined = pipeline.refiner.refine(photo.crop, photo.mask, coefficients)
            render, alpha = refine.render_albedo(model, coefficients, refined.albedo, size)
            fitted = face_renderer.render_coefficients(model, np.asarray(coefficients, np.float32)[None], size)
            blend, _ = deferred.shade_fragments(fitted.fragments, triangles,
                                                np.repeat(refined.blend[None, :, None], 3, axis=-1))
            photo_textured = blend.numpy()[0, ..., 0] >= 0.5
            crop = photo.crop.astype(np.float32) / 255.0
            figures = _figures(photo.mask.astype(bool), reference, alpha, photo_textured, render, crop)
            figures["seconds"] = fit_seconds / len(photos) + refined.seconds
            results[os.path.basename(photo.source)][variant] = figures
            tiles[index] += _sheet_tiles(crop, render, alpha, photo_textured, reference)

    for photo, row in zip(photos, tiles):
        name = os.path.splitext(os.path.basename(photo.source))[0]
        cv2.imwrite(os.path.join(FLAGS.output_dir, name + ".png"), cv2.cvtColor(np.concatenate(row, 1), cv2.COLOR_RGB2BGR))
    keys = ["mask_precision", "mask_recall", "mask_iou", "render_out", "photo_out", "skin_textured", "psnr_ref"]
    means = {variant: {key: float(np.nanmean([r[variant][key] for r in results.values() if variant in r]))
                       for key in keys + ["seconds"]} for variant in FLAGS.variants}
    with open(os.path.join(FLAGS.output_dir, "occlusion.json"), "w", encoding="utf-8") as handle:
        json.dump({"photos": results, "mean": means}, handle, indent=2)
    header = f"{'photo':<16}{'variant':<11}" + "".join(f"{k:>15}" for k in keys)
    print(header)
    for name, per_variant in results.items():
        for variant, figures in per_variant.items():
            print(f"{name:<16}{variant:<11}" + "".join(f"{figures[k]:>15.3f}" for k in keys))
    for variant, figures in means.items():
        print(f"{'mean':<16}{variant:<11}" + "".join(f"{figures[k]:>15.3f}" for k in keys)
              + f"   {figures['seconds']:.1f} s/photo")


if __name__ == "__main__":
    app.run(main)
