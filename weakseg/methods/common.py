"""Small tensor helpers every training method uses: network outputs under deep supervision, one-hot label
maps, the DDP slice of a random draw, and frozen / EMA copies of a network.

A network's output is one logits tensor (B, N, *S), or under deep supervision a list whose first entry is the
full-resolution one:

    logits = net(x)                       # Tensor or [full, half, quarter, ...]
    loss = sup_loss(float_logits(logits), label)        # every output in float32 (losses run outside AMP)
    prob = main_output(logits).float().softmax(1)       # the full-resolution output only
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from weakseg.methods.base import StepContext
from weakseg.nets.ddp import unwrap

__all__ = ["ema_update", "float_logits", "frozen_copy", "main_output", "one_hot", "rank_slice"]


def main_output(out: Tensor | Sequence[Tensor]) -> Tensor:
    """The full-resolution output (the first one under deep supervision)."""
    return out[0] if isinstance(out, (list, tuple)) else out


def float_logits(out: Tensor | Sequence[Tensor]) -> Tensor | list[Tensor]:
    """Logits in float32, every output of a list (losses are computed outside autocast precision)."""
    return [x.float() for x in out] if isinstance(out, (list, tuple)) else out.float()


def one_hot(label: Tensor, num_classes: int) -> Tensor:
    """Integer label maps (B, *S) -> float32 one-hot maps (B, num_classes, *S)."""
    return F.one_hot(label.long(), num_classes).movedim(-1, 1).float()


def rank_slice(ctx: StepContext | None) -> tuple[int, int]:
    """(rank, world) of this process under DDP, (0, 1) otherwise: random draws are made for the global batch
    and each rank keeps its block, as the data streams do, so N processes draw what one process would."""
    dist = getattr(ctx, "dist", None)
    return (dist.rank, dist.world) if dist is not None else (0, 1)


def frozen_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` (unwrapped from DDP) without gradients: an EMA teacher or generator."""
    twin = copy.deepcopy(unwrap(net))
    for q in twin.parameters():
        q.requires_grad_(False)
    return twin


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, step: int, decay: float) -> None:
    """teacher = a * teacher + (1 - a) * student, a = min(1 - 1/(step + 1), decay); integer buffers
    (BatchNorm's batch counter) are copied."""
    student = unwrap(student)
    a = min(1.0 - 1.0 / (step + 1), decay)
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(a).add_(s.detach(), alpha=1.0 - a)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        if t.dtype.is_floating_point:
            t.mul_(a).add_(s, alpha=1.0 - a)
        else:
            t.copy_(s)
