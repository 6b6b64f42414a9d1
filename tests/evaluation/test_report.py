"""face_gcn.evaluation.report: folder discovery, identities table, coverage, EMD, outputs."""

import json

import cv2
import numpy as np
import pytest
from scipy import stats

from face_gcn.evaluation import report


class _Lookup:
    """A recognizer whose embedding is the mean colour of the image (any size)."""

    name = "mean-colour"

    def embed(self, images):
        return np.asarray(images, np.float64).mean(axis=(1, 2)) - 100.0


def _case(folder, name, image, render, mask, alpha=None):
    cv2.imwrite(str(folder / f"{name}.input.png"), image)
    cv2.imwrite(str(folder / f"{name}.render.png"), render)
    cv2.imwrite(str(folder / f"{name}.mask.png"), mask)
    if alpha is not None:
        cv2.imwrite(str(folder / f"{name}.alpha.png"), alpha)


def test_find_methods(tmp_path):
    with pytest.raises(report.EvaluationError, match="not found"):
        report.find_methods(str(tmp_path / "none"))
    with pytest.raises(report.EvaluationError, match="no \\*.render.png"):
        report.find_methods(str(tmp_path))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "b").mkdir()
    (tmp_path / "run" / "a").mkdir()
    (tmp_path / "run" / "empty").mkdir()
    for path in ("run/x.render.png", "run/b/x.render.png", "run/a/x.render.png"):
        (tmp_path / path).write_bytes(b"")
    methods = report.find_methods(str(tmp_path / "run"))
    assert list(methods) == ["run", "a", "b"]


def test_read_identities(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("name,identity\nimg0, anna\n\nimg1,bob\nimg0,anna\n")
    assert report.read_identities(str(path)) == {"img0": "anna", "img1": "bob"}
    path.write_text("img0,anna\nimg0,bob\n")
    with pytest.raises(report.EvaluationError, match="two identities"):
        report.read_identities(str(path))
    path.write_text("name,identity\n")
    with pytest.raises(report.EvaluationError, match="no rows"):
        report.read_identities(str(path))
    with pytest.raises(report.EvaluationError, match="not found"):
        report.read_identities(str(tmp_path / "missing.csv"))


def test_grey_alpha_coverage_and_empty_mask(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    render = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mask = np.full((16, 16), 255, np.uint8)
    alpha = np.zeros((16, 16), np.uint8)
    alpha[:4] = 200  # rows 0-3 covered; 127 is under half and not covered
    alpha[4:8] = 127
    _case(tmp_path, "a", image, render, mask, alpha)
    _case(tmp_path, "b", image, render, np.zeros((16, 16), np.uint8))
    # a 16-bit 0/1 mask: nonzero is inside, whatever the depth
    sixteen = np.zeros((16, 16), np.uint16)
    sixteen[:, :5] = 1
    _case(tmp_path, "c", image, render, sixteen)
    result = report.evaluate_method(str(tmp_path))
    x, y = image[..., ::-1] / 255.0, render[..., ::-1] / 255.0  # files are BGR
    assert result["per_image"]["a"]["l1"] == pytest.approx(np.abs(x - y)[:4].mean())
    assert result["per_image"]["c"]["l1"] == pytest.approx(np.abs(x - y)[:, :5].mean())
    assert result["failed"] == [{"name": "b", "reason":
                                 "empty evaluation mask (face mask AND render coverage)"}]


def test_emd_and_cosine_with_a_recognizer(tmp_path):
    rng = np.random.default_rng(1)
    colours = {"p0": (90, 120, 200), "p1": (95, 118, 190), "q0": (200, 40, 60),
               "r0": (30, 220, 20)}
    identities = {"p0": "p", "p1": "p", "q0": "q", "r0": "r"}
    for name, colour in colours.items():
        image = np.full((12, 12, 3), colour, np.uint8)
        render = np.clip(image + rng.normal(0, 10, image.shape), 0, 255).astype(np.uint8)
        _case(tmp_path, name, image, render, np.full((12, 12), 1, np.uint8))
    result = report.evaluate_method(str(tmp_path), recognizer=_Lookup(),
                                    identities=identities, batch_size=3)
    names = sorted(colours)
    read = {n: (cv2.imread(str(tmp_path / f"{n}.input.png"))[..., ::-1],
                cv2.imread(str(tmp_path / f"{n}.render.png"))[..., ::-1]) for n in names}
    emb = {n: (a.reshape(-1, 3).mean(0) - 100, b.reshape(-1, 3).mean(0) - 100)
           for n, (a, b) in read.items()}

    def cos(u, v):
        return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    for n in names:
        assert result["per_image"][n]["cosine"] == pytest.approx(cos(*emb[n]))
    same = [cos(emb[i][1], emb[j][0]) for i in names for j in names
            if identities[i] == identities[j]]
    different = [cos(emb[i][1], emb[j][0]) for i in names for j in names
                 if identities[i] != identities[j]]
    assert result["emd"] == pytest.approx(stats.wasserstein_distance(same, different))
    assert result["emd_same_pairs"] == 6 and result["emd_unlabelled"] == []
    one = report.evaluate_method(str(tmp_path), recognizer=_Lookup(),
                                 identities={n: "x" for n in names})
    assert one["emd"] is None and "two identities" in one["emd_note"]


def test_outputs_are_strict_json(tmp_path):
    results = {"m": {"l1": {"mean": 0.0, "std": 0.0, "n": 1},
                     "psnr": {"mean": float("inf"), "std": float("nan"), "n": 1},
                     "ssim": {"mean": 1.0, "std": 0.0, "n": 1}, "n_images": 1, "failed": [],
                     "per_image": {}}}
    report.write_reports(results, str(tmp_path / "r.json"), str(tmp_path / "r.md"))
    text = (tmp_path / "r.json").read_text()
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert loaded["m"]["psnr"] == {"mean": "inf", "std": None, "n": 1}
    assert "| m | 1 | 0.0000 ± 0.0000 | inf | 1.0000 ± 0.0000 | 0 |" in (
        tmp_path / "r.md").read_text()
