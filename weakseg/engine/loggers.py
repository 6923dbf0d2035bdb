"""Run loggers: console lines, ``metrics.jsonl`` + ``metrics.csv`` in the run folder, and wandb and TensorBoard
(both imported only when enabled)."""

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
        self,
        run_dir: Path,
        wandb_cfg: WandbConfig,
        config_dict: dict,
        resume: bool = False,
        tensorboard: bool = False,
    ) -> None:
        self.run_dir = run_dir
        self._tb_enabled, self._tb, self._tb_purge = tensorboard, None, None
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
        self._tb_purge = step + 1  # TensorBoard drops its events after the checkpoint's step too
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
        split = record.get("split", "train")
        values = {f"{split}/{k}": v for k, v in record.items() if k not in ("step", "split")}
        if self._wandb is not None:
            self._wandb.log(values, step=record["step"])
        if self._tb_enabled:
            for tag, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._writer().add_scalar(tag, v, record["step"])

    def log_images(self, paths: list[Path], step: int) -> None:
        """Pictures the run saved at ``step`` (overlays, translation grids) to wandb / TensorBoard, tagged by
        their file name without the step."""
        if self._wandb is None and not self._tb_enabled:
            return
        import numpy as np
        from PIL import Image

        for path in paths:
            tag = "pictures/" + path.stem.split("_step")[0]
            if self._wandb is not None:
                import wandb

                self._wandb.log({tag: wandb.Image(str(path))}, step=step)
            if self._tb_enabled:
                image = np.asarray(Image.open(path).convert("RGB"))
                self._writer().add_image(tag, image, step, dataformats="HWC")

    def _writer(self):
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=self._tb_purge)
        return self._tb

    def _write_csv(self) -> None:
        columns: list[str] = []
        for r in self.records:
            columns += [k for k in r if k not in columns]
        atomic_write_csv(self.run_dir / "metrics.csv", self.records, columns)

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


class NullLogger:
    """What ranks other than 0 log to under DDP: nothing."""

    records: list[dict] = []

    def log(self, record: dict, echo: bool = False) -> None:
        pass

    def truncate(self, step: int) -> None:
        pass

    def log_images(self, paths: list, step: int) -> None:
        pass

    def close(self) -> None:
        pass
