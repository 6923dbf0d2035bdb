"""Target self-training, ``self_train``: an adapted segmenter labels the real target images and learns from
its own confident labels, in rounds (the FLARE CT->MR recipe: translate with CycleGAN, then self-train).

Streams ``source`` (labeled source images) and ``target`` (unlabeled target images: their labels are never
read). ``initial``: any trained weakseg segmentation checkpoint, e.g. the joint CycleGAN + U-Net
(``method.name: cyclegan``), a two-stage segmenter trained on translated images, or a source-only run; its
segmenter (``seg`` or ``net``, built from this config's ``model``) starts both the student and the teacher.
Each step:

1. Pseudo-labels: the teacher's argmax on the (weak) target view where its softmax is >= ``threshold``; with
   ``agreement: true`` only where an EMA copy of the student (``ema_decay``) agrees too.
2. The student trains on ``sup(source)`` + ``lambda_target`` x masked (CE + Dice)/2 on a strong view of the
   target images (``strong``, ``cutmix_p``: the intensity perturbations and CutMix of ``fixmatch``). With a
   CycleGAN ``initial`` and ``translate_source: true`` the source images are first translated to the target
   (its frozen source->target generator): the labeled images then look like the target.
3. Rounds: every ``round_steps`` steps the teacher becomes a copy of the student (0: the teacher is the EMA
   of the student, updated every step). A function of the step, so a resumed run refreshes exactly as an
   uninterrupted one; the teacher is part of the checkpoint.

No target label is read for training. The trainer evaluates on the target's validation split; select the
reported model on the source validation patients or report the last step (benchmarks/ct2mr.py does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from weakseg.api import frozen_initial
from weakseg.keys import Keys
from weakseg.methods.base import BuildContext, Method, StepContext, make_optimizer
from weakseg.methods.common import ema_update, frozen_copy, main_output
from weakseg.methods.consistency import forward_many, masked_loss, step_generator
from weakseg.methods.mixing import StrongView, cutmix_param, strong_param
from weakseg.methods.params import flag, initial_param, integer, is_number, number, param, rule
from weakseg.nets.ddp import unwrap

__all__ = ["SelfTrain", "SelfTrainParams"]


@dataclass
class SelfTrainParams:
    """``method.params`` of ``self_train``."""

    initial: str | dict[str, Any] | None = initial_param(
        "segmentation checkpoint whose segmenter starts student and teacher (e.g. a joint cyclegan run)"
    )
    threshold: float = param(
        0.9,
        rule(lambda v: is_number(v) and 0 < v < 1, "a confidence in (0, 1), e.g. 0.9", (0, 1.0, "abc")),
        "teacher softmax a target pixel needs to give a pseudo-label",
    )
    lambda_target: float = param(1.0, number(), "weight of the masked target loss")
    round_steps: int = param(
        500, integer(0), "steps per round, then the teacher copies the student (0: EMA teacher)"
    )
    agreement: bool = param(False, flag(), "pseudo-label only where an EMA student agrees with the teacher")
    ema_decay: float = param(0.99, number(0.0, 1.0), "decay of the EMA student (agreement) and EMA teacher")
    strong: list[Any] | None = strong_param("the target images")
    cutmix_p: float = cutmix_param("the strong target views of the batch")
    translate_source: bool = param(
        True, flag(), "translate source images with the initial CycleGAN's source -> target generator"
    )


class SelfTrain(Method):
    streams = ("source", "target")
    params_class = SelfTrainParams

    def __init__(self, ctx: BuildContext, params: SelfTrainParams) -> None:
        super().__init__()
        self.threshold = params.threshold
        self.lambda_target = params.lambda_target
        self.round_steps = params.round_steps
        self.agreement = params.agreement
        self.ema_decay = params.ema_decay
        self.optim_cfg, self.seed = ctx.optim, ctx.seed
        self.sup_loss = ctx.make_loss()
        self.strong = StrongView("self_train", params.strong, params.cutmix_p, ctx.spatial_dims)
        self.net = ctx.segmenter()
        self.initial = frozen_initial(params.initial, ctx) if params.initial else None
        if self.initial is not None:
            seg = getattr(self.initial, "seg", None) or getattr(self.initial, "net", None)
            try:
                self.net.load_state_dict(unwrap(seg).state_dict())
            except (AttributeError, RuntimeError) as e:
                raise ValueError(
                    f'method "self_train": the segmenter of method.params.initial ({type(self.initial).__name__}) '
                    f"does not fit this config's model ({type(e).__name__}): use the model section it was trained "
                    "with"
                ) from None
        # the translator: the initial CycleGAN's source -> target generator, frozen
        self.translates = (
            params.translate_source and hasattr(self.initial, "translate") and hasattr(self.initial, "g_st")
        )
        self.teacher = frozen_copy(self.net)
        self.ema = frozen_copy(self.net) if self.agreement else None

    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": make_optimizer(self.net.parameters(), self.optim_cfg)}

    @torch.no_grad()
    def pseudo_labels(self, x_target: Tensor) -> tuple[Tensor, Tensor]:
        """(labels, mask of the pixels that count) for weak target images, from the teacher (+ the EMA)."""
        prob = main_output(self.teacher(x_target)).float().softmax(1)
        conf, label = prob.max(1)
        mask = conf >= self.threshold
        if self.ema is not None:
            mask &= main_output(self.ema(x_target)).argmax(1) == label
        return label, mask

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        source, target = batch["source"], batch["target"]
        if (
            self.round_steps and step > 0 and step % self.round_steps == 0
        ):  # a new round: the teacher catches up
            self.teacher.load_state_dict(unwrap(self.net).state_dict())
        x_s, y_s, x_t = source[Keys.IMAGE], source[Keys.LABEL], target[Keys.IMAGE]
        if self.translates:
            x_s = self.initial.translate(x_s)
        with ctx.autocast():
            label, mask = self.pseudo_labels(x_t)
        view = self.strong(x_t, label, mask, step_generator(self.seed, step, 0, ctx))
        with ctx.autocast():
            out_s, out_t = forward_many(self.net, x_s, view.image)
        logits_s = [o.float() for o in out_s] if isinstance(out_s, (list, tuple)) else out_s.float()
        sup = self.sup_loss(logits_s, y_s)
        tgt = masked_loss(main_output(out_t), view.target, view.mask)
        loss = sup + self.lambda_target * tgt
        ctx.backward(loss, "net", terms={"sup": sup, "target": tgt})
        if self.ema is not None:
            ema_update(self.ema, self.net, step, self.ema_decay)
        if self.round_steps == 0:
            ema_update(self.teacher, self.net, step, self.ema_decay)
        return {
            "loss": float(loss.detach()),
            "sup": float(sup.detach()),
            "target": float(tgt.detach()),
            "confident_fraction": float(mask.float().mean()),
        }

    def predict(self, image: Tensor) -> Tensor:
        return self.net(image)

    @property
    def size_divisor(self) -> int:
        return int(getattr(unwrap(self.net), "size_divisor", 1))
