"""Segmentation losses behind one registry, plus the shared GAN parts.

Contract: every registered loss is an ``nn.Module`` called MONAI-style as
``loss(logits (B, C, *spatial), target (B, *spatial) or (B, 1, *spatial) int64) -> scalar``, 2D or 3D,
softmax over C inside. A loss may define ``update(step, max_steps)``; the training method calls it each
step (``boundary`` uses it for its alpha schedule).

    >>> loss = build_loss(LossConfig(name="dice_ce"), num_classes=5)
    >>> loss(torch.randn(2, 5, 64, 64), torch.randint(0, 5, (2, 64, 64)))
"""

from __future__ import annotations

from torch import nn

from weakseg.config import LossConfig
from weakseg.losses._utils import inverse_frequency_weights
from weakseg.losses.border import BorderWeightedCrossEntropyLoss, unet_border_weight_map
from weakseg.losses.boundary import BoundaryLoss, boundary_alpha, boundary_loss, signed_distance_map
from weakseg.losses.ce import (
    BalancedCrossEntropyLoss,
    CrossEntropyLoss,
    WeightedCrossEntropyLoss,
    balanced_cross_entropy,
)
from weakseg.losses.deep_supervision import DeepSupervisionLoss
from weakseg.losses.exp_log import ExpLogLoss, exp_log_loss
from weakseg.losses.gan import GANLoss, ImagePool
from weakseg.losses.region import DiceCELoss, DiceLoss, FocalLoss, GeneralizedDiceLoss, TverskyLoss
from weakseg.registry import Registry, accepted_params, check_params, is_import_path

__all__ = [
    "LOSSES",
    "OutsideLoss",
    "BalancedCrossEntropyLoss",
    "BorderWeightedCrossEntropyLoss",
    "BoundaryLoss",
    "CrossEntropyLoss",
    "DeepSupervisionLoss",
    "DiceCELoss",
    "DiceLoss",
    "ExpLogLoss",
    "FocalLoss",
    "GANLoss",
    "GeneralizedDiceLoss",
    "ImagePool",
    "TverskyLoss",
    "WeightedCrossEntropyLoss",
    "balanced_cross_entropy",
    "boundary_alpha",
    "boundary_loss",
    "build_loss",
    "exp_log_loss",
    "inverse_frequency_weights",
    "signed_distance_map",
    "unet_border_weight_map",
]

LOSSES: Registry[nn.Module] = Registry("loss")
for _name, _ctor in {
    "ce": CrossEntropyLoss,
    "weighted_ce": WeightedCrossEntropyLoss,
    "balanced_ce": BalancedCrossEntropyLoss,
    "border_ce": BorderWeightedCrossEntropyLoss,
    "dice": DiceLoss,
    "tversky": TverskyLoss,
    "generalized_dice": GeneralizedDiceLoss,
    "focal": FocalLoss,
    "dice_ce": DiceCELoss,
    "boundary": BoundaryLoss,
    "exp_log": ExpLogLoss,
}.items():
    LOSSES.register(_name)(_ctor)


class OutsideLoss(nn.Module):
    """A loss by import path, called as weakseg calls losses: ``loss(logits (B,C,*S), label (B,*S))``. A MONAI
    loss gets the label with its channel axis, (B,1,*S), as MONAI expects; other losses (torch.nn ...) get it
    as it is. Written here because MONAI's own losses assume that target shape."""

    def __init__(self, loss: nn.Module, channel_target: bool) -> None:
        super().__init__()
        self.loss, self.channel_target = loss, channel_target

    def forward(self, logits, target):
        if self.channel_target and target.ndim == logits.ndim - 1:
            target = target.unsqueeze(1)
        return self.loss(logits, target)


def _outside_loss(cfg: LossConfig) -> nn.Module:
    """``loss.name: package.module:Attr`` with ``loss.params``; a MONAI loss that can one-hot the label and
    take a softmax does so unless loss.params says otherwise (weakseg's networks give logits, labels are class
    indices)."""
    ctor = LOSSES.get(cfg.name)
    params = dict(cfg.params)
    accepted, _ = accepted_params(ctor)
    monai = ctor.__module__.startswith("monai.")
    if monai:
        for key in ("to_onehot_y", "softmax"):
            if key in accepted and key not in params:
                params[key] = True
    try:
        loss = ctor(**params)
    except TypeError as e:
        raise ValueError(f'loss "{cfg.name}" cannot be built from loss.params {cfg.params}: {e}') from e
    return DeepSupervisionLoss(OutsideLoss(loss, monai), cfg.deep_supervision_weights)


def build_loss(cfg: LossConfig, num_classes: int) -> nn.Module:
    """Build ``cfg.name`` with ``cfg.params`` (plus ``num_classes`` where the loss takes it, to check
    per-class lists); wrap it in ``DeepSupervisionLoss`` (weights ``cfg.deep_supervision_weights`` or 1/2^i).
    A name ``package.module:Attr`` is a loss from outside (``OutsideLoss``)."""
    if is_import_path(cfg.name) and cfg.name not in LOSSES:
        return _outside_loss(cfg)
    ctor = LOSSES.get(cfg.name)
    params = dict(cfg.params)
    check_params(f'loss "{cfg.name}"', ctor, params, where="loss.params")
    accepted, _ = accepted_params(ctor)
    if "num_classes" in accepted:
        if params.get("num_classes", num_classes) != num_classes:
            raise ValueError(
                f'loss "{cfg.name}": loss.params.num_classes={params["num_classes"]} but data.num_classes='
                f"{num_classes}; drop it from loss.params"
            )
        params["num_classes"] = num_classes
    loss = LOSSES.build(cfg.name, **params)
    # Always wrapped: a plain tensor passes straight through, several outputs get the default 1/2^i weights.
    return DeepSupervisionLoss(loss, cfg.deep_supervision_weights)
