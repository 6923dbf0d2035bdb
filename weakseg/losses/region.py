"""MONAI's region and focal losses, fixed to weakseg's contract: logits in, label map out.

Each class is the MONAI loss with ``to_onehot_y=True`` and softmax (``use_softmax`` for focal) fixed,
and a target of shape ``(B, *spatial)`` or ``(B, 1, *spatial)``. Other MONAI keywords pass through.
Defaults: Dice-style losses exclude the background (``include_background=False``, as nnU-Net does:
the near-perfect background Dice otherwise dilutes the foreground signal); focal keeps it (it is a
per-pixel CE). Tversky defaults to alpha=0.3, beta=0.7 (Salehi et al.'s recall-favouring choice).

    >>> DiceCELoss()(torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16)))
"""

from __future__ import annotations

import monai.losses
from torch import Tensor

from weakseg.losses._utils import channel_target, check_kwargs

__all__ = ["DiceCELoss", "DiceLoss", "FocalLoss", "GeneralizedDiceLoss", "TverskyLoss"]

_FIXED = ("to_onehot_y", "softmax", "sigmoid", "other_act", "use_softmax")


class _LabelMapTarget:
    """Mixin: hand MONAI the ``(B, 1, *spatial)`` label map it one-hot encodes."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return super().forward(input, channel_target(input, target))  # type: ignore[misc]


class DiceLoss(_LabelMapTarget, monai.losses.DiceLoss):
    """Soft Dice (Milletari et al.) from ``monai.losses.DiceLoss``."""

    def __init__(self, include_background: bool = False, **kwargs) -> None:
        check_kwargs("dice", monai.losses.DiceLoss.__init__, kwargs, _FIXED)
        super().__init__(include_background=include_background, to_onehot_y=True, softmax=True, **kwargs)


class TverskyLoss(_LabelMapTarget, monai.losses.TverskyLoss):
    """Tversky loss from ``monai.losses.TverskyLoss``: alpha weighs false positives, beta false negatives."""

    def __init__(
        self, alpha: float = 0.3, beta: float = 0.7, include_background: bool = False, **kwargs
    ) -> None:
        check_kwargs("tversky", monai.losses.TverskyLoss.__init__, kwargs, _FIXED)
        if alpha < 0 or beta < 0 or alpha + beta <= 0:
            raise ValueError(
                f"tversky: alpha and beta must be >= 0 with a positive sum, got alpha={alpha}, beta={beta}"
            )
        super().__init__(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            alpha=alpha,
            beta=beta,
            **kwargs,
        )


class GeneralizedDiceLoss(_LabelMapTarget, monai.losses.GeneralizedDiceLoss):
    """Generalized Dice (Sudre et al.; inverse squared volume weights) from MONAI."""

    def __init__(self, include_background: bool = False, **kwargs) -> None:
        check_kwargs("generalized_dice", monai.losses.GeneralizedDiceLoss.__init__, kwargs, _FIXED)
        super().__init__(include_background=include_background, to_onehot_y=True, softmax=True, **kwargs)


class FocalLoss(_LabelMapTarget, monai.losses.FocalLoss):
    """Softmax focal loss (Lin et al.) from ``monai.losses.FocalLoss``."""

    def __init__(self, gamma: float = 2.0, include_background: bool = True, **kwargs) -> None:
        check_kwargs("focal", monai.losses.FocalLoss.__init__, kwargs, _FIXED)
        if gamma < 0:
            raise ValueError(f"focal: gamma must be >= 0, got {gamma}")
        super().__init__(
            include_background=include_background, to_onehot_y=True, use_softmax=True, gamma=gamma, **kwargs
        )


class DiceCELoss(_LabelMapTarget, monai.losses.DiceCELoss):
    """Dice + CE from MONAI (``lambda_dice``, ``lambda_ce``); the CE term always covers every class."""

    def __init__(self, include_background: bool = False, **kwargs) -> None:
        check_kwargs("dice_ce", monai.losses.DiceCELoss.__init__, kwargs, _FIXED)
        super().__init__(include_background=include_background, to_onehot_y=True, softmax=True, **kwargs)
