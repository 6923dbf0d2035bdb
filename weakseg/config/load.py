"""YAML files and ``--set`` overrides -> a checked Config."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from weakseg.config.checks import validate
from weakseg.config.coerce import build
from weakseg.config.schema import TARGET_OWN_KEYS, Config, ConfigError

__all__ = [
    "PATH_KEYS",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "resolve_paths",
    "set_values",
]


def _inherit_target(values: dict) -> dict:
    """``target`` keys not given are copied from ``data`` (except TARGET_OWN_KEYS); returns a new dict."""
    target = values.get("target")
    if not isinstance(target, dict):
        return values
    data = values.get("data") or {}
    if not isinstance(data, dict):
        return values  # build reports the bad "data" section
    inherited = {k: v for k, v in data.items() if k not in TARGET_OWN_KEYS}
    return {**values, "target": {**inherited, **target}}


# the input locations of a data section: relative ones written in a config file resolve against that file's
# folder (a recipe keeps working from any working directory); outputs (train.run_dir) and --set values stay
# relative to the working directory
PATH_KEYS = {
    "data": ("root", "unlabeled_dirs", "extra_labeled_roots"),
    "target": ("root", "unlabeled_dirs", "extra_labeled_roots"),
    "model": ("init_from",),
}


def resolve_paths(values: dict, folder: Path) -> dict:
    """``values`` (a raw config dict) with the relative PATH_KEYS of its sections joined to ``folder`` and
    normalised (``configs/../data`` -> ``data``: a relative folder stays relative); in place."""
    for section, keys in PATH_KEYS.items():
        node = values.get(section)
        if not isinstance(node, dict):
            continue  # build reports a bad section
        for key in keys:
            value = node.get(key)
            if isinstance(value, str):
                node[key] = _joined(folder, value)
            elif isinstance(value, list):
                node[key] = [_joined(folder, v) if isinstance(v, str) else v for v in value]
    return values


def _joined(folder: Path, value: str) -> str:
    path = Path(os.path.expanduser(value))
    return value if path.is_absolute() or not value else os.path.normpath(folder / path)


def config_from_dict(values: dict | None, source: str = "config") -> Config:
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections, got {type(values).__name__}"
        )
    try:
        cfg = build(Config, _inherit_target(values), "config")
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    validate(cfg, source)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def set_values(values: dict, updates: dict[str, Any]) -> dict:
    """Set dotted keys (``{"data.root": path}``) in a raw config dict, in place, without parsing the values."""
    for path, value in updates.items():
        keys = path.strip().split(".")
        if not all(keys):
            raise ConfigError(f'override "{path}": empty key')
        node = values
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f'override "{path}": "{k}" is not a section')
        node[keys[-1]] = value
    return values


def apply_overrides(values: dict, overrides: list[str] | None) -> dict:
    """Apply ``section.key=value`` strings (value parsed as YAML) to a raw config dict, in place."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f'override "{item}" must look like section.key=value, e.g. train.max_steps=10')
        path, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f'override "{item}": value "{raw}" is not valid YAML ({e})') from None
        set_values(values, {path: value})
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (``None`` = all defaults: the built-in phantom demo) and apply overrides. Relative
    input paths written in the file (``data.root``, ``unlabeled_dirs``, ``extra_labeled_roots``, the same of
    ``target``, ``model.init_from``) are relative to the file's folder; those of ``overrides`` to the working
    directory."""
    values: dict = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; see configs/ for examples")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    if path is not None:
        resolve_paths(values, path.parent)
    values = apply_overrides(values, overrides)
    return config_from_dict(values, source)
