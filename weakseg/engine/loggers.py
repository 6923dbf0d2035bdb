"""Run loggers: console lines, ``metrics.jsonl`` + ``metrics.csv`` in the run folder, and wandb (lazy)."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from weakseg.config import WandbConfig
from weakseg.fileio import atomic_write_csv, atomic_write_text

__all__ = ["NullLogger", "RunLogger"]


class RunLogger:
    """Collects metric records ``{"step": s, "split": "train"|"val", ...}`` and writes them out."""

    def __init__(
        self, run_dir: Path, wandb_cfg: WandbConfig, config_dict: dict, resume: bool = False
    ) -> None:
        self.run_dir = run_dir
        self.jsonl = run_dir / "metrics.jsonl"
        self.records: list[dict] = []
        if resume and self.jsonl.is_file():
            self.records = []
            for line in self.jsonl.read_text().splitlines():
                try:
                    self.records.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a crash; truncate() rewrites the file
                    continue
        self._wandb = None
        if wandb_cfg.enabled and wandb_cfg.mode != "disabled":
            import wandb  # optional dependency: imported only when enabled

            self._wandb = wandb.init(
                project=wandb_cfg.project,
                mode=wandb_cfg.mode,
                dir=str(run_dir),
                config=config_dict,
                name=run_dir.name,
                resume="allow" if resume else None,
            )

    def truncate(self, step: int) -> None:
        """On resume, forget records written after the checkpoint's step, so curves stay one trajectory."""
        self.records = [r for r in self.records if r["step"] <= step]
        atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in self.records))
        self._write_csv()

    def log(self, record: dict, echo: bool = False) -> None:
        self.records.append(record)
        with self.jsonl.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if record.get("split") != "train":
            self._write_csv()
        if echo:
            parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()]
            tqdm.write(" ".join(parts))
        if self._wandb is not None:
            split = record.get("split", "train")
            self._wandb.log(
                {f"{split}/{k}": v for k, v in record.items() if k not in ("step", "split")},
                step=record["step"],
            )

    def _write_csv(self) -> None:
        columns: list[str] = []
        for r in self.records:
            columns += [k for k in r if k not in columns]
        atomic_write_csv(self.run_dir / "metrics.csv", self.records, columns)

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


class NullLogger:
    """What ranks other than 0 log to under DDP: nothing."""

    records: list[dict] = []

    def log(self, record: dict, echo: bool = False) -> None:
        pass

    def truncate(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass
