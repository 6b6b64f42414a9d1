"""face_gcn.data.prepare end to end on real photos and every kind of bad file."""

import dataclasses
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from face_gcn.data import prepare


def _read_shards(folder):
    """source basename -> tf.train.Example features, read with plain protobuf."""
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".tfrecord"):
            for record in tf.data.TFRecordDataset(os.path.join(folder, name)):
                features = tf.train.Example.FromString(record.numpy()).features.feature
                source = features["source"].bytes_list.value[0].decode()
                out[os.path.basename(source)] = features
    return out


def _decode(features, key):
    data = np.frombuffer(features[key].bytes_list.value[0], np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


@pytest.fixture(scope="module")
def config(standard_landmarks):
    return prepare.PrepareConfig(standard_landmarks=standard_landmarks, crop_size=128, landmarks68=True)


@pytest.fixture(scope="module")
def processor(config, detector):
    return prepare.FaceProcessor(config, detector=detector)


@pytest.fixture(scope="module")
def prepared(photo_dir, config, processor, tmp_path_factory):
    folder, expected = photo_dir
    output = tmp_path_factory.mktemp("prepared")
    files = prepare.list_inputs(str(folder))
    manifest = prepare.prepare(files, str(output), config, num_shards=3, workers=1,
                               progress=False, processor=processor, log=None)
    return output, manifest, expected


def test_every_file_is_counted_with_its_reason(prepared):
    output, manifest, expected = prepared
    outcomes = {os.path.basename(e["source"]): (e["status"], e["reason"])
                for e in manifest["files"]}
    assert outcomes == expected
    assert manifest["written"] == 6 and manifest["skipped"] == 4 and manifest["total"] == 10
    assert manifest["skipped_by_reason"] == {"no_face": 1, "too_large": 1, "unreadable": 2}
    assert [os.path.basename(e["source"]) for e in manifest["several_faces"]] == \
        ["f_two_faces.png"]
    assert manifest["several_faces"][0]["num_faces"] == 2
    assert manifest["conversions"] == {"16-bit": 1, "alpha_dropped": 1, "grayscale": 1,
                                       "several_faces": 1}
    with open(output / "manifest.json", encoding="utf-8") as handle:
        assert json.load(handle)["written"] == 6
    assert sorted(p.name for p in output.iterdir()) == sorted(
        [f"faces-0000{i}-of-00003.{ext}" for i in range(3) for ext in ("json", "tfrecord")]
        + ["manifest.json"])


def test_records_carry_dlibs_68_of_the_face(prepared):
    output, manifest, _ = prepared
    from face_gcn.data import landmarks68, masks
    for name, features in _read_shards(output).items():
        points = np.array(features["landmarks68/detected"].float_list.value).reshape(68, 2)
        five = np.array(features["landmarks"].float_list.value).reshape(5, 2)
        # crop pixels, by the same transform as the 5: the derived 5 lie near MTCNN's
        assert landmarks68.five_point_distance(points, five) < 0.25, name
        # the built-in segmenter drew the record's face region from the 68, not from the 5
        crop, mask = _decode(features, "image/encoded"), _decode(features, "mask/encoded")
        segmenter = masks.SkinColourSegmenter()
        np.testing.assert_array_equal(mask, segmenter.segment(crop, points.astype(np.float32)))
    assert manifest["landmarks68"] == {"detected": 6, "fallback_to_5": 0}
    assert {entry["landmarks"] for entry in manifest["files"] if entry["status"] == "written"} == {"68"}


def test_records_hold_the_aligned_crop_of_the_largest_face(prepared, photo_dir, detector,
                                                          standard_landmarks):
    output, _, _ = prepared
    records = _read_shards(output)
    assert set(records) == {"a_face.png", "b_face.jpg", "c_gray.png", "d_rgba.png",
                            "e_deep16.png", "f_two_faces.png"}
    face = records["a_face.png"]
    crop = _decode(face, "image/encoded")
    mask = _decode(face, "mask/encoded")
    assert crop.shape == (128, 128, 3) and mask.shape == (128, 128)
    landmarks = np.array(face["landmarks"].float_list.value).reshape(5, 2)
    transform = np.array(face["transform"].float_list.value).reshape(2, 3)
    # the landmarks are the detector's, mapped by the stored transform
    photo = cv2.cvtColor(cv2.imread(str(photo_dir[0] / "a_face.png")), cv2.COLOR_BGR2RGB)
    detected = detector.detect(photo).largest.landmarks
    np.testing.assert_allclose(landmarks, detected @ transform[:, :2].T + transform[:, 2],
                               atol=1e-3)
    assert transform[0, 1] == 0 and transform[1, 0] == 0  # Deng: scale + shift, no rotation
    # the eyes land near the standard eye positions: x closely; y within a few pixels, as the
    # fit explains part of the eye-nose-mouth spacing by head pitch (the nose tip's depth)
    unit = 102 * 128 / 224
    standard_eyes = np.stack([unit * standard_landmarks[:2, 0] + 64,
                              -unit * standard_landmarks[:2, 1] + 64], axis=1)
    assert np.abs(landmarks[:2, 0] - standard_eyes[:, 0]).max() < 3
    assert np.abs(landmarks[:2, 1] - standard_eyes[:, 1]).max() < 10
    # crop pixels are the photo's pixels at the inverse-mapped positions (bilinear, numpy)
    k = transform[0, 0]
    for u, v in [(40, 50), (64, 64), (90, 80)]:
        x, y = (u - transform[0, 2]) / k, (v - transform[1, 2]) / k
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        patch = photo[y0:y0 + 2, x0:x0 + 2].astype(np.float64)
        value = ((1 - fy) * ((1 - fx) * patch[0, 0] + fx * patch[0, 1])
                 + fy * ((1 - fx) * patch[1, 0] + fx * patch[1, 1]))
        np.testing.assert_allclose(crop[v, u], value, atol=1.5)
    # mask: the nose is face, the crop's corners are not
    nose = np.round(landmarks[2]).astype(int)
    assert mask[nose[1], nose[0]] == 1
    assert mask[0, 0] == mask[0, -1] == mask[-1, 0] == mask[-1, -1] == 0
    assert 0.15 < mask.mean() < 0.7
    # the same pixels arrive through 16-bit and RGBA files
    for name in ("d_rgba.png", "e_deep16.png"):
        np.testing.assert_array_equal(_decode(records[name], "image/encoded"), crop)
    gray = _decode(records["c_gray.png"], "image/encoded")
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1],
                                                                         gray[..., 2])
    two = records["f_two_faces.png"]
    assert two["num_faces"].int64_list.value[0] == 2
    np.testing.assert_allclose(np.array(two["landmarks"].float_list.value).reshape(5, 2),
                               landmarks, atol=3)


def test_rerun_skips_finished_shards_and_redoes_a_deleted_one(prepared, config, processor,
                                                             tmp_path):
    output, _, _ = prepared
    copy = tmp_path / "copy"
    shutil.copytree(output, copy)
    files = json.loads((copy / "manifest.json").read_text())["files"]
    sources = [entry["source"] for entry in files]
    stamps = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    again = prepare.prepare(sources, str(copy), config, num_shards=3, progress=False,
                            processor=processor, log=None)
    assert again["shards_reused"] == [0, 1, 2] and again["shards_written"] == []
    assert again["written"] == 6 and again["skipped_by_reason"]["unreadable"] == 2
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in copy.iterdir()
               if p.name != "manifest.json")
    before = (copy / "faces-00001-of-00003.tfrecord").read_bytes()
    os.unlink(copy / "faces-00001-of-00003.tfrecord")
    redone = prepare.prepare(sources, str(copy), config, num_shards=3, progress=False,
                             processor=processor, log=None)
    assert redone["shards_reused"] == [0, 2] and redone["shards_written"] == [1]
    assert (copy / "faces-00001-of-00003.tfrecord").read_bytes() == before
    for name in ("faces-00000-of-00003.tfrecord", "faces-00002-of-00003.tfrecord"):
        assert (copy / name).stat().st_mtime_ns == stamps[name]
    assert redone["files"] == again["files"]
    assert not [p for p in copy.iterdir() if p.name.startswith(".tmp")]


def test_worker_processes_give_the_same_records(photo_dir, config, prepared, tmp_path):
    folder, _ = photo_dir
    listing = tmp_path / "list.txt"
    listing.write_text(f"# photos\n{folder / 'a_face.png'}\n\n{folder / 'i_not_an_image.jpg'}\n"
                       f"{folder / 'g_noise.png'}\n")
    files = prepare.list_inputs(str(listing))
    assert [os.path.basename(f) for f in files] == ["a_face.png", "g_noise.png",
                                                    "i_not_an_image.jpg"]
    manifest = prepare.prepare(files, str(tmp_path / "out"), config, num_shards=2, workers=2,
                               progress=False, log=None)
    assert manifest["written"] == 1
    assert manifest["skipped_by_reason"] == {"no_face": 1, "unreadable": 1}
    ours = _read_shards(tmp_path / "out")["a_face.png"]
    reference = _read_shards(prepared[0])["a_face.png"]
    assert set(ours) == set(reference)
    for key in ours:
        assert ours[key] == reference[key], key


def test_list_inputs(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.JPG", "sub/a.png", "notes.txt", "sub/c.webp", "sub/d.gif"):
        (tmp_path / name).write_bytes(b"x")
    found = prepare.list_inputs(str(tmp_path))
    assert [os.path.relpath(f, tmp_path) for f in found] == ["b.JPG", "sub/a.png", "sub/c.webp", "sub/d.gif"]
    (tmp_path / "list.txt").write_text("sub/a.png\n# comment\n/abs/x.jpg\nsub/a.png\n")
    assert prepare.list_inputs(str(tmp_path / "list.txt")) == [
        "/abs/x.jpg", str(tmp_path / "sub" / "a.png")]
    with pytest.raises(ValueError, match="neither a folder nor a file list"):
        prepare.list_inputs(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        prepare.list_inputs(str(tmp_path / "empty"))


def test_shards_split_contiguously():
    files = [f"{i}.png" for i in range(10)]
    shards = prepare.split_into_shards(files, 3)
    assert [len(s) for s in shards] == [3, 4, 3] and sum(shards, []) == files
    assert len(prepare.split_into_shards(files[:2], 8)) == 2


def test_changed_settings_redo_the_shards(photo_dir, config, detector, tmp_path):
    folder, _ = photo_dir
    files = [str(folder / "a_face.png"), str(folder / "i_not_an_image.jpg")]
    first = prepare.prepare(files, str(tmp_path), config, num_shards=2, progress=False,
                            processor=prepare.FaceProcessor(config, detector=detector),
                            log=None)
    assert first["shards_written"] == [0, 1]
    bigger = prepare.PrepareConfig(standard_landmarks=config.standard_landmarks, crop_size=160)
    second = prepare.prepare(files, str(tmp_path), bigger, num_shards=2, progress=False,
                             processor=prepare.FaceProcessor(bigger, detector=detector),
                             log=None)
    assert second["shards_reused"] == [] and second["shards_written"] == [0, 1]
    crop = _decode(_read_shards(tmp_path)["a_face.png"], "image/encoded")
    assert crop.shape == (160, 160, 3)


def test_a_new_builtin_segmenter_version_redoes_the_shards(config, monkeypatch):
    """Shards masked by an earlier built-in segmenter are not reused; a SavedModel's are unaffected."""
    from face_gcn.data import masks
    parser = dataclasses.replace(config, segmenter="/models/parser")
    before = config.fingerprint(), parser.fingerprint()
    monkeypatch.setattr(masks, "BUILTIN_VERSION", masks.BUILTIN_VERSION + 1)
    assert config.fingerprint() != before[0]
    assert parser.fingerprint() == before[1]


class _Killed(Exception):
    """Stands for SIGKILL between a shard's .tfrecord and its .json."""


def test_a_run_killed_between_records_and_sidecar_is_redone(photo_dir, config, detector, tmp_path,
                                                              monkeypatch):
    """Records at crop 128, then a re-run at 160 killed after its record: a third run at 128 must not
    take the 160 records as its own (nor a run at 160 take the 128 ones)."""
    folder, _ = photo_dir
    files = [str(folder / "a_face.png")]
    processor = prepare.FaceProcessor(config, detector=detector)
    prepare.prepare(files, str(tmp_path), config, progress=False, processor=processor, log=None)
    bigger = prepare.PrepareConfig(standard_landmarks=config.standard_landmarks, crop_size=160)
    write_json = prepare.fileio.write_json

    def killed_at_the_sidecar(path, *args, **kwargs):
        if os.path.basename(path).startswith("faces-"):
            raise _Killed(path)
        return write_json(path, *args, **kwargs)

    monkeypatch.setattr(prepare.fileio, "write_json", killed_at_the_sidecar)
    with pytest.raises(_Killed):
        prepare.prepare(files, str(tmp_path), bigger, progress=False,
                        processor=prepare.FaceProcessor(bigger, detector=detector), log=None)
    monkeypatch.setattr(prepare.fileio, "write_json", write_json)
    assert _decode(_read_shards(tmp_path)["a_face.png"], "image/encoded").shape == (160, 160, 3)
    again = prepare.prepare(files, str(tmp_path), config, progress=False, processor=processor, log=None)
    assert again["shards_reused"] == [] and again["shards_written"] == [0]
    assert _decode(_read_shards(tmp_path)["a_face.png"], "image/encoded").shape == (128, 128, 3)


class _BrightRed(tf.Module):
    """A stand-in face parser: class scores [1, H, W, 2] = (128, R); class 1 wins where R > 128."""

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    def __call__(self, image):
        red = image[..., :1]
        return {"scores": tf.concat([tf.fill(tf.shape(red), 128.0), red], axis=-1)}


def test_a_user_saved_model_makes_the_masks(photo_dir, config, detector, tmp_path):
    module = _BrightRed()
    tf.saved_model.save(module, str(tmp_path / "parser"),
                        signatures={"serving_default": module.__call__})
    parsed = prepare.PrepareConfig(standard_landmarks=config.standard_landmarks, crop_size=96,
                                   segmenter=str(tmp_path / "parser"), segmenter_classes=(1,))
    folder, _ = photo_dir
    manifest = prepare.prepare([str(folder / "a_face.png")], str(tmp_path / "out"), parsed,
                               progress=False, log=None,
                               processor=prepare.FaceProcessor(parsed, detector=detector))
    assert manifest["written"] == 1
    record = _read_shards(tmp_path / "out")["a_face.png"]
    crop, mask = _decode(record, "image/encoded"), _decode(record, "mask/encoded")
    np.testing.assert_array_equal(mask, (crop[..., 0] > 128).astype(np.uint8))
    assert 0 < mask.mean() < 1


def test_a_worker_that_dies_does_not_stop_the_run(photo_dir, config, prepared, tmp_path):
    import multiprocessing
    import signal
    import threading
    import time
    folder, _ = photo_dir
    files = [str(folder / name) for name in ("a_face.png", "b_face.jpg", "i_not_an_image.jpg")]
    before = {child.pid for child in multiprocessing.active_children()}
    result = {}
    runner = threading.Thread(target=lambda: result.update(prepare.prepare(
        files, str(tmp_path), config, num_shards=1, workers=2, progress=False, log=None)))
    runner.start()
    deadline = time.monotonic() + 60
    victim = None
    while victim is None and time.monotonic() < deadline:
        new = [c for c in multiprocessing.active_children() if c.pid not in before]
        victim = new[0] if new else None
        time.sleep(0.05)
    assert victim is not None, "no worker process started"
    time.sleep(1.0)
    os.kill(victim.pid, signal.SIGKILL)  # a worker dies as if a decoder had crashed
    runner.join(timeout=240)
    assert not runner.is_alive(), "prepare hung after a worker died"
    # the files in flight were retried alone: nothing is lost, nothing is blamed wrongly
    assert result["written"] == 2 and result["skipped_by_reason"] == {"unreadable": 1}
    ours = _read_shards(tmp_path)["a_face.png"]
    reference = _read_shards(prepared[0])["a_face.png"]
    assert all(ours[key] == reference[key] for key in reference)
