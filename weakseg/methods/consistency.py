"""Weak-strong consistency: ``fixmatch`` (Sohn et al. 2020) and ``unimatch`` (Yang et al. 2023, medical variant).

Streams ``labeled`` and ``unlabeled``. The weak view of an unlabeled image is what the trainer's batched
augmentation made of it (``augment.streams: [labeled, unlabeled]``, geometric transforms in
``augment.transforms``). The segmenter's prediction on the weak view (no gradient) gives hard pseudo-labels
where its confidence (max softmax) is >= ``threshold``; a strong view (``weakseg.methods.mixing.StrongView``:
intensity perturbations from ``method.params.strong`` + CutMix between unlabeled images, no geometric change)
is trained against them with a masked loss (``unsup_loss``: ``dice_ce`` = (CE + Dice) / 2 over confident
pixels, as UniMatch's ACDC recipe; or ``ce``). The loss is
``sup + lambda_u * rampup(step) * unsup``, rampup = exp(-5 (1 - t)^2) over ``rampup_steps`` (0: none).
With ``ema_decay`` > 0 the pseudo-labels come from an EMA teacher of the segmenter (teacher = a teacher +
(1 - a) segmenter after every step, a = min(1 - 1/(step + 1), ema_decay)), as the EMA-teacher variants of
weak-strong consistency in segmentation (AugSeg, U2PL) do against confirmation bias; evaluation and
``weakseg predict`` still use the segmenter. 0 (default): the segmenter itself, as FixMatch and UniMatch.

* ``fixmatch``: one strong view.
* ``unimatch``: two strong views (independent draws) and a feature-perturbation stream: the weak view again
  with 50% channel dropout on the encoder's features (``weakseg.nets.perturb.feature_dropout``), trained on the
  same pseudo-labels; unsup = ``fp_weight`` * fp + (1 - ``fp_weight``) / 2 * (s1 + s2) (UniMatch: 0.5).

Both take the fine-tuning keys of a pretrained encoder (``freeze_encoder_steps``, ``encoder_lr_scale``,
``freeze_encoder_bn``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from monai.losses import MaskedDiceLoss
from torch import Tensor
from torch.optim import Optimizer

from weakseg.keys import Keys
from weakseg.methods.base import BuildContext, StepContext
from weakseg.methods.common import ema_update, frozen_copy, main_output, one_hot, rank_slice
from weakseg.methods.mixing import StrongView, cutmix_param, strong_param
from weakseg.methods.params import choice, integer, is_number, number, param, rule
from weakseg.methods.semi import SemiMethod, sigmoid_rampup
from weakseg.methods.supervised import FineTuneParams
from weakseg.nets.perturb import feature_dropout, perturbation_sites

__all__ = [
    "FixMatch",
    "FixMatchParams",
    "UniMatch",
    "UniMatchParams",
    "forward_many",
    "masked_loss",
    "step_generator",
]


def step_generator(seed: int, step: int, stream: int, ctx: StepContext | None = None) -> torch.Generator:
    """The CPU generator of one random stream of one step: a pure function of (seed, step, stream, rank)."""
    rank = rank_slice(ctx)[0]
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 1_009 + stream * 101 + 7_919 * rank + 17)


def forward_many(net: torch.nn.Module, *images: Tensor) -> list[Tensor | list[Tensor]]:
    """``net`` on several batches: one concatenated forward when their shapes agree, else one each."""
    if len({tuple(x.shape[1:]) for x in images}) > 1:
        return [net(x) for x in images]
    out = net(torch.cat(images))
    sizes = [x.shape[0] for x in images]
    if isinstance(out, (list, tuple)):  # deep supervision: split every output
        parts = [torch.split(o, sizes) for o in out]
        return [[p[i] for p in parts] for i in range(len(images))]
    return list(torch.split(out, sizes))


# the target goes in one-hot: MONAI masks the index map before its own one-hot, which would turn every masked-out
# pixel into a background target
_DICE = MaskedDiceLoss(softmax=True)


def masked_loss(
    logits: Tensor, target: Tensor, mask: Tensor, kind: str = "dice_ce", per_mask: bool = False
) -> Tensor:
    """Loss of ``logits`` (B,N,*S) against hard ``target`` (B,*S) on the pixels of ``mask`` (B,*S): CE summed
    over the mask / all pixels (FixMatch, UniMatch; ``per_mask``: / the mask's pixels, BCP), and for
    ``dice_ce`` the mean of that with MONAI's masked Dice."""
    logits = logits.float()
    m = mask.float()
    ce = (F.cross_entropy(logits, target, reduction="none") * m).sum()
    ce = ce / (m.sum().clamp(min=1) if per_mask else m.numel())
    if kind == "ce":
        return ce
    return 0.5 * (ce + _DICE(logits, one_hot(target, logits.shape[1]), m[:, None]))


@dataclass
class FixMatchParams(FineTuneParams):
    threshold: float = param(
        0.95,
        rule(lambda v: is_number(v) and 0 < v < 1, "a confidence in (0, 1), e.g. 0.95", (0, 1.0, "abc")),
        "confidence (max softmax) a weak-view pixel needs to give a pseudo-label",
    )
    lambda_u: float = param(1.0, number(), "weight of the unlabeled loss")
    rampup_steps: int = param(0, integer(0), "steps of the unlabeled weight's sigmoid ramp-up (0: none)")
    strong: list[Any] | None = strong_param("the unlabeled images")
    cutmix_p: float = cutmix_param("the unlabeled images of a strong view")
    unsup_loss: str = param(
        "dice_ce", choice("dice_ce", "ce"), "masked loss of the pseudo-labels: dice_ce | ce"
    )
    ema_decay: float = param(
        0.0,
        number(0.0, 1.0),
        "pseudo-labels from an EMA teacher with this decay (0: from the segmenter itself)",
    )


class FixMatch(SemiMethod):
    n_strong = 1
    params_class = FixMatchParams

    def __init__(self, ctx: BuildContext, params: FixMatchParams) -> None:
        super().__init__(ctx, params)
        self.threshold = params.threshold
        self.lambda_u = params.lambda_u
        self.rampup_steps = params.rampup_steps
        self.unsup_loss = params.unsup_loss
        self.strong = StrongView(self.name, params.strong, params.cutmix_p, ctx.spatial_dims)
        self.ema_decay = params.ema_decay
        # only with a decay: the checkpoints of plain FixMatch / UniMatch hold the segmenter alone
        self.teacher = frozen_copy(self.net) if self.ema_decay > 0 else None

    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": self.segmenter_optimizer()}

    def pseudo_labels(self, x_weak: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor, Tensor]:
        """(hard labels, confident mask, confidence) from the prediction on the weak view (the segmenter's, or
        the EMA teacher's), no gradient."""
        net = self.net if self.teacher is None else self.teacher
        with torch.no_grad(), ctx.autocast():
            prob = main_output(net(x_weak)).float().softmax(1)
        conf, label = prob.max(1)
        return label, conf >= self.threshold, conf

    def unsup_terms(self, x_weak: Tensor, label: Tensor, mask: Tensor, views, logits_s, ctx) -> dict:
        return {
            "strong": masked_loss(main_output(logits_s[0]), views[0].target, views[0].mask, self.unsup_loss)
        }

    def unsup_total(self, terms: dict[str, Tensor]) -> Tensor:
        return terms["strong"]

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        self.finetune.apply(step, self.net)
        x_l, x_w = labeled[Keys.IMAGE], unlabeled[Keys.IMAGE]
        label, mask, _ = self.pseudo_labels(x_w, ctx)
        views = [
            self.strong(x_w, label, mask, step_generator(self.seed, step, k, ctx))
            for k in range(self.n_strong)
        ]
        with ctx.autocast():
            outs = forward_many(self.net, x_l, *[v.image for v in views])
        sup = self.supervised(outs[0], labeled, step, ctx.max_steps)
        terms = self.unsup_terms(x_w, label, mask, views, outs[1:], ctx)
        unsup = self.unsup_total(terms)
        weight = self.lambda_u * sigmoid_rampup(step, self.rampup_steps)
        loss = sup + weight * unsup
        ctx.backward(loss, "net", terms={"sup": sup, **terms})
        if self.teacher is not None:
            ema_update(self.teacher, self.net, step, self.ema_decay)
        logs = {k: float(v.detach()) for k, v in {"loss": loss, "sup": sup, "unsup": unsup, **terms}.items()}
        return {**logs, "unsup_weight": weight, "confident_fraction": float(mask.float().mean())}


@dataclass
class UniMatchParams(FixMatchParams):
    fp_dropout: float = param(0.5, number(0.0, 0.99), "channel dropout of the feature-perturbation stream")
    fp_weight: float = param(
        0.5, number(0.0, 1.0), "weight of the feature-perturbation loss (the strong views: the rest)"
    )


class UniMatch(FixMatch):
    n_strong = 2
    params_class = UniMatchParams

    def __init__(self, ctx: BuildContext, params: UniMatchParams) -> None:
        super().__init__(ctx, params)
        self.fp_dropout = params.fp_dropout
        self.fp_weight = params.fp_weight
        perturbation_sites(self.net)  # fails now, not at the first step, for a network it cannot perturb

    def unsup_terms(self, x_weak: Tensor, label: Tensor, mask: Tensor, views, logits_s, ctx) -> dict:
        with ctx.autocast(), feature_dropout(self.net, self.fp_dropout):
            logits_fp = main_output(self.net(x_weak))
        terms = {"fp": masked_loss(logits_fp, label, mask, self.unsup_loss)}
        for k, (v, out) in enumerate(zip(views, logits_s)):
            terms[f"strong{k + 1}"] = masked_loss(main_output(out), v.target, v.mask, self.unsup_loss)
        return terms

    def unsup_total(self, terms: dict[str, Tensor]) -> Tensor:
        w = (1.0 - self.fp_weight) / 2
        return self.fp_weight * terms["fp"] + w * (terms["strong1"] + terms["strong2"])
