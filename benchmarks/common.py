"""Shared helpers of the benchmark scripts: data-root lookup, JSON output and docs/results.md sections."""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS_MD = REPO / "docs" / "results.md"

__all__ = ["REPO", "default_data_root", "machine", "mean_std", "update_results_md", "write_json"]


def default_data_root() -> Path:
    return REPO.parent / "shared" / "data"


def machine() -> str:
    dev = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU, {torch.get_num_threads()} threads"
    )
    return f"{platform.node() or 'host'}: {dev}; torch {torch.__version__}; python {sys.version.split()[0]}"


def mean_std(values: list[float]) -> str:
    import numpy as np

    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def write_json(path: Path, payload: dict) -> None:
    from weakseg.fileio import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"written": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **payload}
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def update_results_md(section: str, body: str) -> None:
    """Replace (or append) the block between ``<!-- section:start -->`` and ``<!-- section:end -->``."""
    from weakseg.fileio import atomic_write_text

    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = RESULTS_MD.read_text() if RESULTS_MD.is_file() else "# Measured results\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    RESULTS_MD.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS_MD, text)
