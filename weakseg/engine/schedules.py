"""Learning-rate schedules as multipliers of the base LR (``torch.optim.lr_scheduler.LambdaLR``)."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from weakseg.config import SCHEDULES, OptimConfig

__all__ = ["build_scheduler", "lr_factor"]


def lr_factor(step: int, max_steps: int, cfg: OptimConfig) -> float:
    """Multiplier at ``step``: linear warmup, then constant | poly (nnU-Net) | cosine | linear decay to 0 |
    constant_linear (CycleGAN: constant until ``optim.decay_start`` of the run, then linear decay to 0)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, max_steps - cfg.warmup_steps)
    t = min(1.0, max(0.0, (step - cfg.warmup_steps) / span))
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "poly":
        return (1.0 - t) ** cfg.poly_power
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.schedule == "linear":
        return 1.0 - t
    if cfg.schedule == "constant_linear":
        return min(1.0, (1.0 - t) / (1.0 - cfg.decay_start))
    raise ValueError(f'optim.schedule must be one of {"|".join(SCHEDULES)}, got "{cfg.schedule}"')


def build_scheduler(opt: Optimizer, max_steps: int, cfg: OptimConfig) -> LambdaLR:
    return LambdaLR(opt, lambda step: lr_factor(step, max_steps, cfg))
