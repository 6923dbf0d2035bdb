"""A whole domain-adaptation route from one YAML file: named stages, each a training run, later stages using the
checkpoints of earlier ones.

    weakseg adapt run configs/route_ct2mr.yaml [--set joint:train.max_steps=200] [--overwrite]

    # configs/route_ct2mr.yaml
    root: runs/route_ct2mr            # stage NAME trains in ROOT/NAME
    stages:
      - name: joint                   # CycleGAN + U-Net
        config: ct2mr.yaml            # relative to this file
      - name: self_train              # then target self-training from the joint model
        config: ct2mr.yaml
        set: [method.name=self_train, "method.params={initial: '{joint}/last.pt'}"]

``{NAME}`` in a ``set`` value is the run folder of the earlier stage NAME. A finished stage with the same config
is reused, an unfinished one resumed (its ``last.pt``); a stage whose config changed is refused unless
``--overwrite`` (then it and every later stage train anew). Everything is checked (stage names, files,
placeholders, each config) before the first stage trains.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from weakseg.api import recorded_config
from weakseg.config import Config, config_from_dict, config_to_dict, load_config

__all__ = ["Stage", "load_route", "run_route"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass
class Stage:
    name: str
    config: Path
    overrides: list[str]


def _fail(path: Path, msg: str) -> None:
    raise ValueError(f"route {path}: {msg}")


def load_route(path: str | Path, extra: list[str] | None = None) -> tuple[Path, list[Stage]]:
    """(root folder, stages) of a route file; ``extra``: ``STAGE:key=value`` overrides from the command line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"route file {path} does not exist")
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict) or set(doc) - {"root", "stages"}:
        _fail(
            path, f"expected the keys root and stages, got {sorted(doc) if isinstance(doc, dict) else doc!r}"
        )
    raw = doc.get("stages")
    if not isinstance(raw, list) or not raw:
        _fail(path, "stages must be a non-empty list of {name, config, set}")
    stages: list[Stage] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or set(entry) - {"name", "config", "set"} or "config" not in entry:
            _fail(path, f"stages[{i}] must be a mapping with name, config and optionally set, got {entry!r}")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name in [s.name for s in stages]:
            _fail(path, f"stages[{i}].name must be a new identifier (letters, digits, _ or -), got {name!r}")
        config = (path.parent / str(entry["config"])).resolve()
        if not config.is_file():
            _fail(path, f"stages[{i}] ({name}): config {config} does not exist")
        sets = entry.get("set", [])
        if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
            _fail(path, f"stages[{i}] ({name}): set must be a list of key=value strings, got {sets!r}")
        for ref in re.findall(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}", " ".join(sets)):
            if ref not in [s.name for s in stages]:
                _fail(path, f'stages[{i}] ({name}) refers to "{{{ref}}}", which is not an earlier stage')
        stages.append(Stage(name, config, list(sets)))
    for item in extra or []:
        stage, sep, value = item.partition(":")
        match = next((s for s in stages if s.name == stage), None)
        if not sep or match is None:
            raise ValueError(
                f"--set {item!r}: write STAGE:key=value with STAGE one of {[s.name for s in stages]}"
            )
        match.overrides.append(value)
    root = Path(doc.get("root") or Path("runs") / path.stem)
    return root, stages


def _stage_config(stage: Stage, root: Path) -> Config:
    sets = [
        re.sub(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}", lambda m: str(root / m.group(1)), s) for s in stage.overrides
    ]
    return load_config(stage.config, sets)


def _recorded(saved: Path) -> dict:
    """A run's config.json read back through the schema (keys added since take their defaults)."""
    return json.loads(json.dumps(config_to_dict(config_from_dict(json.loads(saved.read_text())))))


def run_route(path: str | Path, extra: list[str] | None = None, overwrite: bool = False) -> dict[str, dict]:
    """Train every stage in order (reusing or resuming what is done); returns each stage's summary."""
    from weakseg.api import Trainer

    root, stages = load_route(path, extra)
    configs = {}
    for s in stages:  # every config loads (keys, types, values) before anything trains
        configs[s.name] = _stage_config(s, root)
    results: dict[str, dict] = {}
    stale = False  # once a stage trains anew, every later one does too
    for s in stages:
        cfg, run = configs[s.name], root / s.name
        if s is not stages[0] and any(f"{{{p.name}}}" in " ".join(s.overrides) for p in stages):
            cfg = _stage_config(s, root)  # reloaded: an `initial` checkpoint it names exists only now
        saved = run / "config.json"
        same = saved.is_file() and _recorded(saved) == recorded_config(cfg)
        summary = run / "summary.json"
        if (
            same
            and not stale
            and summary.is_file()
            and json.loads(summary.read_text())["step"] >= cfg.train.max_steps
        ):
            print(f"stage {s.name}: reusing the finished run {run}")
            results[s.name] = json.loads(summary.read_text())
            continue
        if saved.is_file() and not same and not overwrite:
            raise FileExistsError(
                f"stage {s.name}: {run} holds a run of another config; pass --overwrite to train it (and the "
                "later stages) anew, or change the route's root"
            )
        resume = same and not stale and (run / "last.pt").is_file()
        print(f"stage {s.name}: {'resuming' if resume else 'training'} in {run}")
        results[s.name] = Trainer(cfg, run_dir=run, resume=resume, overwrite=not resume).fit()
        stale = True
    return results
