"""Config parsing, precedence and errors."""

import pytest

from face_gcn.train.config import ConfigError, build_config, parse_override

SCHEMA = {"train": {"steps": 10, "lr": 1e-4, "resume": True}, "data": {"path": "", "size": [224, 224]},
          "name": "x", "extra": None}


def test_defaults_yaml_and_override_precedence(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 5\n  lr: 1\ndata:\n  path: /a\n")
    config = build_config(SCHEMA, str(path), ["train.steps=7", "data.size=[64, 64]", "train.steps=8"])
    assert config["train"] == {"steps": 8, "lr": 1.0, "resume": True}
    assert config["data"] == {"path": "/a", "size": [64, 64]}
    assert config["name"] == "x"
    assert SCHEMA["train"]["steps"] == 10  # schema untouched
    assert build_config(SCHEMA)["train"]["steps"] == 10


def test_unknown_keys_and_bad_types_are_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  stepz: 5\n")
    with pytest.raises(ConfigError, match="train.stepz"):
        build_config(SCHEMA, str(path))
    with pytest.raises(ConfigError, match="unknown config key 'nope'"):
        build_config(SCHEMA, None, ["nope=1"])
    with pytest.raises(ConfigError, match="train.steps: expected an integer"):
        build_config(SCHEMA, None, ["train.steps=1.5"])
    with pytest.raises(ConfigError, match="train.resume"):
        build_config(SCHEMA, None, ["train.resume=3"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("train.steps")
    with pytest.raises(ConfigError, match="cannot read"):
        build_config(SCHEMA, str(tmp_path / "missing.yaml"))
    assert parse_override("a.b=1e-3") == {"a": {"b": 1e-3}}


def test_base_chain_applies_bases_first_and_rejects_loops(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text("train:\n  steps: 5\n  lr: 2\nname: root\n")
    (tmp_path / "sub" / "mid.yaml").write_text("base: ../root.yaml\ntrain:\n  steps: 6\n")
    (tmp_path / "sub" / "leaf.yaml").write_text("base: mid.yaml\nname: leaf\n")
    config = build_config(SCHEMA, str(tmp_path / "sub" / "leaf.yaml"), ["train.lr=3"])
    assert config["train"] == {"steps": 6, "lr": 3.0, "resume": True} and config["name"] == "leaf"
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        build_config(SCHEMA, str(tmp_path / "a.yaml"))
    (tmp_path / "bad.yaml").write_text("base: root.yaml\ntrain:\n  nope: 1\n")
    with pytest.raises(ConfigError, match="bad.yaml.*train.nope"):
        build_config(SCHEMA, str(tmp_path / "bad.yaml"))


def test_ranges_and_choices_are_checked_after_merging(tmp_path):
    ranges, choices = {"train.steps": (1, None), "train.lr": (0.0, 1.0)}, {"name": ("x", "y")}
    assert build_config(SCHEMA, None, ["train.steps=1", "train.lr=1.0", "name=y"], ranges, choices)["name"] == "y"
    for override, message in (("train.steps=0", "train.steps: must be >= 1, got 0"),
                              ("train.lr=1.5", "train.lr: must be in [0.0, 1.0], got 1.5"),
                              ("name=z", "name: must be one of x, y; got 'z'"),
                              ("train.steps=null", "train.steps: expected a number, got null"),
                              ("train.lr=.nan", "train.lr: expected a finite number, got nan"),
                              ("train.lr=-.inf", "train.lr: expected a finite number, got -inf"),
                              ("data.path=null", "data.path: expected a string, got null")):
        with pytest.raises(ConfigError) as raised:
            build_config(SCHEMA, None, [override], ranges, choices)
        assert str(raised.value) == message
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: -5\n")
    with pytest.raises(ConfigError, match="train.steps: must be >= 1, got -5"):
        build_config(SCHEMA, str(path), (), ranges)


def _leaves(mapping, prefix=""):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("stage", ["texture", "coarse"])
def test_every_numeric_training_key_has_a_range(stage):
    import importlib
    module = importlib.import_module(f"face_gcn.train.{stage}")
    leaves = dict(_leaves(module.SCHEMA))
    numeric = {path for path, value in leaves.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    assert numeric == set(module.RANGES)
    assert set(module.CHOICES) <= {path for path, value in leaves.items() if isinstance(value, str)}
    defaults = module.build_config()  # the defaults themselves are in range
    for path, allowed in module.CHOICES.items():
        section, name = path.split(".")
        assert defaults[section][name] in allowed, path


@pytest.mark.parametrize("stage,override,message", [
    ("texture", "train.steps=-5", "train.steps: must be >= 1, got -5"),
    ("texture", "train.checkpoint_every=0", "train.checkpoint_every: must be >= 1, got 0"),
    ("texture", "train.summary_every=0", "train.summary_every: must be >= 1, got 0"),
    ("texture", "loss.objective=mine", "loss.objective: must be one of paper, authors; got 'mine'"),
    ("texture", "data.batch_size=0", "data.batch_size: must be in [1, 4096], got 0"),
    ("coarse", "train.steps=-5", "train.steps: must be >= 1, got -5"),
    ("coarse", "train.decay_steps=0", "train.decay_steps: must be >= 1, got 0"),
    ("coarse", "nets.backbone=vgg", "nets.backbone: must be one of resnet50, compact; got 'vgg'"),
])
def test_training_configs_refuse_out_of_range_values(stage, override, message):
    import importlib
    with pytest.raises(ConfigError) as raised:
        importlib.import_module(f"face_gcn.train.{stage}").build_config(None, [override])
    assert str(raised.value) == message
