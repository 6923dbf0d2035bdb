"""Cross pseudo supervision, ``cps`` (Chen et al. 2021): two segmenters teach each other.

Streams ``labeled`` and ``unlabeled``. Two networks of the same ``model`` config, built one after the other so
their random initialisations differ (with ``encoder_unet`` both start from the same ImageNet encoder and
differ in their decoders, as in the paper). Each gets the supervised loss on the labeled images and the
cross-entropy against the other's hard pseudo-labels (argmax, no gradient) on the unlabeled ones:

    loss = sup(a) + sup(b) + lambda_cps * rampup(step) * (CE(a_u, argmax b_u) + CE(b_u, argmax a_u))

rampup = exp(-5 (1 - t)^2) over ``rampup_steps`` (default 20% of the run). One optimizer over both networks.
Evaluation and ``weakseg predict`` use network ``a`` (``predict_with: a``; or ``b``): the paper reports one
network, the two end up within noise of each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from weakseg.keys import Keys
from weakseg.methods.base import BuildContext, StepContext
from weakseg.methods.common import main_output
from weakseg.methods.consistency import forward_many
from weakseg.methods.params import choice, number, param
from weakseg.methods.semi import SemiMethod, optional_integer, sigmoid_rampup
from weakseg.methods.supervised import FineTuneParams

__all__ = ["CPS", "CPSParams", "cross_pseudo_loss"]


def cross_pseudo_loss(logits_a: Tensor, logits_b: Tensor) -> tuple[Tensor, Tensor]:
    """(CE of ``a`` against argmax ``b``, CE of ``b`` against argmax ``a``); the targets carry no gradient."""
    target_b, target_a = logits_b.detach().argmax(1), logits_a.detach().argmax(1)
    return F.cross_entropy(logits_a.float(), target_b), F.cross_entropy(logits_b.float(), target_a)


@dataclass
class CPSParams(FineTuneParams):
    lambda_cps: float = param(1.0, number(), "weight of the cross pseudo-supervision losses")
    rampup_steps: int | None = param(
        None, optional_integer(0), "steps of the cross-loss weight's sigmoid ramp-up (null: 20% of the run)"
    )
    predict_with: str = param("a", choice("a", "b"), "the network evaluation and predict use: a | b")


class CPS(SemiMethod):
    params_class = CPSParams

    def __init__(self, ctx: BuildContext, params: CPSParams) -> None:
        super().__init__(ctx, params)
        self.lambda_cps = params.lambda_cps
        default = int(0.2 * ctx.max_steps)
        self.rampup_steps = default if params.rampup_steps is None else params.rampup_steps
        self.predict_with = params.predict_with
        self.net_b = ctx.segmenter()  # drawn after `net`: another initialisation

    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": self.segmenter_optimizer(self.net, self.net_b)}

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        self.finetune.apply(step, self.net, self.net_b)
        x_l, x_u = labeled[Keys.IMAGE], unlabeled[Keys.IMAGE]
        with ctx.autocast():
            a_l, a_u = forward_many(self.net, x_l, x_u)
            b_l, b_u = forward_many(self.net_b, x_l, x_u)
        sup_a = self.supervised(a_l, labeled, step, ctx.max_steps)
        sup_b = self.supervised(b_l, labeled, step, ctx.max_steps)
        cps_a, cps_b = cross_pseudo_loss(main_output(a_u), main_output(b_u))
        weight = self.lambda_cps * sigmoid_rampup(step, self.rampup_steps)
        loss = sup_a + sup_b + weight * (cps_a + cps_b)
        terms = {"sup_a": sup_a, "sup_b": sup_b, "cps_a": cps_a, "cps_b": cps_b}
        ctx.backward(loss, "net", terms=terms)
        with torch.no_grad():
            agree = (main_output(a_u).argmax(1) == main_output(b_u).argmax(1)).float().mean()
        logs = {k: float(v.detach()) for k, v in {"loss": loss, **terms}.items()}
        return {**logs, "cps_weight": weight, "agreement": float(agree)}

    def predict(self, image: Tensor) -> Tensor:
        return (self.net if self.predict_with == "a" else self.net_b)(image)
