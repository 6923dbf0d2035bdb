"""Cross-entropy family: plain, class-weighted and the survey's balanced CE (eq. 3).

All take logits ``(B, C, *spatial)`` and a label map ``(B, *spatial)`` or ``(B, 1, *spatial)``, 2D or 3D:

    >>> WeightedCrossEntropyLoss("frequency")(torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2, 16, 16)))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from weakseg.losses._utils import index_target, inverse_frequency_weights

__all__ = [
    "BalancedCrossEntropyLoss",
    "CrossEntropyLoss",
    "WeightedCrossEntropyLoss",
    "balanced_cross_entropy",
]


def _check_smoothing(label_smoothing: float) -> None:
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")


# torch provides CE; this class only accepts both label-map shapes.
class CrossEntropyLoss(nn.Module):
    """``torch.nn.functional.cross_entropy`` with label-map targets of either shape."""

    def __init__(self, ignore_index: int = -100, label_smoothing: float = 0.0) -> None:
        super().__init__()
        _check_smoothing(label_smoothing)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(
            input,
            index_target(input, target),
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )


# Hand-written: MONAI has no CE with per-batch inverse-frequency class weights.
class WeightedCrossEntropyLoss(CrossEntropyLoss):
    """Class-weighted CE. ``class_weights``: one float per class, or ``"frequency"``.

    ``"frequency"`` recomputes the weights from every batch's target with ``inverse_frequency_weights``
    (``w_c`` proportional to ``1 / f_c``, present classes averaging 1). The loss is torch's weighted mean
    ``sum_x w_{y(x)} l(x) / sum_x w_{y(x)}``, so only the ratios between weights matter.
    """

    def __init__(
        self,
        class_weights: Sequence[float] | str = "frequency",
        num_classes: int | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(ignore_index, label_smoothing)
        if isinstance(class_weights, str):
            if class_weights != "frequency":
                raise ValueError(
                    f'class_weights must be a list of floats (one per class) or "frequency", got "{class_weights}"'
                )
            self.register_buffer("class_weights", None)
        else:
            weights = torch.as_tensor([float(w) for w in class_weights], dtype=torch.float32)
            if num_classes is not None and len(weights) != num_classes:
                raise ValueError(
                    f"class_weights has {len(weights)} entries but there are {num_classes} classes: "
                    f"give one weight per class, background first"
                )
            if (weights < 0).any() or weights.sum() <= 0:
                raise ValueError(f"class_weights must be >= 0 with a positive sum, got {weights.tolist()}")
            self.register_buffer("class_weights", weights)

    def weights_for(self, input: Tensor, target: Tensor) -> Tensor:
        """The class weights used for this batch (fixed, or inverse frequency of ``target``)."""
        if self.class_weights is None:
            return inverse_frequency_weights(target, input.shape[1]).to(input.dtype)
        if len(self.class_weights) != input.shape[1]:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} entries but the logits have {input.shape[1]} classes"
            )
        return self.class_weights.to(input.dtype)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        target = index_target(input, target)
        return F.cross_entropy(
            input,
            target,
            weight=self.weights_for(input, target),
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )


# Hand-written: MONAI has no balanced (HED) cross-entropy.
def balanced_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Balanced CE of the survey's eq. 3 (HED), one-vs-rest per foreground class, averaged over those classes.

    For each class ``c = 1 .. C-1`` with ``Y+`` its pixels and ``Y-`` all others in the batch:
    ``beta_c = |Y-| / |Y|`` and
    ``L_c = -(1/|Y|) * (beta_c * sum_{Y+} log p_c + (1 - beta_c) * sum_{Y-} log(1 - p_c))``,
    ``p_c`` the softmax probability of ``c``; the loss is ``mean_c L_c``. ``beta_c`` is taken over the
    whole batch (HED takes it per image); sums are divided by ``|Y|`` so the scale does not grow with
    the image size. A class absent from the batch has ``beta_c = 1`` and contributes 0.
    """
    if logits.shape[1] < 2:
        raise ValueError(
            f"balanced_cross_entropy needs >= 2 classes (background + foreground), got {logits.shape[1]}"
        )
    target = index_target(logits, target)
    log_p = F.log_softmax(logits, dim=1)
    losses = []
    for c in range(1, logits.shape[1]):
        pos = (target == c).to(logits.dtype)
        beta = 1.0 - pos.mean()
        log_pc = log_p[:, c]
        others = torch.cat([log_p[:, :c], log_p[:, c + 1 :]], dim=1)
        log_not_c = torch.logsumexp(others, dim=1)  # log(1 - p_c), stable
        losses.append(-(beta * pos * log_pc + (1.0 - beta) * (1.0 - pos) * log_not_c).mean())
    return torch.stack(losses).mean()


class BalancedCrossEntropyLoss(nn.Module):
    """Module form of ``balanced_cross_entropy`` (survey eq. 3)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return balanced_cross_entropy(input, target)
