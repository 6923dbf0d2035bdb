"""Supervised training on the labeled stream: one network, one loss, one optimizer."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from weakseg.config import Config
from weakseg.keys import Keys
from weakseg.losses import build_loss
from weakseg.methods.base import Method, StepContext, make_optimizer
from weakseg.nets import build_network

__all__ = ["Supervised", "build_segmenter"]


def build_segmenter(cfg: Config) -> torch.nn.Module:
    """The segmentation network described by ``cfg.model`` for ``cfg.data`` (shared by every method)."""
    return build_network(
        cfg.model.network,
        spatial_dims=cfg.data.spatial_dims,
        in_channels=cfg.data.in_channels,
        out_channels=cfg.data.num_classes,
        **cfg.model.params,
    )


class Supervised(Method):
    streams = ("labeled",)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.optim_cfg = cfg.optim
        self.loss_name = cfg.loss.name
        self.net = build_segmenter(cfg)
        self.loss = build_loss(cfg.loss, cfg.data.num_classes)

    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": make_optimizer(self.net.parameters(), self.optim_cfg)}

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        data = batch["labeled"]
        if hasattr(self.loss, "update"):
            self.loss.update(step, ctx.max_steps)
        with ctx.autocast():
            logits = self.net(data[Keys.IMAGE])
        loss = self.loss(_float(logits), data[Keys.LABEL])
        ctx.backward(loss, "net", terms={f"seg ({self.loss_name})": loss})
        return {"loss": float(loss.detach())}

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)

    @property
    def size_divisor(self) -> int:
        return int(getattr(self.net, "size_divisor", 1))


def _float(logits):
    """Losses run in float32 even under autocast (Dice/CE are unstable in bf16)."""
    if isinstance(logits, (list, tuple)):
        return [x.float() for x in logits]
    return logits.float()
