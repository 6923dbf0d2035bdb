"""Deep supervision: one loss over several outputs of a network, at decreasing resolutions.

>>> loss = DeepSupervisionLoss(DiceCELoss())        # weights 1, 1/2, 1/4, ... normalised (nnU-Net)
>>> loss([logits_64, logits_32, logits_16], labels_B_64_64)   # list, highest resolution first
>>> loss(dynunet_out_B_S_C_H_W, labels_B_H_W)                 # MONAI DynUNet's stacked training output
>>> loss(logits_B_C_H_W, labels_B_H_W)                        # a plain tensor: the wrapped loss as is
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DeepSupervisionLoss"]


def _resize_labels(target: Tensor, size: Sequence[int]) -> Tensor:
    """Nearest-neighbour resize of a label map ``(B, *spatial)`` (``interpolate`` has no integer kernels)."""
    if tuple(target.shape[1:]) == tuple(size):
        return target
    return F.interpolate(target.unsqueeze(1).float(), size=tuple(size), mode="nearest").squeeze(1).long()


# Hand-written: MONAI's DeepSupervisionLoss neither normalises nor checks its weights, resizes integer
# labels (unsupported by torch), nor accepts DynUNet's stacked (B, S, C, *spatial) tensor.
class DeepSupervisionLoss(nn.Module):
    """``sum_i w_i * loss(output_i, target resized to output_i)`` with ``w`` normalised to sum 1.

    ``weights=None`` gives ``1 / 2^i`` (nnU-Net). The target is ``(B, *spatial)`` or ``(B, 1, *spatial)`` at
    the resolution of the first output. ``update(step, max_steps)`` is forwarded to the wrapped loss.
    """

    def __init__(self, loss: nn.Module, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if weights is not None:
            weights = [float(w) for w in weights]
            if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
                raise ValueError(f"deep supervision weights must be >= 0 with a positive sum, got {weights}")
        self.loss = loss
        self.weights = weights

    def level_weights(self, levels: int) -> list[float]:
        """The normalised weight of each of ``levels`` outputs."""
        if self.weights is None:
            weights = [0.5**i for i in range(levels)]
        elif len(self.weights) != levels:
            raise ValueError(
                f"deep supervision has {len(self.weights)} weights but the network returned {levels} outputs: "
                "give one weight per output, highest resolution first"
            )
        else:
            weights = self.weights
        total = sum(weights)
        return [w / total for w in weights]

    def update(self, step: int, max_steps: int) -> None:
        if hasattr(self.loss, "update"):
            self.loss.update(step, max_steps)

    @staticmethod
    def _split(input: Tensor, target: Tensor) -> list[Tensor] | None:
        """The outputs of a stacked ``(B, S, C, *spatial)`` tensor, or None for a plain ``(B, C, *spatial)``."""
        if target.ndim == input.ndim - 1 and target.shape[1:] == input.shape[2:]:
            return None  # plain, index target
        if target.ndim == input.ndim and target.shape[1] == 1 and target.shape[2:] == input.shape[2:]:
            return None  # plain, channel target
        stacked_index = target.ndim == input.ndim - 2 and target.shape[1:] == input.shape[3:]
        stacked_channel = (
            target.ndim == input.ndim - 1 and target.shape[1] == 1 and target.shape[2:] == input.shape[3:]
        )
        if stacked_index or stacked_channel:
            return list(input.unbind(1))
        raise ValueError(
            f"cannot match output {tuple(input.shape)} with target {tuple(target.shape)}: expected logits "
            "(B, C, *spatial) or stacked (B, S, C, *spatial) and a target (B, *spatial) or (B, 1, *spatial)"
        )

    def forward(self, input: Tensor | Sequence[Tensor], target: Tensor) -> Tensor:
        if isinstance(input, Tensor):
            outputs = self._split(input, target)
            if outputs is None:
                return self.loss(input, target)
        else:
            outputs = list(input)
            if not outputs:
                raise ValueError("deep supervision got an empty list of outputs")
        if target.ndim == outputs[0].ndim and target.shape[1] == 1:
            target = target[:, 0]
        losses = [self.loss(out, _resize_labels(target, out.shape[2:])) for out in outputs]
        weights = self.level_weights(len(outputs))
        return torch.stack([w * loss for w, loss in zip(weights, losses)]).sum()
