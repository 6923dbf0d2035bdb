"""Supervised training on the labeled stream: one network, one loss, one optimizer.

Fine-tuning a network with a pretrained encoder (``net.encoder`` + ``net.encoder_parameters()``, e.g.
``encoder_unet``), from ``method.params``:

* ``freeze_encoder_steps: K``: steps 0..K-1 train the decoder only; the frozen encoder runs in eval mode, so
  its BatchNorm layers use, and keep, their ImageNet running statistics. From step K on it trains. Set from
  ``step`` at every ``train_step``, so a resumed run freezes exactly as an uninterrupted one.
* ``freeze_encoder_bn: true``: keep the encoder's BatchNorm layers in eval mode (ImageNet statistics, affine
  parameters still trained) for the whole run, also after unfreezing; useful with small batches.
* ``encoder_lr_scale: s``: the encoder is a separate optimizer param group with lr = optim.lr * s (the
  decoder group comes first, lr = optim.lr); the LR schedule multiplies both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim import Optimizer

from weakseg.keys import Keys
from weakseg.methods.base import BuildContext, Method, StepContext, make_optimizer
from weakseg.methods.common import float_logits
from weakseg.methods.params import custom, flag, is_number, param
from weakseg.nets.ddp import unwrap

__all__ = [
    "FineTune",
    "FineTuneParams",
    "Supervised",
    "check_finetune",
    "encoder_param_groups",
    "set_encoder_frozen",
]


def _steps_check(p, key, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"method.params.{key} must be an integer >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"method.params.{key} must be >= 0, got {value}")
    return value


def _scale_check(p, key, value):
    if not is_number(value):
        raise ValueError(f"method.params.{key} must be a number > 0, got {value!r}")
    if value <= 0:
        raise ValueError(
            f"method.params.{key} must be > 0, got {value}; to keep the encoder fixed for the whole run set "
            "freeze_encoder_steps >= train.max_steps"
        )
    return value


@dataclass
class FineTuneParams:
    """The fine-tuning keys of a pretrained encoder, taken by every segmentation method."""

    freeze_encoder_steps: int = param(
        0, custom(_steps_check, ("abc", -1)), "steps that train the decoder only (encoder frozen)"
    )
    encoder_lr_scale: float = param(
        1.0, custom(_scale_check, ("abc", 0)), "encoder learning rate = optim.lr * this"
    )
    freeze_encoder_bn: bool = param(False, flag(), "keep the encoder's BatchNorm statistics all run")


def _encoder_params(net: nn.Module) -> Iterator[nn.Parameter] | None:
    fn = getattr(net, "encoder_parameters", None)
    return fn() if callable(fn) and isinstance(getattr(net, "encoder", None), nn.Module) else None


def check_finetune(net: nn.Module, network: str, params: FineTuneParams) -> None:
    """Networks without a pretrained encoder accept only the default fine-tuning params."""
    if _encoder_params(net) is None and (params.freeze_encoder_steps or params.encoder_lr_scale != 1.0):
        raise ValueError(
            "method.params.freeze_encoder_steps / encoder_lr_scale need a network with a pretrained "
            "encoder (net.encoder and net.encoder_parameters(), e.g. model.network: encoder_unet), but "
            f'network "{network}" has none: remove these method.params or switch model.network'
        )
    if params.freeze_encoder_bn and _encoder_params(net) is None:
        raise ValueError(f'method.params.freeze_encoder_bn needs a network with an encoder, not "{network}"')


def encoder_param_groups(net: nn.Module, lr: float, encoder_lr_scale: float = 1.0) -> list[dict]:
    """[decoder group (lr), encoder group (lr * scale)], or one group when the net has no encoder."""
    enc = _encoder_params(net)
    if enc is None:
        return [{"params": list(net.parameters()), "lr": lr}]
    enc_ids = {id(p) for p in enc}
    rest = [p for p in net.parameters() if id(p) not in enc_ids]
    encoder = [p for p in net.parameters() if id(p) in enc_ids]
    return [
        {"params": rest, "lr": lr, "name": "decoder"},
        {"params": encoder, "lr": lr * encoder_lr_scale, "name": "encoder"},
    ]


def set_encoder_frozen(net: nn.Module, frozen: bool, bn_frozen: bool = False) -> None:
    """Frozen: no gradients and eval mode (BatchNorm keeps its running statistics); else train like the net.
    ``bn_frozen`` keeps the BatchNorm layers in eval mode either way."""
    for p in net.encoder_parameters():
        p.requires_grad_(not frozen)
    net.encoder.train(net.training and not frozen)
    if bn_frozen:
        for m in net.encoder.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


class FineTune:
    """The fine-tuning keys of every method's segmenter(s) (``FineTuneParams``): checked against the network
    once, applied at every step."""

    def __init__(self, net: nn.Module, network: str, params: FineTuneParams) -> None:
        check_finetune(net, network, params)
        self.freeze_encoder_steps = params.freeze_encoder_steps
        self.encoder_lr_scale = float(params.encoder_lr_scale)
        self.freeze_encoder_bn = bool(params.freeze_encoder_bn)
        self.has_encoder = _encoder_params(net) is not None

    @property
    def ddp_find_unused(self) -> bool:
        return self.freeze_encoder_steps > 0  # the frozen encoder gets no gradient at first

    def param_groups(self, net: nn.Module, lr: float) -> list[dict]:
        return encoder_param_groups(net, lr, self.encoder_lr_scale)

    def apply(self, step: int, *nets: nn.Module) -> None:
        """Freeze or unfreeze the encoders of ``nets`` for ``step``: a pure function of the step, so a resumed
        run freezes exactly as an uninterrupted one."""
        if self.has_encoder:
            for net in nets:
                set_encoder_frozen(unwrap(net), step < self.freeze_encoder_steps, self.freeze_encoder_bn)


class Supervised(Method):
    streams = ("labeled",)
    params_class = FineTuneParams  # method.params: the fine-tuning keys only

    def __init__(self, ctx: BuildContext, params: FineTuneParams) -> None:
        super().__init__()
        self.optim_cfg = ctx.optim
        self.loss_name = ctx.loss.name
        self.net = ctx.segmenter()
        self.loss = ctx.make_loss()
        self.finetune = FineTune(self.net, ctx.network, params)
        self.ddp_find_unused = self.finetune.ddp_find_unused

    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {
            "net": make_optimizer(self.finetune.param_groups(self.net, self.optim_cfg.lr), self.optim_cfg)
        }

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        data = batch["labeled"]
        self.finetune.apply(step, self.net)
        if hasattr(self.loss, "update"):
            self.loss.update(step, ctx.max_steps)
        with ctx.autocast():
            logits = self.net(data[Keys.IMAGE])
        loss = self.loss(float_logits(logits), data[Keys.LABEL])
        ctx.backward(loss, "net", terms={f"seg ({self.loss_name})": loss})
        return {"loss": float(loss.detach())}

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)

    @property
    def size_divisor(self) -> int:
        return int(getattr(unwrap(self.net), "size_divisor", 1))
