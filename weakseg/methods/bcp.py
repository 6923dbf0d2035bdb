"""Bidirectional copy-paste, ``bcp`` (Bai et al. 2023).

Streams ``labeled`` and ``unlabeled``; the batch is split into halves a and b (labeled and unlabeled alike).

1. Copy-paste pre-training, steps 0 .. ``pretrain_steps`` - 1: supervised on labeled images mixed with each
   other (a box of sample i + 1 pasted into sample i, image and label alike).
2. Self-training: at the first step of this stage the EMA teacher is set to the pre-trained segmenter; it then
   gives hard pseudo-labels of the unlabeled images (no gradient). With one random box M per pair
   (``box_fraction`` of each side, as the paper's 2/3):

       inward  = labeled_a inside M, unlabeled_a outside; target: label_a | pseudo_a
       outward = unlabeled_b inside M, labeled_b outside; target: pseudo_b | label_b

   Each mixed image is trained on its mixed target with (CE + Dice) / 2 per region, the pseudo-labelled region
   weighted ``alpha`` (0.5), the labelled one 1. After every step teacher = EMA(student), ``ema_decay``.

Evaluation uses the student (``predict_with: student``) as the paper does; or the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.optim import Optimizer

from weakseg.keys import Keys
from weakseg.methods.base import BuildContext, StepContext
from weakseg.methods.common import ema_update, frozen_copy, main_output
from weakseg.methods.consistency import masked_loss, step_generator
from weakseg.methods.mixing import bcp_mix, cutmix
from weakseg.methods.params import choice, is_number, number, param, rule
from weakseg.methods.semi import SemiMethod, optional_integer
from weakseg.methods.supervised import FineTuneParams
from weakseg.nets.ddp import unwrap

__all__ = ["BCP", "BCPParams", "fixed_boxes"]


def fixed_boxes(b: int, size: tuple[int, ...], fraction: float, generator: torch.Generator) -> Tensor:
    """(B, *size) bool: one box per sample, ``fraction`` of every side, at a uniform random position."""
    sides = [max(1, int(round(n * fraction))) for n in size]
    u = torch.rand(b, len(size), generator=generator, dtype=torch.float64)
    out = torch.zeros((b, *size), dtype=torch.bool)
    for i in range(b):
        starts = [int(u[i, k] * (n - s + 1)) for k, (s, n) in enumerate(zip(sides, size))]
        out[(i, *[slice(st, st + s) for st, s in zip(starts, sides)])] = True
    return out


@dataclass
class BCPParams(FineTuneParams):
    pretrain_steps: int | None = param(
        None, optional_integer(0), "steps of copy-paste pre-training on labeled images (null: 20% of the run)"
    )
    alpha: float = param(0.5, number(), "weight of the pseudo-labelled region of a mixed image")
    box_fraction: float = param(
        2 / 3,
        rule(lambda v: is_number(v) and 0 < v < 1, "a fraction in (0, 1)", (0, 1.2, "abc")),
        "side of the pasted box, as a fraction of each image side",
    )
    ema_decay: float = param(0.99, number(0.0, 1.0), "the teacher's EMA decay: min(1 - 1 / (step + 1), this)")
    predict_with: str = param(
        "student", choice("student", "teacher"), "the network evaluation and predict use: student | teacher"
    )
    unsup_loss: str = param("dice_ce", choice("dice_ce", "ce"), "loss of each region: dice_ce | ce")


class BCP(SemiMethod):
    params_class = BCPParams

    def __init__(self, ctx: BuildContext, params: BCPParams) -> None:
        super().__init__(ctx, params)
        default = int(0.2 * ctx.max_steps)  # the paper: 10k of 40k iterations (ACDC)
        self.pretrain_steps = default if params.pretrain_steps is None else params.pretrain_steps
        self.alpha = params.alpha
        self.box_fraction = params.box_fraction
        self.ema_decay = params.ema_decay
        self.predict_with = params.predict_with
        self.unsup_loss = params.unsup_loss
        self.teacher = frozen_copy(self.net)
        # set once the teacher holds the pre-trained weights (a buffer: part of the checkpoint, exact resume)
        self.register_buffer("teacher_ready", torch.zeros((), dtype=torch.bool))

    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": self.segmenter_optimizer()}

    def region_loss(self, logits: Tensor, target: Tensor, labeled_region: Tensor) -> Tensor:
        """Labeled region weighted 1, pseudo-labelled region ``alpha``, each loss over its own pixels."""
        lab = masked_loss(logits, target, labeled_region, self.unsup_loss, per_mask=True)
        return lab + self.alpha * masked_loss(logits, target, ~labeled_region, self.unsup_loss, per_mask=True)

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        self.finetune.apply(step, self.net)
        x_l, y_l, x_u = labeled[Keys.IMAGE], labeled[Keys.LABEL], unlabeled[Keys.IMAGE]
        if x_l.shape[0] < 2 or x_u.shape[0] < 2 or x_l.shape[2:] != x_u.shape[2:]:
            raise ValueError(
                f'method "bcp" needs at least 2 labeled and 2 unlabeled samples per batch of one size, got '
                f"labeled {tuple(x_l.shape)} and unlabeled {tuple(x_u.shape)}: raise train.batch_size / "
                "train.stream_batch_sizes.unlabeled, or crop/resize both streams alike"
            )
        g = step_generator(self.seed, step, 0, ctx)
        size = tuple(x_l.shape[2:])
        if step < self.pretrain_steps:
            box = fixed_boxes(x_l.shape[0], size, self.box_fraction, g).to(x_l.device)
            x, y = cutmix(box, (x_l, x_l.roll(-1, 0)), (y_l, y_l.roll(-1, 0)))
            with ctx.autocast():
                logits = self.net(x)
            loss = self.supervised(logits, {Keys.LABEL: y}, step, ctx.max_steps)
            ctx.backward(loss, "net", terms={"copy_paste_sup": loss})
            return {"loss": float(loss.detach()), "stage": 1.0}
        if not bool(self.teacher_ready):
            self.teacher.load_state_dict(unwrap(self.net).state_dict())
            self.teacher_ready.fill_(True)
        n = min(x_l.shape[0], x_u.shape[0]) // 2 * 2
        h = n // 2
        with torch.no_grad(), ctx.autocast():
            pseudo = main_output(self.teacher(x_u[:n])).float().argmax(1)
        box = fixed_boxes(h, size, self.box_fraction, g).to(x_l.device)
        x_in, y_in = bcp_mix(x_l[:h], y_l[:h], x_u[:h], pseudo[:h], box)
        x_out, y_out = bcp_mix(x_u[h:n], pseudo[h:], x_l[h:n], y_l[h:n], box)
        with ctx.autocast():
            logits = main_output(self.net(torch.cat([x_in, x_out]))).float()
        labeled_region = torch.cat([box, ~box])  # inward: the box is labeled; outward: the outside is
        loss = self.region_loss(logits, torch.cat([y_in, y_out]), labeled_region)
        ctx.backward(loss, "net", terms={"bcp": loss})
        ema_update(self.teacher, self.net, step, self.ema_decay)
        return {"loss": float(loss.detach()), "stage": 2.0}

    def predict(self, image: Tensor) -> Tensor:
        return (self.net if self.predict_with == "student" else self.teacher)(image)
