"""YAML experiment configs validated against a schema of defaults, with ``key.sub=value`` overrides.

A schema is a nested dict of default values; a config may only use keys the schema has, and each value must
have the default's type (int accepted where a float is expected; a default of None accepts anything).
Precedence: schema defaults < base YAML files < YAML file < overrides (applied in order).
A YAML file may name another with a top-level ``base: other.yaml`` (relative to its own folder),
which is applied first; ablation configs are their base plus the keys they change.
After merging, ``ranges`` ({"section.key": (low, high)}, inclusive, None = unbounded) and
``choices`` ({"section.key": allowed values}) are checked, so a bad value fails at load time.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any, Iterable, Mapping

import yaml


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def _check_value(path: str, value: Any, default: Any) -> Any:
    if default is None:
        return value
    if value is None:
        kind = "true/false" if isinstance(default, bool) else "a number" if isinstance(default, (int, float)) \
            else "a list" if isinstance(default, (list, tuple)) else "a string"
        raise ConfigError(f"{path}: expected {kind}, got null")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return list(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    return value


def _merge(base: dict, update: Mapping, schema: Mapping, prefix: str) -> None:
    if not isinstance(update, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {update!r}")
    for key, value in update.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in schema:
            raise ConfigError(f"unknown config key {path!r} (known: {', '.join(sorted(map(str, schema)))})")
        if isinstance(schema[key], Mapping):
            _merge(base[key], value, schema[key], path)
        else:
            base[key] = _check_value(path, value, schema[key])


def parse_override(text: str) -> dict:
    """``'a.b=value'`` -> ``{'a': {'b': value}}`` with the value parsed as YAML (``1e-3``, ``true``, ``[1, 2]``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in "eE.") and not value.isalpha() else value
            except ValueError:
                pass
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({error})") from None
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def read_yaml(yaml_path: str, _seen: tuple = ()) -> list[tuple[str, dict]]:
    """[(path, mapping)] of a YAML config and its ``base`` chain, base first (``base`` keys removed)."""
    real = os.path.realpath(yaml_path)
    if real in _seen:
        raise ConfigError(f"{yaml_path}: 'base' chain loops back to itself")
    try:
        with open(yaml_path, encoding="utf-8") as stream:
            loaded = yaml.safe_load(stream)
    except OSError as error:
        raise ConfigError(f"cannot read config {yaml_path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{yaml_path}: not valid YAML ({error})") from None
    if loaded is None:
        return []
    if not isinstance(loaded, dict):
        raise ConfigError(f"{yaml_path}: expected a mapping at the top level")
    loaded = dict(loaded)
    base = loaded.pop("base", None)
    chain = []
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{yaml_path}: base must be a file name, got {base!r}")
        chain = read_yaml(os.path.join(os.path.dirname(yaml_path), base), _seen + (real,))
    return chain + [(yaml_path, loaded)]


def _lookup(config: Mapping, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = value[part]
    return value


def check_limits(config: Mapping, ranges: Mapping | None = None, choices: Mapping | None = None) -> None:
    """Raises ConfigError for a value outside its range or choices (module docstring)."""
    for path, (low, high) in (ranges or {}).items():
        value = _lookup(config, path)
        if (low is not None and value < low) or (high is not None and value > high):
            bound = f"in [{low}, {high}]" if low is not None and high is not None else \
                f">= {low}" if low is not None else f"<= {high}"
            raise ConfigError(f"{path}: must be {bound}, got {value!r}")
    for path, allowed in (choices or {}).items():
        value = _lookup(config, path)
        if value not in allowed:
            raise ConfigError(f"{path}: must be one of {', '.join(map(str, allowed))}; got {value!r}")


def build_config(schema: Mapping, yaml_path: str | None = None, overrides: Iterable[str] = (),
                 ranges: Mapping | None = None, choices: Mapping | None = None) -> dict:
    """Defaults <- YAML file (after its bases) <- overrides; returns a new nested dict, its
    values checked against ``ranges`` and ``choices``.

    Raises ConfigError naming the bad key (and the file it came from).
    """
    config = copy.deepcopy(dict(schema))
    for path, loaded in (read_yaml(yaml_path) if yaml_path else []):
        try:
            _merge(config, loaded, schema, "")
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
    for text in overrides:
        _merge(config, parse_override(text), schema, "")
    check_limits(config, ranges, choices)
    return config
