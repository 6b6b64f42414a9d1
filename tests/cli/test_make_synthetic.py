"""`make-synthetic` as a user runs it: a fresh process, absl flags, files on disk."""

import json
import os

import numpy as np
import tensorflow as tf

from face_gcn.data import pipeline


def test_writes_train_and_heldout_splits(tmp_path, run_subcommand):
    out = tmp_path / "synthetic"
    result = run_subcommand("make_synthetic", "--out", str(out), "--num_images", "5", "--num_heldout", "2",
                            "--image_size", "64", "--num_shards", "3", "--seed", "4",
                            "--noprogress", cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert "train: 5 images in 3 shards" in result.stdout
    assert "heldout: 2 images in 2 shards" in result.stdout
    sources = {}
    for split, count, shards in (("train", 5, 3), ("heldout", 2, 2)):
        folder = out / split
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["num_images"] == count and manifest["num_shards"] == shards
        assert manifest["seed"] == 4 and manifest["image_size"] == 64
        assert manifest["model"].startswith("face_gcn demo")
        assert sorted(os.listdir(folder)) == sorted(
            manifest["shards"] + ["manifest.json", "ground_truth.npz"])
        with np.load(folder / "ground_truth.npz", allow_pickle=False) as truth:
            assert truth["coefficients"].shape == (count, 257)
            num_v = truth["albedo"].shape[1]
            assert truth["albedo"].shape == truth["detail"].shape == (count, num_v, 3)
            assert 0.0 <= truth["albedo"].min() and truth["albedo"].max() <= 1.0
            expected_sources = list(truth["sources"])
        (batch,) = list(pipeline.make_dataset(str(folder), 64, batch_size=count, training=False))
        assert batch["image"].shape == (count, 64, 64, 3)
        sources[split] = [s.decode() for s in batch["source"].numpy()]
        assert sources[split] == expected_sources
    assert sources["train"][0] == "synthetic:4:train:0"
    assert not set(sources["train"]) & set(sources["heldout"])


def test_same_seed_same_bytes(tmp_path, run_subcommand):
    for name in ("a", "b"):
        result = run_subcommand("make_synthetic", "--out", str(tmp_path / name), "--num_images", "2",
                                "--num_heldout", "0", "--image_size", "48", "--num_shards",
                                "1", "--noprogress", cache=tmp_path / "cache")
        assert result.returncode == 0, result.stderr
    assert not (tmp_path / "a" / "heldout").exists()
    shard = "train/synthetic-00000-of-00001.tfrecord"
    records = [[tf.train.Example.FromString(r.numpy())
                for r in tf.data.TFRecordDataset(str(tmp_path / name / shard))]
               for name in ("a", "b")]
    # Protobuf map fields serialise in no fixed order across processes: compare the parsed
    # examples (every feature, PNG bytes included), not the file bytes.
    assert len(records[0]) == 2 and records[0] == records[1]
    assert records[0][0] != records[0][1]
    truth = "train/ground_truth.npz"
    assert (tmp_path / "a" / truth).read_bytes() == (tmp_path / "b" / truth).read_bytes()


def test_bad_flags_fail_clearly(tmp_path, run_subcommand):
    result = run_subcommand("make_synthetic", "--num_images", "2", cache=tmp_path)
    assert result.returncode != 0 and "--out is required" in result.stderr
    result = run_subcommand("make_synthetic", "--out", str(tmp_path / "x"), "--image_size", "8",
                            cache=tmp_path)
    assert result.returncode != 0 and "--image_size" in result.stderr
    result = run_subcommand("make_synthetic", "--out", str(tmp_path / "x"), "--morphable_model",
                            str(tmp_path / "missing.npz"), cache=tmp_path)
    assert result.returncode == 1 and "cannot load the morphable model" in result.stderr
    assert not (tmp_path / "x").exists()
