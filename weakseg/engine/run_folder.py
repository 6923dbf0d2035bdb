"""A run folder: what may be written there, and the earlier run that ``--overwrite`` replaces.

Nothing is touched before ``start`` (the trainer calls it once everything is validated). ``--overwrite`` moves
the earlier run aside (``.NAME.replaced-<ns>``) rather than deleting it; it is removed when the new run saves
its first last.pt (``drop_replaced``) and put back when the new run fails before that (``put_back_replaced``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from weakseg.engine.checkpoint import CheckpointError, load_checkpoint
from weakseg.fileio import atomic_write_text

__all__ = ["RunFolder"]


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.replaced: Path | None = None  # the run --overwrite replaces, kept until the new one has last.pt

    def check(self, resume: bool, overwrite: bool) -> dict | None:
        """The checkpoint to resume from, or None for a new run; refuses to clobber anything unasked."""
        last = self.path / "last.pt"
        started = (self.path / "config.json").is_file()  # a run began here but saved no checkpoint
        if resume:
            if not last.is_file():
                if started:
                    raise CheckpointError(
                        f"--resume {self.path}: the run there stopped before its first checkpoint (no last.pt), "
                        "so there is nothing to resume; start it over with --overwrite (safe: nothing trained was "
                        "saved)"
                    )
                raise CheckpointError(f"--resume {self.path}: no last.pt there to resume from")
            return load_checkpoint(last)
        if self.path.exists() and any(self.path.iterdir()):
            if not overwrite and started and not last.is_file():
                raise FileExistsError(
                    f"run folder {self.path} holds a run that stopped before its first checkpoint (no last.pt): "
                    "--overwrite starts it over (safe: nothing trained was saved), or --set train.name=<new name>"
                )
            if not overwrite:
                raise FileExistsError(
                    f"run folder {self.path} already holds files; use --resume {self.path} to continue a run, "
                    "--set train.name=<new name> for a new run, or --overwrite to replace it"
                )
            if not any((self.path / n).exists() for n in ("config.json", "last.pt", "metrics.jsonl")):
                raise FileExistsError(
                    f"--overwrite refuses to delete {self.path}: it is not a weakseg run folder (no config.json, "
                    "last.pt or metrics.jsonl); choose another train.run_dir"
                )
        return None

    def start(self, overwrite: bool, config: dict) -> None:
        """Create the folder with the run's config.json (an earlier run there moved aside under --overwrite)."""
        if overwrite and self.path.exists():
            self.replaced = self.path.with_name(f".{self.path.name}.replaced-{time.time_ns()}")
            os.replace(self.path, self.replaced)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / "config.json", json.dumps(config, indent=2))

    def drop_replaced(self) -> None:
        if self.replaced is not None:
            shutil.rmtree(self.replaced, ignore_errors=True)
            self.replaced = None

    def put_back_replaced(self, before: Callable[[], None] = lambda: None) -> bool:
        """The new run failed before its first checkpoint: the run that --overwrite moved aside comes back
        (``before`` runs first, e.g. closing the logger's files). Returns whether one was put back."""
        if self.replaced is None or not self.replaced.is_dir():
            return False
        before()
        shutil.rmtree(self.path, ignore_errors=True)
        os.replace(self.replaced, self.path)
        self.replaced = None
        return True
