"""The layers of the package: every import (module level and inside functions) points down, and no modules
import each other in a circle. Order: keys/registry/fileio < config < nets, metrics < data, losses < augment <
methods < engine < api < plug-ins (interactive, gans, adapt) < cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

LAYERS = {
    "keys": 0, "registry": 0, "fileio": 0, "config": 1, "nets": 2, "metrics": 2, "data": 3, "losses": 3,
    "augment": 4, "methods": 5, "engine": 6, "api": 7, "interactive": 8, "cli": 9, "__main__": 9,
}  # fmt: skip
PLUGINS = ("gans", "adapt")


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(f): f for pkg in ("weakseg", *PLUGINS) for f in sorted((REPO / pkg).rglob("*.py"))}


def layer(module: str) -> int | None:
    """The layer of a module of ours; None for the package root ``weakseg`` (its lazy public names)."""
    parts = module.split(".")
    if parts[0] in PLUGINS:
        return LAYERS["interactive"]
    return LAYERS[parts[1]] if len(parts) > 1 else None


def imports(module: str) -> list[tuple[str, int]]:
    """(imported module of ours, line) for every import statement in ``module``, functions included; ``from
    pkg import sub`` counts as importing ``pkg.sub`` when that is a module."""
    path = MODULES[module]
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.append((name, node.lineno))
    return out


def test_every_module_is_in_a_layer():
    assert all(layer(m) is not None for m in MODULES if m != "weakseg"), (
        "a new top-level module needs a layer"
    )


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "weakseg"))
def test_imports_point_down(module):
    up = [
        f"{MODULES[module].relative_to(REPO)}:{line} imports {target} (layer {layer(target)} > {layer(module)})"
        for target, line in imports(module)
        if target != "weakseg" and layer(target) > layer(module)
    ]
    assert not up, "\n".join(up)


@pytest.mark.parametrize("plugin", ["weakseg.interactive", *PLUGINS])
def test_plugins_reach_the_engine_only_through_the_public_api(plugin):
    inner = [
        f"{m} imports {t}"
        for m in MODULES
        if m.startswith(plugin)
        for t, _ in imports(m)
        if t.startswith("weakseg.engine")
    ]
    assert not inner, "use weakseg.api instead: " + "; ".join(inner)


def test_the_core_never_imports_the_plugins():
    core = [m for m in MODULES if m.startswith("weakseg")]
    named = [f"{m} imports {t}" for m in core for t, _ in imports(m) if t.split(".")[0] in PLUGINS]
    assert not named, "; ".join(named)


def test_no_import_circle():
    graph = {m: {t for t, _ in imports(m) if t != "weakseg"} for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    assert not circles, f"modules that import each other: {circles}"


def test_the_walk_sees_imports_inside_functions(tmp_path):
    # the checker itself: an import inside a function of a real module is found
    found = dict(imports("weakseg.cli.commands"))
    assert "weakseg.api" in found and "weakseg.engine.trainer" in found
