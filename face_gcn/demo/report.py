"""The demo's report: DIR/report.html with the metrics table, input | coarse | refined images and
loss curves (inline SVG, read from the runs' TensorBoard event files; no plotting library)."""

from __future__ import annotations

import glob
import html
import math
import os

import numpy as np
import tensorflow as tf

from face_gcn import fileio
from face_gcn.nets import recognition

METRIC_ROWS = (("PSNR (dB, face region) ↑", "psnr"), ("SSIM (face region) ↑", "ssim"),
               ("albedo error vs ground truth ↓", "albedo_error"),
               ("identity cosine, input vs render ↑", "identity_cosine"))


def read_scalars(workdir: str) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} of the scalar summaries under workdir/events (sorted by step)."""
    series: dict[str, dict[int, float]] = {}
    for path in sorted(glob.glob(os.path.join(workdir, "events", "*"))):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name != "scalars":
                    continue
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                series.setdefault(value.tag, {})[int(event.step)] = number
    return {tag: sorted(points.items()) for tag, points in series.items()}


def svg_curves(series: dict[str, list[tuple[int, float]]], width: int = 420, height: int = 180) -> str:
    """One SVG chart with a polyline per series (log-scaled y when all values are positive)."""
    series = {k: [(s, v) for s, v in pts if math.isfinite(v)] for k, pts in series.items()}
    series = {k: v for k, v in series.items() if len(v) >= 2}
    if not series:
        return "<p>(no curve recorded)</p>"
    positive = all(v > 0 for pts in series.values() for _, v in pts)
    transform = math.log10 if positive else (lambda v: v)
    steps = [s for pts in series.values() for s, _ in pts]
    values = [transform(v) for pts in series.values() for _, v in pts]
    x0, x1 = min(steps), max(steps) or 1
    y0, y1 = min(values), max(values)
    y1 = y1 if y1 > y0 else y0 + 1.0
    pad = 30
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")
    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" '
             f'style="border:1px solid #ccc">']
    for index, (tag, pts) in enumerate(sorted(series.items())):
        coords = " ".join(
            f"{pad + (s - x0) / max(x1 - x0, 1) * (width - 2 * pad):.1f},"
            f"{height - pad - (transform(v) - y0) / (y1 - y0) * (height - 2 * pad):.1f}" for s, v in pts)
        colour = colours[index % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        parts.append(f'<text x="{pad + 5}" y="{14 + 12 * index}" font-size="10" fill="{colour}">'
                     f'{html.escape(tag)}</text>')
    scale = "log10 " if positive else ""
    parts.append(f'<text x="{pad}" y="{height - 8}" font-size="10">step {x0}..{x1}; {scale}y '
                 f'{(10 ** y0 if positive else y0):.3g}..{(10 ** y1 if positive else y1):.3g}</text></svg>')
    return "".join(parts)


def _metric_table(result: dict, scores: dict) -> str:
    rows = ["<table><tr><th>metric</th><th>coarse (3DMM albedo)</th><th>refined (GCN)</th></tr>"]
    for label, key in METRIC_ROWS:
        if f"{key}_coarse" not in scores:  # identity: only with a recognition network
            continue
        cells = []
        for tag in ("coarse", "refined"):
            values = np.asarray(scores[f"{key}_{tag}"], np.float64)
            cells.append(f"{np.nanmean(values):.4g} ± {np.nanstd(values):.2g}")
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>")
    if "identity_emd_coarse" in result:
        rows.append(f"<tr><td>identity EMD, same vs different faces ↑</td><td>{result['identity_emd_coarse']:.4g}</td>"
                    f"<td>{result['identity_emd_refined']:.4g}</td></tr>")
    rows.append("</table>")
    if "recognizer" in result:
        rows.append(f"<p>Identity figures: embeddings of {html.escape(recognition.NAMES.get(result['recognizer'], result['recognizer']))}, "
                    "the network L_id trains with (so not an independent judge); the render is pasted over the input "
                    "where it covers it, as in the images below.</p>")
    return "".join(rows)


def _read_back_note(result: dict) -> str:
    """A sentence on the albedo read back from the photo (T_p / shading), when the run measured it."""
    if "albedo_error_photo" not in result:
        return ""
    return (f"<p>Albedo read back from the photo (T_p divided by the coarse shading, at visible front vertices), "
            f"which a texture fitted to the photo tends to: error {result['albedo_error_photo']:.4g} through the "
            f"coarse stage, {result.get('albedo_error_photo_true_coefficients', float('nan')):.4g} through the "
            f"ground-truth coefficients. Where the first exceeds the coarse albedo error, the coarse stage's pose "
            f"and light errors, not the texture stage, bound the refined albedo.</p>")


def _coarse_note(result: dict) -> str:
    """A sentence on the coarse stage's pose and light against the truth, when the run measured them."""
    if "coarse_angle_rmse_deg" not in result:
        return ""
    steps = result["settings"].get("fit_steps", 0)
    return (f"<p>Coarse stage: the regressor, then {steps} steps of the batched fit. Pose error against the truth "
            f"(RMS over faces and Euler angles): {result['regressor_angle_rmse_deg']:.2f}&deg; from the regressor, "
            f"{result['coarse_angle_rmse_deg']:.2f}&deg; after the fit; light error (RMS of the 27 SH coefficients) "
            f"{result['regressor_light_error']:.4f} &rarr; {result['coarse_light_error']:.4f}.</p>")


def _albedo_rows(workdir: str, names: list, scores: dict) -> str:
    """Per face: true | 3DMM | refined albedo (frontal, one light) and the face's numbers."""
    index = {name: i for i, name in enumerate(scores["names"])}
    rows = []
    for name in names:
        if not os.path.isfile(os.path.join(workdir, "heldout", "albedo", f"{name}.true.png")):
            continue
        i = index[name]
        numbers = "<br>".join(
            f"{label} {scores[f'{key}_coarse'][i]:.4g} &rarr; {scores[f'{key}_refined'][i]:.4g}"
            for label, key in (("albedo error", "albedo_error"), ("PSNR", "psnr"), ("SSIM", "ssim"),
                               ("identity cosine", "identity_cosine")) if f"{key}_coarse" in scores)
        if "coarse_angle_error_deg" in scores:
            numbers += f"<br>pose error {scores['coarse_angle_error_deg'][i]:.2f}&deg;"
        cells = "".join(f'<td><img src="heldout/albedo/{name}.{tag}.png"></td>'
                        for tag in ("true", "coarse", "refined"))
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}<td style='text-align:left'>{numbers}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Albedo: true | 3DMM (coarse) | refined</h2><p>Each albedo on the face's true geometry, facing the "
            "camera under one fixed light (not the photo's). Numbers: coarse &rarr; refined.</p>"
            "<table><tr><th>image</th><th>true</th><th>3DMM</th><th>refined</th><th>numbers</th></tr>"
            + "".join(rows) + "</table>")


def write_report(workdir: str, result: dict, scores: dict, curves: dict) -> str:
    """Writes workdir/report.html (images are the files under workdir/heldout); returns its path."""
    names = [n for n in scores["names"] if os.path.isfile(os.path.join(workdir, "heldout", f"{n}.input.png"))]
    image_rows = "".join(
        f'<tr><td>{html.escape(n)}</td>'
        f'<td><img src="heldout/{n}.input.png"></td><td><img src="heldout/coarse/{n}.render.png"></td>'
        f'<td><img src="heldout/refined/{n}.render.png"></td></tr>' for n in names)
    charts = []
    for run, series in curves.items():
        losses = {tag.split("/", 1)[1]: pts for tag, pts in series.items() if tag.startswith("loss/")
                  and not tag.startswith("loss/s")}
        charts.append(f"<div><h3>{html.escape(run)} stage</h3>{svg_curves(losses)}</div>")
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.get("stage_seconds", {}).items())
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>face-gcn demo report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:center}} img{{width:160px;image-rendering:pixelated}}
.charts{{display:flex;gap:2em;flex-wrap:wrap}}</style></head><body>
<h1>face-gcn demo</h1>
<p>The method of Lin et al. (CVPR 2020) trained on {result['settings']['num_train']} synthetic faces of the built-in
demo morphable model, whose albedo carries detail (moles, freckles, brow and lip texture) the 3DMM albedo basis
cannot represent; scored on {result['n_images']} held-out faces. Coarse: the coarse stage's 3DMM albedo lit by its SH
light; refined: the GCN texture with the same geometry and light. Render vs input inside the face region (face mask
and coverage); albedo error: mean Euclidean RGB distance (linear, 0-1) to the ground truth over front-face vertices.
Total {result['seconds']:.0f} s ({html.escape(stages)}).</p>
<h2>Metrics</h2>{_metric_table(result, scores)}{_coarse_note(result)}{_read_back_note(result)}
<h2>Held-out faces: input | coarse | refined</h2>
<table><tr><th>image</th><th>input</th><th>coarse</th><th>refined</th></tr>{image_rows}</table>
{_albedo_rows(workdir, names, scores)}
<h2>Loss curves</h2><div class="charts">{''.join(charts)}</div>
<p>Numbers: <a href="metrics.json">metrics.json</a>. Trained model: {html.escape(result['model_dir'])}.</p>
</body></html>
"""
    path = os.path.join(workdir, "report.html")
    with fileio.atomic_write(path, "w") as handle:
        handle.write(page)
    return path
