"""A folder of renders -> the paper's evaluation table (section 5.2), as JSON and Markdown.

Layout of a results folder, per image NAME:
  NAME.input.png   the aligned crop given to the network (RGB)
  NAME.render.png  the render of its reconstruction, same size
  NAME.mask.png    the face region, nonzero = inside
  NAME.alpha.png   optional: render coverage (the alpha channel of an RGBA file, else the grey
                   value), covered where >= half the range
The evaluation mask is face mask AND coverage (the face mask alone when there is no alpha file).
A folder holding *.render.png files is one method. Sub-folders that hold them (DIR/coarse,
DIR/refined, ...) are further methods, reported side by side; files a sub-folder lacks
(NAME.input.png, NAME.mask.png) are taken from DIR, so inputs and masks can be shared.

Per method: L1, PSNR, SSIM inside the mask (face_gcn.evaluation.metrics, images in [0, 1]).
With an alpha file also what the masked figures cannot show: "outside_mask", the fraction of the
render's coverage that lies outside the face mask (hair, hats, background painted as skin), and
"l1_render", "psnr_render", "ssim_render" over the whole coverage. With a recognizer, the cosine similarity of each input's and render's embeddings; with an
identities table, the earth mover's distance between the cosine similarities of
(render i, input j) pairs of the same identity (i == j included) and of different identities.
Unreadable or mismatched files are listed under "failed" with the reason; they never stop a run.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from face_gcn import fileio
from face_gcn.data import images as images_lib
from face_gcn.evaluation import metrics

INPUT, RENDER, MASK, ALPHA = ".input.png", ".render.png", ".mask.png", ".alpha.png"
IMAGE_METRICS = ("l1", "psnr", "ssim")
# with render coverage (NAME.alpha.png): the figures over the whole render and its share off the face
COVERAGE_METRICS = ("outside_mask", "l1_render", "psnr_render", "ssim_render")
# Lin et al. 2020, Table 1 (CelebA, face region): the paper's refined texture and Deng's coarse.
PAPER_REFERENCE = {"paper (refined)": {"l1": 0.034, "psnr": 29.69, "ssim": 0.894},
                   "paper (coarse, Deng)": {"l1": 0.052, "psnr": 26.58, "ssim": 0.826}}


class EvaluationError(ValueError):
    """A user error that stops the evaluation (no results folder, bad identities table)."""


class _Rejected(Exception):
    """One image cannot be evaluated; the message is the reason listed under "failed"."""


def _names(folder: str, suffix: str) -> set[str]:
    return {entry[:-len(suffix)] for entry in os.listdir(folder)
            if entry.endswith(suffix) and len(entry) > len(suffix)
            and os.path.isfile(os.path.join(folder, entry))}


def find_methods(results_dir: str) -> dict[str, str]:
    """{method name: folder}: results_dir itself (named by its basename) if it holds renders,
    then each immediate sub-folder that holds renders, sorted by name."""
    if not os.path.isdir(results_dir):
        raise EvaluationError(f"results folder not found: {results_dir}")
    methods = {}
    if _names(results_dir, RENDER):
        methods[os.path.basename(os.path.abspath(results_dir)) or "results"] = results_dir
    for entry in sorted(os.listdir(results_dir)):
        folder = os.path.join(results_dir, entry)
        if os.path.isdir(folder) and _names(folder, RENDER):
            methods[entry if entry not in methods else f"{entry}/"] = folder
    if not methods:
        raise EvaluationError(f"no *{RENDER} files in {results_dir} or its sub-folders")
    return methods


def read_identities(path: str) -> dict[str, str]:
    """A CSV of "name,identity" rows (an optional header "name,identity") -> {name: identity}."""
    if not os.path.isfile(path):
        raise EvaluationError(f"identities file not found: {path}")
    table: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as error:
        raise EvaluationError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise EvaluationError(f"{path}: not a CSV file ({error})") from None
    for line_number, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise EvaluationError(f"{path}:{line_number}: expected 'name,identity', got "
                                  f"{len(row)} fields")
        name, identity = row[0].strip(), row[1].strip()
        if line_number == 1 and (name.lower(), identity.lower()) == ("name", "identity"):
            continue
        if not name or not identity:
            raise EvaluationError(f"{path}:{line_number}: empty name or identity")
        if table.get(name, identity) != identity:
            raise EvaluationError(f"{path}:{line_number}: {name!r} listed with two "
                                  f"identities ({table[name]!r}, {identity!r})")
        table[name] = identity
    if not table:
        raise EvaluationError(f"identities file {path} has no rows")
    return table


def _read_rgb(path: str) -> np.ndarray:
    try:
        return images_lib.load_image(path).rgb
    except images_lib.ImageRejected as error:
        raise _Rejected(f"{os.path.basename(path)}: {error}") from error


def _read_plane(path: str) -> np.ndarray:
    """A PNG decoded as stored (8/16-bit, any channel count, alpha kept)."""
    import cv2  # pylint: disable=import-outside-toplevel
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except (OSError, cv2.error) as error:
        raise _Rejected(f"{os.path.basename(path)}: unreadable ({error})") from error
    if image is None or image.size == 0 or image.dtype not in (np.uint8, np.uint16):
        raise _Rejected(f"{os.path.basename(path)}: unreadable (not an 8/16-bit image)")
    return image


def _read_mask(path: str) -> np.ndarray:
    """Face mask -> [H, W] bool: nonzero in any colour channel (an alpha channel is ignored)."""
    image = _read_plane(path)
    if image.ndim == 3:
        image = image[..., :1] if image.shape[2] == 2 else image[..., :3]
        return np.any(image != 0, axis=2)
    return image != 0


def _read_coverage(path: str) -> np.ndarray:
    """Alpha PNG -> [H, W] bool: the alpha channel of RGBA / LA files, else the grey value
    (mean of colour channels), covered where >= half the sample range."""
    image = _read_plane(path)
    full = 255 if image.dtype == np.uint8 else 65535
    if image.ndim == 3:
        image = image[..., -1] if image.shape[2] in (2, 4) else image.mean(axis=2)
    return image >= full / 2


def _load_case(folder: str, shared: str | None, name: str):
    """-> (input, render) uint8 [H, W, 3], the evaluation mask [H, W] bool (face mask AND coverage) and
    the coverage [H, W] bool, or None without an alpha file."""

    def locate(suffix, required=True):
        for place in (folder, shared):
            if place is not None and os.path.isfile(os.path.join(place, name + suffix)):
                return os.path.join(place, name + suffix)
        if required:
            raise _Rejected(f"missing {name}{suffix}")
        return None

    paths = {suffix: locate(suffix) for suffix in (INPUT, RENDER, MASK)}
    alpha_path = locate(ALPHA, required=False)
    image = _read_rgb(paths[INPUT])
    render = _read_rgb(paths[RENDER])
    mask = _read_mask(paths[MASK])
    coverage = _read_coverage(alpha_path) if alpha_path else None
    sizes = {"input": image.shape[:2], "render": render.shape[:2], "mask": mask.shape[:2]}
    if coverage is not None:
        sizes["alpha"] = coverage.shape
    if len(set(sizes.values())) != 1:
        raise _Rejected("size mismatch: " + ", ".join(f"{key} {h}x{w}" for key, (h, w)
                                                     in sizes.items()))
    face = mask if coverage is None else mask & coverage
    if not face.any():
        raise _Rejected("empty evaluation mask (face mask AND render coverage)")
    return image, render, face, coverage


def _image_metrics(image, render, mask, suffix: str = "") -> dict:
    """L1, PSNR and SSIM of uint8 images [H, W, 3] inside mask [H, W] bool; keys end in ``suffix``."""
    x = image[None].astype(np.float64) / 255.0
    y = render[None].astype(np.float64) / 255.0
    m = mask[None]
    return {f"l1{suffix}": float(metrics.masked_l1(x, y, m)[0]),
            f"psnr{suffix}": float(metrics.masked_psnr(x, y, m)[0]),
            f"ssim{suffix}": float(metrics.masked_ssim(x, y, m)[0])}


def evaluate_method(folder: str, shared: str | None = None, recognizer=None,
                    identities: dict[str, str] | None = None, batch_size: int = 32,
                    progress: bool = False, label: str = "evaluate") -> dict:
    """Evaluates one method folder.

    Args:
      folder: holds NAME.render.png (and NAME.input.png, NAME.mask.png, NAME.alpha.png).
      shared: a folder to take missing input / mask / alpha files from (None: none).
      recognizer: a face_gcn.evaluation.recognizers.Recognizer, or None.
      identities: {name: identity} for the EMD (needs a recognizer).
      batch_size: images embedded together.
    Returns:
      {"l1", "psnr", "ssim": {"mean", "std", "n"}, COVERAGE_METRICS? (images with an alpha file),
       "identity_cosine"?, "emd"?, "n_images", "failed": [{"name", "reason"}],
       "per_image": {name: {"l1", "psnr", "ssim", COVERAGE_METRICS?, "cosine"?}}}.
    """
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel
    names = _names(folder, RENDER) | _names(folder, INPUT)
    if shared is not None:
        names |= _names(shared, INPUT)
    failed, per_image = [], {}
    pending_names, pending_inputs, pending_renders = [], [], []
    input_embeddings, render_embeddings, embedded = [], [], []

    def flush():
        if not pending_names:
            return
        try:
            inputs = recognizer.embed(np.stack(pending_inputs)) if _same_size(pending_inputs) \
                else np.concatenate([recognizer.embed(x[None]) for x in pending_inputs])
            renders = recognizer.embed(np.stack(pending_renders)) \
                if _same_size(pending_renders) \
                else np.concatenate([recognizer.embed(x[None]) for x in pending_renders])
        finally:
            batch_names = list(pending_names)
            pending_names.clear()
            pending_inputs.clear()
            pending_renders.clear()
        cosine = metrics.cosine_similarity(inputs, renders)
        for name, value in zip(batch_names, cosine):
            per_image[name]["cosine"] = float(value)
        input_embeddings.append(inputs)
        render_embeddings.append(renders)
        embedded.extend(batch_names)

    for name in tqdm(sorted(names), disable=not progress, unit="img", desc=label):
        try:
            image, render, mask, coverage = _load_case(folder, shared, name)
        except _Rejected as error:
            failed.append({"name": name, "reason": str(error)})
            continue
        per_image[name] = _image_metrics(image, render, mask)
        if coverage is not None:  # not empty: it holds the evaluation mask
            per_image[name]["outside_mask"] = float(1.0 - mask.sum() / coverage.sum())
            per_image[name].update(_image_metrics(image, render, coverage, "_render"))
        if recognizer is not None:
            pending_names.append(name)
            pending_inputs.append(image)
            pending_renders.append(render)
            if len(pending_names) >= batch_size:
                flush()
    if recognizer is not None:
        flush()

    result = {key: metrics.summarize([v[key] for v in per_image.values()])
              for key in IMAGE_METRICS}
    for key in COVERAGE_METRICS:
        values = [v[key] for v in per_image.values() if key in v]
        if values:
            result[key] = metrics.summarize(values)
    result["n_images"] = len(per_image)
    if recognizer is not None:
        result["identity_cosine"] = metrics.summarize(
            [v["cosine"] for v in per_image.values()])
        if identities is not None:
            result.update(_emd(embedded, input_embeddings, render_embeddings, identities))
    result["failed"] = failed
    result["per_image"] = per_image
    return result


def _same_size(images) -> bool:
    return len({x.shape for x in images}) == 1


def _emd(names, input_embeddings, render_embeddings, identities) -> dict:
    """EMD between cosine(render i, input j) of same- and different-identity pairs."""
    keep = [i for i, name in enumerate(names) if name in identities]
    info = {"emd_images": len(keep),
            "emd_unlabelled": sorted(set(names) - set(identities))}
    if not keep:
        return {**info, "emd": None, "emd_note": "no evaluated image is in the identities table"}
    labels = np.array([identities[names[i]] for i in keep])
    same = labels[:, None] == labels[None, :]
    info["emd_same_pairs"] = int(same.sum())
    info["emd_different_pairs"] = int((~same).sum())
    try:
        info["emd"] = metrics.identity_emd(np.concatenate(input_embeddings)[keep],
                                           np.concatenate(render_embeddings)[keep], labels)
    except ValueError as error:
        info["emd"] = None
        info["emd_note"] = (f"needs at least two identities ({error})" if not (~same).any()
                            else str(error))
    return info


def evaluate_results(results_dir: str, recognizer=None, identities=None,
                     batch_size: int = 32, progress: bool = False) -> dict:
    """{method: evaluate_method(...)} for every method folder of results_dir (find_methods)."""
    methods = find_methods(results_dir)
    results = {}
    for method, folder in methods.items():
        shared = None if os.path.samefile(folder, results_dir) else results_dir
        results[method] = evaluate_method(folder, shared, recognizer, identities, batch_size,
                                          progress, label=f"evaluate {method}")
    return results


def _json_safe(value):
    """nan -> None, +-inf -> "inf" / "-inf" (strict JSON has neither), recursively."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def _cell(summary: dict | None, digits: int) -> str:
    if not summary or not summary.get("n"):
        return "–"
    mean, std = summary["mean"], summary["std"]
    if math.isinf(mean):
        return "inf"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_markdown(results: dict, reference: bool = True) -> str:
    """A Markdown table, one row per method (mean ± std over images), the paper's CelebA
    numbers below for reference, and the failed images."""
    with_id = any("identity_cosine" in r for r in results.values())
    with_emd = any("emd" in r for r in results.values())
    with_coverage = any("outside_mask" in r for r in results.values())
    header = ["method", "images", "L1 ↓", "PSNR (dB) ↑", "SSIM ↑"]
    header += ["render off the face mask ↓", "PSNR, whole render (dB) ↑"] if with_coverage else []
    header += ["identity cosine ↑"] if with_id else []
    header += ["EMD ↑"] if with_emd else []
    header += ["failed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, result in results.items():
        row = [method.replace("|", "\\|"), str(result["n_images"]), _cell(result["l1"], 4),
               _cell(result["psnr"], 2), _cell(result["ssim"], 4)]
        if with_coverage:
            row += [_cell(result.get("outside_mask"), 3), _cell(result.get("psnr_render"), 2)]
        if with_id:
            row.append(_cell(result.get("identity_cosine"), 4))
        if with_emd:
            emd = result.get("emd")
            row.append("–" if emd is None else f"{emd:.4f}")
        row.append(str(len(result["failed"])))
        lines.append("| " + " | ".join(row) + " |")
    if reference:
        lines += ["", "Paper, CelebA face region (Lin et al. 2020, Table 1): "
                  + "; ".join(f"{name}: L1 {v['l1']}, PSNR {v['psnr']}, SSIM {v['ssim']}"
                              for name, v in PAPER_REFERENCE.items()) + "."]
    failures = [(method, item) for method, result in results.items()
                for item in result["failed"]]
    if failures:
        lines += ["", "Failed images:", ""]
        lines += [f"- {method}: {item['name']}: {item['reason']}" for method, item in failures]
    return "\n".join(lines) + "\n"


def write_reports(results: dict, json_path: str | None = None,
                  markdown_path: str | None = None) -> None:
    """Writes the JSON (nan as null, inf as "inf") and the Markdown table, atomically."""
    if json_path:
        fileio.write_json(json_path, _json_safe(results))
    if markdown_path:
        with fileio.atomic_write(markdown_path, "w") as handle:
            handle.write(to_markdown(results))
