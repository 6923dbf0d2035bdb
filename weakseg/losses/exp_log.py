"""Exponential logarithmic loss (Wong et al. 2018; survey eqs. 13-17).

L = w_dice * E_i[(-ln Dice_i)^gamma_dice] + w_cross * E_x[w_l (-ln p_l(x))^gamma_cross]
Dice_i = (2 sum_x d_il(x) p_i(x) + eps) / (sum_x (d_il(x) + p_i(x)) + eps),   w_l = (sum_k f_k / f_l)^0.5

>>> ExpLogLoss()(torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16)))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from weakseg.losses._utils import index_target

__all__ = ["ExpLogLoss", "exp_log_loss"]


# Hand-written: MONAI has no exponential logarithmic loss.
def exp_log_loss(
    logits: Tensor,
    target: Tensor,
    w_dice: float = 0.8,
    w_cross: float = 0.2,
    gamma_dice: float = 0.3,
    gamma_cross: float = 0.3,
    smooth: float = 1.0,
    frequencies: Sequence[float] | Tensor | None = None,
    eps: float = 1e-6,
) -> Tensor:
    """Wong et al.'s loss of logits ``(B, C, *spatial)`` and a label map.

    ``Dice_i`` is computed per sample and class (``smooth`` = Wong's pseudocount eps=1, which keeps absent
    classes defined); ``E_i`` averages over samples and all classes, ``E_x`` over all pixels.
    ``frequencies`` (one per class, e.g. training-set pixel counts) give ``f_k``; ``None`` = this batch's
    counts. ``-ln(.)`` is clamped to ``>= eps`` before the power: ``x^0.3`` has an infinite slope at 0.
    """
    target = index_target(logits, target)
    num_classes = logits.shape[1]
    log_p = F.log_softmax(logits, dim=1)
    probs = log_p.exp()
    onehot = F.one_hot(target, num_classes).movedim(-1, 1).to(probs.dtype)
    dims = tuple(range(2, logits.ndim))
    dice = (2.0 * (onehot * probs).sum(dims) + smooth) / ((onehot + probs).sum(dims) + smooth)
    l_dice = (-torch.log(dice.clamp(eps, 1.0))).clamp_min(eps).pow(gamma_dice).mean()

    if frequencies is None:
        freq = torch.bincount(target.flatten(), minlength=num_classes)[:num_classes].to(probs.dtype)
    else:
        freq = torch.as_tensor(frequencies, dtype=probs.dtype, device=logits.device)
        if freq.shape != (num_classes,) or (freq < 0).any():
            raise ValueError(
                f"frequencies must be {num_classes} values >= 0 (one per class), got {freq.tolist()}"
            )
    class_w = (freq.sum() / freq.clamp_min(eps)).sqrt()  # an absent class has no pixels to weight
    nll = -log_p.gather(1, target.unsqueeze(1)).squeeze(1)
    l_cross = (class_w[target] * nll.clamp_min(eps).pow(gamma_cross)).mean()
    return w_dice * l_dice + w_cross * l_cross


class ExpLogLoss(nn.Module):
    """Module form of ``exp_log_loss``; defaults w_dice=0.8, w_cross=0.2, gamma_dice=gamma_cross=0.3."""

    def __init__(
        self,
        w_dice: float = 0.8,
        w_cross: float = 0.2,
        gamma_dice: float = 0.3,
        gamma_cross: float = 0.3,
        smooth: float = 1.0,
        frequencies: Sequence[float] | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        named = {"w_dice": w_dice, "w_cross": w_cross, "gamma_dice": gamma_dice, "gamma_cross": gamma_cross}
        for name, value in {**named, "smooth": smooth}.items():
            if value < 0:
                raise ValueError(f"exp_log: {name} must be >= 0, got {value}")
        if frequencies is not None and num_classes is not None and len(frequencies) != num_classes:
            raise ValueError(
                f"exp_log: frequencies has {len(frequencies)} entries but there are {num_classes} classes"
            )
        self.kwargs = {**named, "smooth": smooth}
        self.frequencies = None if frequencies is None else [float(f) for f in frequencies]

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return exp_log_loss(input, target, frequencies=self.frequencies, **self.kwargs)
