"""Self-describing, atomically written checkpoints.

A checkpoint holds the config (as a plain dict), the method name, the step, every module and optimizer
state, schedulers, the AMP scaler, RNG states, loader positions and the best metric, so ``evaluate`` and
``predict`` rebuild everything without the YAML. Loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from weakseg.fileio import atomic_write

__all__ = [
    "CheckpointError",
    "atomic_torch_save",
    "get_rng_state",
    "load_checkpoint",
    "nonfinite_entries",
    "set_rng_state",
]

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not match what is asked of it."""


def nonfinite_entries(tree: Any, prefix: str = "") -> list[str]:
    """Dotted names of the floating-point tensors in a nested dict / list (a state dict, an optimizer state)
    that hold NaN or inf."""
    if torch.is_tensor(tree):
        return [prefix] if tree.is_floating_point() and not bool(torch.isfinite(tree).all()) else []
    items = (
        tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else ()
    )
    return [n for k, v in items for n in nonfinite_entries(v, f"{prefix}.{k}" if prefix else str(k))]


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temp file in the same folder, then rename: a failed write never harms ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a weakseg checkpoint safely (weights only); errors name the file and what is wrong."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise CheckpointError(f"{path} is a folder without best.pt or last.pt; pass a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notes are noise for a file we refuse anyway
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated file, not a torch file, unsafe pickle
        raise CheckpointError(
            f"{path} is corrupt or not a weakseg checkpoint: {_why_unreadable(e)}"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "weakseg" or "config" not in ckpt:
        raise CheckpointError(
            f"{path} is not a weakseg checkpoint (no 'format: weakseg' entry with a config)"
        )
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer weakseg (format {ckpt['format_version']})")
    ckpt["path"] = str(path)
    return ckpt


def _why_unreadable(e: Exception) -> str:
    """What went wrong, in one line, without torch's advice to load with ``weights_only=False`` (which would
    run arbitrary code from the file: weakseg never does)."""
    text = str(e)
    if isinstance(e, pickle.UnpicklingError) or "Weights only load failed" in text:
        return (
            "it is not a torch file of tensors and plain values (weights-only loading refuses it; weakseg never "
            "loads checkpoints any other way). Pass a best.pt or last.pt written by weakseg"
        )
    if "zip archive" in text or "central directory" in text:
        return (
            "the file is truncated or damaged (an interrupted copy?); use another copy or the run's last.pt"
        )
    return f"torch could not read it ({type(e).__name__}); pass a best.pt or last.pt written by weakseg"


def get_rng_state() -> dict:
    """Python, NumPy and torch RNG states in a form ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
