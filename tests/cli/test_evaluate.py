"""`face-gcn evaluate` end to end: generated PNGs, a fresh process, JSON numbers checked against
scikit-image / SciPy computed here on the same masks."""

import csv
import json
import os

import cv2
import numpy as np
import pytest
from scipy import ndimage, stats
from skimage import metrics as skmetrics

SIZE = 32


def _write(path, image):
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image)


def _face(rng):
    smooth = ndimage.gaussian_filter(rng.uniform(0, 255, (SIZE, SIZE, 3)), (2, 2, 0))
    return np.clip((smooth - smooth.mean()) * 4 + 128, 0, 255).astype(np.uint8)


def _ellipse(rng):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    center = tuple(int(v) for v in rng.integers(12, 20, 2))
    cv2.ellipse(mask, center, (10, 13), 0, 0, 360, 255, -1)
    return mask


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """DIR/NAME.input.png + NAME.mask.png shared; DIR/coarse and DIR/refined renders."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    truth = {"inputs": {}, "masks": {}, "coarse": {}, "refined": {}}
    for index in range(4):
        name = f"img{index}"
        face, mask = _face(rng), _ellipse(rng)
        _write(root / f"{name}.input.png", face)
        _write(root / f"{name}.mask.png", mask)
        truth["inputs"][name], truth["masks"][name] = face, mask > 0
    for method, noise in (("coarse", 30.0), ("refined", 8.0)):
        folder = root / method
        folder.mkdir()
        for name, face in truth["inputs"].items():
            render = np.clip(face + rng.normal(0, noise, face.shape), 0, 255).astype(np.uint8)
            mask = truth["masks"][name]
            if name == "img1":  # coverage from an RGBA alpha file: left half only
                alpha = np.zeros((SIZE, SIZE, 4), np.uint8)
                alpha[:, : SIZE // 2, 3] = 255
                alpha[:, SIZE // 2:, 3] = 100  # under half the range: not covered
                _write(folder / f"{name}.alpha.png", alpha)
                mask = mask & (np.arange(SIZE) < SIZE // 2)[None, :]
            _write(folder / f"{name}.render.png", render)
            truth[method][name] = (render, mask)
    refined = root / "refined"
    (refined / "broken.render.png").write_bytes(b"\x89PNG not really")
    _write(refined / "small.render.png", np.zeros((SIZE, SIZE - 4, 3), np.uint8))
    _write(root / "small.input.png", truth["inputs"]["img0"])
    _write(root / "small.mask.png", truth["masks"]["img0"].astype(np.uint8))
    return root, truth


def _expected(truth, method, name):
    image = truth["inputs"][name].astype(np.float64) / 255
    render, mask = truth[method][name]
    render = render.astype(np.float64) / 255
    l1 = np.abs(image - render).mean(axis=-1)[mask].mean()
    psnr = skmetrics.peak_signal_noise_ratio(image[mask], render[mask], data_range=1.0)
    _, full = skmetrics.structural_similarity(image, render, data_range=1.0, channel_axis=-1,
                                              gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, full=True)
    return l1, psnr, full.mean(axis=-1)[mask].mean()


def test_image_metrics_against_skimage(results, tmp_path, run_subcommand):
    root, truth = results
    out_json, out_md = tmp_path / "eval.json", tmp_path / "eval.md"
    result = run_subcommand("evaluate", "--results", str(root), "--json", str(out_json), "--markdown",
                            str(out_md), "--noprogress", "--recognizer=none")
    assert result.returncode == 0, result.stderr
    assert "2 method(s), 8 image(s) evaluated, 3 failed" in result.stdout
    report = json.loads(out_json.read_text())
    assert list(report) == ["coarse", "refined"]
    for method in ("coarse", "refined"):
        per_image = report[method]["per_image"]
        assert sorted(per_image) == ["img0", "img1", "img2", "img3"]
        expected = np.array([_expected(truth, method, name) for name in sorted(per_image)])
        got = np.array([[per_image[n][k] for k in ("l1", "psnr", "ssim")]
                        for n in sorted(per_image)])
        np.testing.assert_allclose(got, expected, rtol=1e-9)
        for column, key in enumerate(("l1", "psnr", "ssim")):
            assert report[method][key]["mean"] == pytest.approx(expected[:, column].mean())
            assert report[method][key]["std"] == pytest.approx(expected[:, column].std())
            assert report[method][key]["n"] == 4
        assert report[method]["n_images"] == 4
        assert "identity_cosine" not in report[method] and "emd" not in report[method]
        # img1 has an alpha file (left half covered): the share of the render off the face mask and the
        # figures over the whole coverage; the images without one have neither
        left = np.zeros((SIZE, SIZE), bool)
        left[:, : SIZE // 2] = True
        face = truth["masks"]["img1"] & left
        assert per_image["img1"]["outside_mask"] == pytest.approx(1.0 - face.sum() / left.sum(), abs=1e-12)
        image = truth["inputs"]["img1"].astype(np.float64) / 255
        render = truth[method]["img1"][0].astype(np.float64) / 255
        assert per_image["img1"]["psnr_render"] == pytest.approx(
            skmetrics.peak_signal_noise_ratio(image[left], render[left], data_range=1.0), rel=1e-9)
        assert per_image["img1"]["l1_render"] == pytest.approx(np.abs(image - render).mean(axis=-1)[left].mean())
        assert "outside_mask" not in per_image["img0"] and report[method]["outside_mask"]["n"] == 1
    assert report["refined"]["psnr"]["mean"] > report["coarse"]["psnr"]["mean"] + 5
    assert report["coarse"]["failed"] == [{"name": "small", "reason": "missing small.render.png"}]
    failed = {item["name"]: item["reason"] for item in report["refined"]["failed"]}
    assert set(failed) == {"broken", "small"}
    assert "missing broken.input.png" in failed["broken"]
    assert "size mismatch" in failed["small"] and "render 32x28" in failed["small"]
    markdown = out_md.read_text()
    assert markdown.startswith("| method | images | L1 ↓ | PSNR (dB) ↑ | SSIM ↑ | render off the face mask ↓ | "
                               "PSNR, whole render (dB) ↑ | failed |")
    psnr = report["refined"]["psnr"]
    assert "| refined | 4 | " in markdown and f"{psnr['mean']:.2f} ± {psnr['std']:.2f}" in markdown
    assert "Failed images:" in markdown and "- refined: small: size mismatch" in markdown


def test_default_recognizer_is_the_packaged_dlib_descriptor(results, tmp_path, run_subcommand):
    """Without --recognizer, identity cosines come from dlib's descriptor (its packaged weights)."""
    from face_gcn.evaluation import recognizers
    root, _ = results
    out_json = tmp_path / "eval.json"
    result = run_subcommand("evaluate", "--results", str(root), "--json", str(out_json), "--noprogress")
    assert result.returncode == 0, result.stderr
    report = json.loads(out_json.read_text())["refined"]
    recognizer = recognizers.FaceDescriptorRecognizer()
    for name, values in report["per_image"].items():
        pair = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
                for path in (root / f"{name}.input.png", root / "refined" / f"{name}.render.png")]
        a, b = recognizer.embed(np.stack(pair)).astype(np.float64)
        assert values["cosine"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=2e-4), name
    assert report["identity_cosine"]["n"] == 4


class _Net:
    """A tiny recognizer: 3x3 conv -> relu -> mean -> dense, as a SavedModel."""

    def __init__(self):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        rng = np.random.default_rng(3)
        self.module = tf.Module()
        self.module.kernel = tf.Variable(rng.normal(0, 0.5, (3, 3, 3, 8)).astype(np.float32))
        self.module.dense = tf.Variable(rng.normal(0, 0.5, (8, 6)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)])
        def serve(images):
            return {"embedding": self.forward(images)}

        self.module.serve = serve

    def forward(self, x):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        y = tf.nn.relu(tf.nn.conv2d(x, self.module.kernel, 1, "SAME"))
        return tf.reduce_mean(y, axis=[1, 2]) @ self.module.dense


def test_identity_cosine_and_emd(results, tmp_path, run_subcommand):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    root, truth = results
    net = _Net()
    model_dir = str(tmp_path / "recognizer")
    tf.saved_model.save(net.module, model_dir, signatures={"serving_default": net.module.serve})
    identities = {"img0": "anna", "img1": "anna", "img2": "bob", "img3": "carl"}
    with open(tmp_path / "ids.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "identity"])
        writer.writerows(identities.items())
    out_json = tmp_path / "eval.json"
    result = run_subcommand("evaluate", "--results", str(root), "--json", str(out_json),
                            "--recognizer", model_dir, "--identities", str(tmp_path / "ids.csv"),
                            "--recognizer_preprocessing", "unit", "--batch_size", "3",
                            "--noprogress")
    assert result.returncode == 0, result.stderr
    report = json.loads(out_json.read_text())["refined"]
    names = sorted(identities)

    def embed(images):
        return net.forward(np.stack(images).astype(np.float32) / 255).numpy().astype(np.float64)

    inputs = embed([truth["inputs"][n] for n in names])
    renders = embed([truth["refined"][n][0] for n in names])
    cosine = [float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
              for a, b in zip(inputs, renders)]
    got = [report["per_image"][n]["cosine"] for n in names]
    np.testing.assert_allclose(got, cosine, rtol=1e-4)
    assert report["identity_cosine"]["mean"] == pytest.approx(np.mean(cosine), rel=1e-4)
    same, different = [], []
    for i, render_name in enumerate(names):
        for j, input_name in enumerate(names):
            value = np.dot(renders[i], inputs[j]) / np.linalg.norm(renders[i]) \
                / np.linalg.norm(inputs[j])
            (same if identities[render_name] == identities[input_name] else different).append(
                value)
    assert report["emd_same_pairs"] == 6 and report["emd_different_pairs"] == 10
    assert report["emd"] == pytest.approx(stats.wasserstein_distance(same, different), rel=1e-4)
    assert report["emd"] > 0


def test_user_errors_are_one_line(tmp_path, results, run_subcommand):
    root, _ = results
    out = str(tmp_path / "x.json")
    result = run_subcommand("evaluate", "--results", str(tmp_path / "nowhere"), "--json", out)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"face-gcn evaluate: error: results folder not found: {tmp_path / 'nowhere'}")
    result = run_subcommand("evaluate", "--results", str(root), "--json", out, "--recognizer",
                            str(tmp_path / "missing.onnx"), "--noprogress")
    assert result.returncode == 1 and "ONNX file not found" in result.stderr
    result = run_subcommand("evaluate", "--results", str(root), "--json", out, "--recognizer",
                            str(tmp_path / "nothing"))
    assert result.returncode == 1 and "recognizer not found" in result.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("img0,anna,extra\n")
    result = run_subcommand("evaluate", "--results", str(root), "--json", out, "--recognizer",
                            str(tmp_path / "m.onnx"), "--identities", str(bad))
    assert result.returncode == 1 and "expected 'name,identity'" in result.stderr
    result = run_subcommand("evaluate", "--results", str(root))
    assert result.returncode != 0 and "--json and/or --markdown" in result.stderr
    result = run_subcommand("evaluate", "--results", str(root), "--json", out, "--identities", str(bad),
                            "--recognizer=none")
    assert result.returncode != 0 and "--identities needs a recognizer" in result.stderr
    assert not os.path.exists(out)
