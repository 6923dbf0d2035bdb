"""Numbers quoted in README.md and the guides come from the results JSON, never typed: each is a span

    <!-- q demo:seconds /60 .1f -->2.3<!-- /q -->

that names a JSON of benchmarks/results/ (``demo`` -> demo.json), a path in it, optional operations and a format
spec; ``python benchmarks/quote.py`` rewrites every span's text from the JSON (``finish`` does it after each
benchmark), ``--check`` only reports the spans whose text differs (tests/benchmarks/test_quote.py runs it).

Path: keys joined by dots; a number indexes a list; ``key=value`` keeps the list's dicts whose ``key`` is
``value`` (numbers compare as numbers; ``[key=value]`` when the value holds dots, e.g. ``rows[fraction=0.1]``),
and the keys after it apply to each kept one. Operations: ``mean``,
``std`` (of a list), ``min``, ``max``, ``/N``, ``*N``, ``-PATH`` (minus another value of the same JSON, e.g. a
gain). The format spec is Python's (``.3f``, ``+.1f``, ``.0f``).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SPAN = re.compile(r"<!-- q (?P<spec>[^>]*?) -->(?P<text>.*?)<!-- /q -->", re.S)


class QuoteError(ValueError):
    """A span names a JSON, path or operation that does not exist; the message names the file and span."""


def _parts(path: str) -> list[str]:
    """Dotted parts; ``[key=value]`` (a filter whose value may hold dots, e.g. ``rows[fraction=0.1]``) is a
    part of its own."""
    parts, cur, depth = [], "", 0
    for ch in path:
        if ch == "[" and depth == 0:
            if cur:
                parts.append(cur)
            cur, depth = "", 1
        elif ch == "]" and depth == 1:
            parts.append(cur)
            cur, depth = "", 0
        elif ch == "." and depth == 0:
            if cur:
                parts.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise QuoteError(f"unclosed [ in {path!r}")
    return [*parts, cur] if cur else parts


def _select(node, path: str, where: str):
    for part in _parts(path):
        if isinstance(node, list) and "=" in part:
            key, _, want = part.partition("=")
            node = [x for x in node if isinstance(x, dict) and _same(x.get(key), want)]
            if not node:
                raise QuoteError(f"{where}: no entry with {part}")
        elif isinstance(node, list) and part.lstrip("-").isdigit():
            if not -len(node) <= int(part) < len(node):
                raise QuoteError(f"{where}: index {part} of a list of {len(node)}")
            node = node[int(part)]
        elif isinstance(node, list):  # after a filter: the key of each kept entry
            node = [_select(x, part, where) for x in node]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            keys = sorted(node) if isinstance(node, dict) else type(node).__name__
            raise QuoteError(f"{where}: no {part!r} (there: {keys})")
    return node


def select(data, path: str, where: str = "path"):
    """The value at ``path`` (the span syntax: dotted keys, list indices, ``key=value`` filters) of ``data``; a
    filter that kept one entry gives that entry's value, not a list of one."""
    value = _select(data, path, where)
    return value[0] if isinstance(value, list) and len(value) == 1 and "=" in path else value


def _same(value, want: str) -> bool:
    try:
        return float(value) == float(want)
    except (TypeError, ValueError):
        return str(value) == want


def value_of(spec: str, where: str = "span", results: Path = RESULTS) -> str:
    """The text a span ``spec`` (``NAME:PATH [OPS...] FORMAT``) stands for."""
    parts = spec.split()
    if len(parts) < 2 or ":" not in parts[0]:
        raise QuoteError(f"{where}: expected <!-- q NAME:PATH [OPS] FORMAT -->, got {spec!r}")
    name, _, path = parts[0].partition(":")
    file = results / f"{name}.json"
    if not file.is_file():
        raise QuoteError(f"{where}: {file} does not exist (run its benchmark)")
    data = json.loads(file.read_text())
    value = select(data, path, f"{where} ({file.name})")
    for op in parts[1:-1]:
        if op in ("mean", "std", "min", "max"):
            values = [float(v) for v in value] if isinstance(value, list) else [float(value)]
            fn = {"mean": statistics.fmean, "std": statistics.pstdev, "min": min, "max": max}[op]
            value = fn(values)
        elif op[0] in "/*" and _number(op[1:]):
            value = float(value) / float(op[1:]) if op[0] == "/" else float(value) * float(op[1:])
        elif op[0] == "-":
            other = _select(data, op[1:], f"{where} ({file.name})")
            value = float(value) - (statistics.fmean(other) if isinstance(other, list) else float(other))
        else:
            raise QuoteError(f"{where}: unknown operation {op!r}; use mean, std, min, max, /N, *N or -PATH")
    if isinstance(value, list):
        raise QuoteError(f"{where}: {path} is a list of {len(value)}; add mean, std, min or max")
    try:
        return format(float(value) if isinstance(value, (int, float)) else value, parts[-1])
    except ValueError as e:
        raise QuoteError(f"{where}: format {parts[-1]!r} does not apply to {value!r} ({e})") from None


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def documents(repo: Path = REPO) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def requote(paths: list[Path] | None = None, check: bool = False, results: Path = RESULTS) -> list[str]:
    """Rewrite (``check``: only compare) every span of ``paths``; returns ``"file: spec: 'old' -> 'new'"`` for
    each span whose text changed (or would)."""
    changes = []
    for path in paths if paths is not None else documents():
        text = path.read_text()

        def sub(m: re.Match, path=path) -> str:
            new = value_of(m["spec"], f"{path.name}: <!-- q {m['spec']} -->", results)
            if new != m["text"]:
                changes.append(f"{path.name}: {m['spec']}: {m['text']!r} -> {new!r}")
            return f"<!-- q {m['spec']} -->{new}<!-- /q -->"

        out = SPAN.sub(sub, text)
        if out != text and not check:
            from weakseg.fileio import atomic_write_text

            atomic_write_text(path, out)
    return changes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--check", action="store_true", help="report the spans that differ from the JSON, change nothing"
    )
    args = ap.parse_args()
    try:
        changes = requote(check=args.check)
    except QuoteError as e:
        raise SystemExit(str(e)) from None
    print("\n".join(changes) or "every quoted number matches its JSON")
    sys.exit(1 if args.check and changes else 0)


if __name__ == "__main__":
    main()
