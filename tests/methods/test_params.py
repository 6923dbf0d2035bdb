"""Registry-generated: every method declares a params dataclass, and a wrong key, type or range in
``method.params`` fails at config load (before any run folder exists) with the key's full path."""

from __future__ import annotations

import dataclasses
import json

import pytest

from weakseg.config import ConfigError, load_config
from weakseg.methods import METHODS
from weakseg.methods.params import describe

METHODS_ = METHODS.names()


def _load(tiny_cfg_path, name: str, params: dict):
    two = "target" in METHODS.get(name).streams  # the domain-adaptation methods need a target domain
    overrides = [f"method.name={name}", f"method.params={json.dumps(params)}"]  # JSON is YAML
    return load_config(tiny_cfg_path, [*overrides, *(["target.phantom_modality=mr"] if two else [])])


def _checked_fields(name: str) -> list[tuple[str, object]]:
    """(field, a value its check must refuse) for every checked field of the method's params."""
    cls = METHODS.get(name).params_class
    return [
        (f.name, bad)
        for f in dataclasses.fields(cls)
        for bad in (f.metadata.get("check") or ()).__dict__.get("bad", ())
    ]


@pytest.mark.parametrize("name", METHODS_)
def test_every_method_declares_its_params(name):
    cls = METHODS.get(name)
    assert dataclasses.is_dataclass(getattr(cls, "params_class", None)), (
        f'method "{name}" has no params_class'
    )
    rows = describe(cls)
    assert all(doc for _, _, doc in rows), f'method "{name}": every parameter needs a one-line doc'


@pytest.mark.parametrize("name", METHODS_)
def test_unknown_key_fails_at_load_with_did_you_mean(name, tiny_cfg_path):
    first = dataclasses.fields(METHODS.get(name).params_class)[0].name
    with pytest.raises(
        ConfigError, match=rf'no parameter "{first}x" in method.params. Did you mean "{first}"'
    ):
        _load(tiny_cfg_path, name, {f"{first}x": 1})


@pytest.mark.parametrize("name", METHODS_)
def test_wrong_type_and_range_fail_at_load_naming_the_key(name, tiny_cfg_path):
    cases = _checked_fields(name)
    assert cases, f'method "{name}" checks none of its params'
    for key, bad in cases:
        with pytest.raises(ConfigError, match=rf"method\.params\.{key}\b"):
            _load(tiny_cfg_path, name, {key: bad})


@pytest.mark.parametrize("name", METHODS_)
def test_defaults_load(name, tiny_cfg_path):
    _load(tiny_cfg_path, name, {})
