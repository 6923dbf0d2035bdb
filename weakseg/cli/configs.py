"""``weakseg config list`` / ``weakseg config show NAME``: the recipes of configs/ (the source tree's folder,
which ``weakseg demo`` also reads)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["CONFIGS", "add_config_command", "config_path"]

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def config_path(name: str) -> Path:
    """configs/NAME(.yaml); a clear error naming the recipes when there is none."""
    path = CONFIGS / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not CONFIGS.is_dir():
        raise FileNotFoundError(
            f"{CONFIGS} is missing: the recipes live in the configs/ folder of the weakseg source tree; install "
            "weakseg from a clone (pip install -e .)"
        )
    if not path.is_file():
        from weakseg.registry import suggest

        names = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
        raise FileNotFoundError(
            f'no config "{name}" in {CONFIGS}.{suggest(Path(name).stem, names)} Configs: {", ".join(names)}'
        )
    return path


def add_config_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="the shipped recipes: list them, or print one")
    p.add_argument("action", choices=("list", "show"), help="list the recipes, or show one")
    p.add_argument("name", nargs="?", help="show: the recipe, e.g. ct or ct_pretrained")
    p.set_defaults(handler=_config)


def _config(args) -> int:
    if args.action == "list":
        for path in sorted(CONFIGS.glob("*.yaml")):
            first = next((ln[1:].strip() for ln in path.read_text().splitlines() if ln.startswith("#")), "")
            print(f"{path.stem:22s} {first}")
        return 0
    if not args.name:
        raise ValueError("weakseg config show NAME: give the recipe's name (weakseg config list shows them)")
    print(config_path(args.name).read_text(), end="")
    return 0
