"""The bad-input catalogue of docs/reliability.md, generated from the tests that check bad input.

Tests use ``bad_input(what, exception, match)`` in place of ``pytest.raises``: it asserts the same, and when
``WEAKSEG_CATALOGUE`` names a file it appends (input, error type, message) there. Regenerate the table with

    python tests/catalogue.py        # runs those tests, rewrites the table in docs/reliability.md
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"
START, END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


@contextlib.contextmanager
def bad_input(what: str, exception: type[BaseException], match: str) -> Iterator[pytest.ExceptionInfo]:
    """``pytest.raises(exception, match=match)`` that also records the case for the catalogue."""
    with pytest.raises(exception, match=match) as info:
        yield info
    path = os.environ.get("WEAKSEG_CATALOGUE")
    if path:
        record(what, type(info.value).__name__, str(info.value))


def record(what: str, error: str, message: str) -> None:
    """Record a case checked some other way (e.g. a CLI exit code and its stderr line)."""
    path = os.environ.get("WEAKSEG_CATALOGUE")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"input": what, "error": error, "message": message.strip()}) + "\n")


def _cell(text: str) -> str:
    text = re.sub(r"(/[^\s'\"]*)?/pytest-\d+/[^/\s]+/", ".../", text)  # the test run's temp folders
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.jsonl"
        env = {**os.environ, "WEAKSEG_CATALOGUE": str(out), "OMP_NUM_THREADS": "1"}
        files = ["tests/test_config.py", "tests/test_cli.py", "tests/engine/test_trainer.py",
                 "tests/data/test_dataset.py", "tests/methods/test_consistency.py", "tests/methods/test_semi.py"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "pytest", "-q", *files], cwd=REPO, env=env, check=True)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    seen, lines = set(), ["| bad input | error | message |", "|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["input"]):
        if r["input"] in seen:
            continue
        seen.add(r["input"])
        lines.append(f"| {_cell(r['input'])} | {r['error']} | {_cell(r['message'])} |")
    text = DOC.read_text()
    block = f"{START}\n" + "\n".join(lines) + f"\n{END}"
    from weakseg.fileio import atomic_write_text

    atomic_write_text(
        DOC, re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    )
    print(f"{len(seen)} bad inputs written to {DOC}")


if __name__ == "__main__":
    main()
