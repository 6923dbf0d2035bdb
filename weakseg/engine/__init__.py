"""Training engine: the Trainer, checkpoints, streams, schedules, evaluation, loggers and pictures."""

from __future__ import annotations

from weakseg.engine.checkpoint import CheckpointError, atomic_torch_save, load_checkpoint
from weakseg.engine.evaluate import evaluate_dataset, predict_logits
from weakseg.engine.trainer import Trainer

__all__ = [
    "CheckpointError",
    "Trainer",
    "atomic_torch_save",
    "evaluate_dataset",
    "load_checkpoint",
    "predict_logits",
]
