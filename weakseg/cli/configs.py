"""``weakseg config list`` / ``weakseg config show NAME``: the recipes of configs/, which ``weakseg demo`` also
reads: the source tree's folder in a clone (``pip install -e .``), the copy a wheel installs under
``<prefix>/share/weakseg/configs`` otherwise (pyproject's ``data-files``)."""

from __future__ import annotations

import argparse
import site
import sys
import sysconfig
from pathlib import Path

__all__ = ["CONFIGS", "add_config_command", "config_path", "configs_dir"]

SOURCE_TREE = Path(__file__).resolve().parents[2] / "configs"


def configs_dir(tree: Path = SOURCE_TREE, prefixes: list[str] | None = None) -> Path:
    """The recipes' folder: ``tree`` when it exists, else the first ``<prefix>/share/weakseg/configs`` of the
    install prefixes (this environment's, the user's; ``prefixes`` replaces them); ``tree`` when none exists
    (``config_path`` then says how to get them)."""
    if tree.is_dir():
        return tree
    if prefixes is None:
        prefixes = [sysconfig.get_path("data"), sys.prefix, site.getuserbase()]
    for prefix in prefixes:
        shipped = Path(prefix) / "share" / "weakseg" / "configs"
        if shipped.is_dir():
            return shipped
    return tree


CONFIGS = configs_dir()


def config_path(name: str) -> Path:
    """configs/NAME(.yaml); a clear error naming the recipes when there is none."""
    path = CONFIGS / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not CONFIGS.is_dir():
        raise FileNotFoundError(
            f"{CONFIGS} is missing, and no <prefix>/share/weakseg/configs was installed beside weakseg: reinstall "
            "weakseg (pip install weakseg, or pip install -e . from a clone)"
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
