"""Semi-supervised methods: labeled and unlabeled images in every batch (survey section III-D).

Streams ``labeled`` (``train.batch_size`` samples with labels) and ``unlabeled`` (``train.stream_batch_sizes
.unlabeled`` samples, default ``train.batch_size``; no label key) come from the core's labeled-fraction split
plus ``data.unlabeled_dirs``. Only labeled samples reach the supervised loss (``SemiMethod.supervised``).

* ``mean_teacher`` (Tarvainen & Valpola 2017, as in SSL4MIS): an EMA copy of the segmenter (the teacher) sees
  the unlabeled images with Gaussian noise; the student's softmax is pulled to the teacher's by a mean squared
  error weighted by ``consistency * exp(-5 (1 - t)^2)``, t = step / ``rampup_steps`` (capped at 1). After each
  optimizer step, teacher = a * teacher + (1 - a) * student with a = min(1 - 1 / (step + 1), ``ema_decay``)
  (parameters and floating-point buffers). ``predict_with``: teacher (default) or student.
* ``dan`` (Zhang et al. 2017, Deep Adversarial Networks): an evaluation network (``evaluation``
  discriminator) scores (image, segmentation) pairs; it learns to score the segmenter's pairs on labeled images
  as real and on unlabeled images as fake, and the segmenter minimises its supervised loss plus
  ``lambda_adv`` times the adversarial loss of its unlabeled pairs (from step ``adv_start``).
* ``hung`` (Hung et al. 2018): a fully convolutional discriminator (``fcn``) on class-probability maps learns
  one-hot ground truth as real and predictions (labeled and unlabeled) as fake, per pixel. The segmenter adds
  ``lambda_adv`` x adversarial loss on labeled predictions, ``lambda_adv_unlabeled`` x the same on unlabeled
  ones (from ``adv_start``), and from ``semi_start`` on ``lambda_semi`` x cross-entropy against its own argmax
  on unlabeled pixels whose discriminator confidence sigmoid(D(p)) exceeds ``threshold`` (T in the paper).

The adversarial methods are ``weakseg.methods.gan_base.GANMethod``s with the segmenter as the generator and
use the shared GAN update (``weakseg.methods.gan_steps.gan_update``): the discriminator is frozen during the
segmenter's step and trained afterwards on detached inputs with its own Adam (``d_lr``, ``d_betas``). The
segmenter uses the config's ``optim``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from weakseg.keys import Keys
from weakseg.losses.gan import ImagePool
from weakseg.methods.base import BuildContext, Method, StepContext, make_optimizer
from weakseg.methods.common import ema_update, float_logits, frozen_copy, main_output, one_hot, rank_slice
from weakseg.methods.gan_base import GANMethod
from weakseg.methods.gan_steps import GeneratorOutput, Judge, adversarial_loss, gan_update
from weakseg.methods.params import Check, custom, integer, is_number, number, param, rule
from weakseg.methods.supervised import FineTune, FineTuneParams
from weakseg.nets import build_discriminator
from weakseg.nets.ddp import unwrap

__all__ = [
    "DAN",
    "DANParams",
    "Hung",
    "HungParams",
    "MeanTeacher",
    "MeanTeacherParams",
    "SemiMethod",
    "optional_integer",
    "sigmoid_rampup",
]


def sigmoid_rampup(step: int, rampup_steps: int) -> float:
    """exp(-5 (1 - t)^2) with t = step / rampup_steps capped at 1 (Laine & Aila; mean teacher)."""
    if rampup_steps <= 0:
        return 1.0
    t = min(1.0, max(0.0, step / rampup_steps))
    return math.exp(-5.0 * (1.0 - t) ** 2)


def _same_size_cat(a: Tensor, b: Tensor) -> Tensor:
    """Concatenate two batches of maps, cropped to their common height and width (the streams may be padded
    to different sizes)."""
    h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])
    return torch.cat([a[:, :, :h, :w], b[:, :, :h, :w]], 0)


def optional_integer(low: int) -> Check:
    """An integer >= ``low``, or null for the method's default (e.g. a fraction of ``train.max_steps``)."""
    inner = integer(low)
    return custom(lambda p, key, value: None if value is None else inner(p, key, value), inner.bad)


class SemiMethod(Method):
    """Shared parts: the segmenter ``net``, its supervised loss on labeled samples only, ``predict``. A
    subclass names its params dataclass (a ``FineTuneParams``: the fine-tuning keys of a pretrained encoder,
    weakseg/methods/supervised.py, for every method) as ``params_class``."""

    streams = ("labeled", "unlabeled")

    def __init__(self, ctx: BuildContext, params: FineTuneParams) -> None:
        super().__init__()
        self.name = ctx.method  # the registered name, for messages
        self.optim_cfg = ctx.optim
        self.num_classes = ctx.num_classes
        self.seed = ctx.seed
        self.net = ctx.segmenter()
        self.sup_loss = ctx.make_loss()
        self.finetune = FineTune(self.net, ctx.network, params)
        self.ddp_find_unused = self.finetune.ddp_find_unused

    def supervised(self, logits: Tensor | list[Tensor], labeled: dict, step: int, max_steps: int) -> Tensor:
        """The supervised loss: labeled samples only (the unlabeled stream has no label key)."""
        if hasattr(self.sup_loss, "update"):
            self.sup_loss.update(step, max_steps)
        return self.sup_loss(float_logits(logits), labeled[Keys.LABEL])

    def segmenter_optimizer(self, *nets: torch.nn.Module) -> Optimizer:
        """One optimizer over ``nets`` (default the segmenter), encoder param groups at ``encoder_lr_scale``."""
        groups = [g for n in (nets or (self.net,)) for g in self.finetune.param_groups(n, self.optim_cfg.lr)]
        return make_optimizer(groups, self.optim_cfg)

    def predict(self, image: Tensor) -> Tensor:
        return self.net(image)

    @property
    def size_divisor(self) -> int:
        return int(getattr(unwrap(self.net), "size_divisor", 1))


@dataclass
class MeanTeacherParams(FineTuneParams):
    ema_decay: float = param(0.99, number(0.0, 1.0), "the teacher's EMA decay: min(1 - 1 / (step + 1), this)")
    consistency: float = param(1.0, number(), "weight of the student-teacher mean squared error")
    rampup_steps: int | None = param(
        None, optional_integer(0), "steps of the consistency weight's sigmoid ramp-up (null: 40% of the run)"
    )
    noise_std: float = param(0.1, number(), "std of the Gaussian noise on the teacher's unlabeled images")
    predict_with: str = param(
        "teacher",
        rule(lambda v: v in ("teacher", "student"), "teacher or student", ("both",)),
        "the network evaluation and predict use: teacher or student",
    )


class MeanTeacher(SemiMethod):
    params_class = MeanTeacherParams

    def __init__(self, ctx: BuildContext, params: MeanTeacherParams) -> None:
        super().__init__(ctx, params)
        self.ema_decay = params.ema_decay
        self.consistency = params.consistency
        default_rampup = int(0.4 * ctx.max_steps)  # SSL4MIS ramps up over ~40% of the run
        self.rampup_steps = default_rampup if params.rampup_steps is None else params.rampup_steps
        self.noise_std = params.noise_std
        self.predict_with = params.predict_with
        self.teacher = frozen_copy(self.net)

    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": self.segmenter_optimizer()}

    def _noisy(self, x: Tensor, step: int, rank: int = 0, world: int = 1) -> Tensor:
        """x + clamp(N(0, noise_std^2), +-2 noise_std), seeded by the step (exact resume); drawn for the global
        batch, this rank's block kept."""
        if not self.noise_std:
            return x
        g = torch.Generator(device="cpu").manual_seed(7919 * step + 1)
        noise = torch.randn((x.shape[0] * world, *x.shape[1:]), generator=g)[
            rank * x.shape[0] : (rank + 1) * x.shape[0]
        ]
        noise = noise.to(x.device, x.dtype) * self.noise_std
        return x + noise.clamp(-2 * self.noise_std, 2 * self.noise_std)

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        self.finetune.apply(step, self.net)
        weight = self.consistency * sigmoid_rampup(step, self.rampup_steps)
        with ctx.autocast():
            logits_l = self.net(labeled[Keys.IMAGE])
            student_u = main_output(self.net(unlabeled[Keys.IMAGE])).float().softmax(1)
            with torch.no_grad():
                noisy = self._noisy(unlabeled[Keys.IMAGE], step, *rank_slice(ctx))
                teacher_u = main_output(self.teacher(noisy)).float().softmax(1)
        sup = self.supervised(logits_l, labeled, step, ctx.max_steps)
        cons = F.mse_loss(student_u, teacher_u)
        loss = sup + weight * cons
        ctx.backward(loss, "net", terms={"sup": sup, "consistency": cons})
        self.update_teacher(step)
        return {
            "loss": float(loss.detach()),
            "sup": float(sup.detach()),
            "consistency": float(cons.detach()),
            "consistency_weight": weight,
        }

    def update_teacher(self, step: int) -> None:
        ema_update(self.teacher, self.net, step, self.ema_decay)

    def predict(self, image: Tensor) -> Tensor:
        return (self.teacher if self.predict_with == "teacher" else self.net)(image)


def _betas(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(is_number(b) and 0 <= b < 1 for b in value)
    )


@dataclass
class _AdversarialParams(FineTuneParams):
    d_lr: float = param(1e-4, number(1e-12), "Adam learning rate of the discriminator")
    d_betas: list[float] = param(
        [0.9, 0.99],
        rule(_betas, "two numbers in [0, 1)", ([0.9], [0.9, 1.0])),
        "Adam betas of the discriminator",
    )


class _Adversarial(SemiMethod, GANMethod):
    """Segmenter (the generator, optimizer ``net``) + one discriminator (optimizer ``D``) trained with the
    shared GAN update; vanilla GAN loss = BCE on logits."""

    def __init__(self, ctx: BuildContext, params: _AdversarialParams, disc: torch.nn.Module) -> None:
        super().__init__(ctx, params)
        self.disc = disc
        betas = (float(params.d_betas[0]), float(params.d_betas[1]))
        self.init_gan("vanilla", params.d_lr, betas)
        self.pool = ImagePool(0)

    @property
    def judges(self) -> dict[str, Judge]:
        return {"D": Judge(self.disc, self.pool)}  # built on use: self.disc may be DDP-wrapped

    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": self.segmenter_optimizer(), "D": self.adam(self.disc)}

    def _segment(self, labeled: dict, unlabeled: dict, step: int, ctx: StepContext) -> tuple[Tensor, ...]:
        """The segmenter on both streams, inside the G step: (supervised loss, labeled softmax, unlabeled
        full-resolution logits in float32)."""
        logits_l, logits_u = self.net(labeled[Keys.IMAGE]), self.net(unlabeled[Keys.IMAGE])
        sup = self.supervised(logits_l, labeled, step, ctx.max_steps)
        return sup, main_output(logits_l).float().softmax(1), main_output(logits_u).float()

    def _update(self, ctx: StepContext, generator_loss, reals: dict[str, Any]) -> dict[str, float]:
        """``gan_update`` with the segmenter as the generator; ``reals`` may be filled by ``generator_loss``.
        Logs every term and ``loss``, the segmenter's total."""
        logs = gan_update(ctx, self.judges, reals, generator_loss, self.gan_loss, "net", "D")
        del logs["loss_D"]
        logs["loss"] = logs.pop("loss_G")
        return logs


@dataclass
class DANParams(_AdversarialParams):
    lambda_adv: float = param(0.1, number(), "weight of the adversarial loss of the unlabeled pairs")
    adv_start: int = param(0, integer(0), "first step of the adversarial loss")
    ndf: int = param(32, integer(1), "filters of the evaluation network's first layer")
    n_layers: int = param(4, integer(1), "conv layers of the evaluation network")


class DAN(_Adversarial):
    params_class = DANParams

    def __init__(self, ctx: BuildContext, params: DANParams) -> None:
        channels = ctx.in_channels + ctx.num_classes
        disc = build_discriminator("evaluation", channels, ndf=params.ndf, n_layers=params.n_layers)
        super().__init__(ctx, params, disc)
        self.lambda_adv = params.lambda_adv
        self.adv_start = params.adv_start

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        self.finetune.apply(step, self.net)
        x_l, x_u = labeled[Keys.IMAGE], unlabeled[Keys.IMAGE]
        reals: dict[str, Tensor] = {}
        weight = self.lambda_adv if step >= self.adv_start else 0.0

        def generator_loss() -> GeneratorOutput:
            sup, p_l, main_u = self._segment(labeled, unlabeled, step, ctx)
            fake = torch.cat([x_u.float(), main_u.softmax(1)], 1)
            reals["D"] = torch.cat([x_l.float(), p_l.detach()], 1)  # labeled pairs: "real" for the evaluator
            adv = adversarial_loss(self.disc, fake, self.gan_loss)
            return GeneratorOutput(sup + weight * adv, {"sup": sup, "adv": adv}, {"D": fake})

        return self._update(ctx, generator_loss, reals)


@dataclass
class HungParams(_AdversarialParams):
    lambda_adv: float = param(0.01, number(), "weight of the adversarial loss of labeled predictions")
    lambda_adv_unlabeled: float = param(0.001, number(), "weight of the adversarial loss of unlabeled ones")
    lambda_semi: float = param(0.1, number(), "weight of self-training on confident unlabeled pixels")
    threshold: float = param(0.2, number(0.0, 1.0), "confidence sigmoid(D) a pixel needs for self-training")
    adv_start: int = param(0, integer(0), "first step of the unlabeled adversarial loss")
    semi_start: int = param(0, integer(0), "first step of the self-training loss")
    ndf: int = param(64, integer(1), "filters of the discriminator's first layer")


class Hung(_Adversarial):
    params_class = HungParams

    def __init__(self, ctx: BuildContext, params: HungParams) -> None:
        disc = build_discriminator("fcn", ctx.num_classes, ndf=params.ndf)
        super().__init__(ctx, params, disc)
        self.lambda_adv = params.lambda_adv
        self.lambda_adv_unlabeled = params.lambda_adv_unlabeled
        self.lambda_semi = params.lambda_semi
        self.threshold = params.threshold
        self.adv_start = params.adv_start
        self.semi_start = params.semi_start
        self.confident_fraction = 0.0

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        labeled, unlabeled = batch["labeled"], batch["unlabeled"]
        self.finetune.apply(step, self.net)
        label = labeled[Keys.LABEL]
        real = one_hot(label, self.num_classes)
        use_u = step >= self.adv_start
        use_semi = step >= self.semi_start and self.lambda_semi > 0

        def generator_loss() -> GeneratorOutput:
            sup, p_l, main_u = self._segment(labeled, unlabeled, step, ctx)
            p_u = main_u.softmax(1)
            terms = {"sup": sup, "adv": adversarial_loss(self.disc, p_l, self.gan_loss)}
            loss = sup + self.lambda_adv * terms["adv"]
            if use_u:
                terms["adv_unlabeled"] = adversarial_loss(self.disc, p_u, self.gan_loss)
                loss = loss + self.lambda_adv_unlabeled * terms["adv_unlabeled"]
            if use_semi:
                with torch.no_grad():
                    confidence = torch.sigmoid(self.disc(p_u.detach()).float())[:, 0]
                    mask = confidence > self.threshold
                self.confident_fraction = float(mask.float().mean())
                pseudo = p_u.detach().argmax(1)
                ce = F.cross_entropy(main_u, pseudo, reduction="none")
                terms["semi"] = (ce * mask).sum() / mask.sum().clamp(min=1)
                loss = loss + self.lambda_semi * terms["semi"]
            fakes = _same_size_cat(p_l, p_u) if use_u else p_l
            return GeneratorOutput(loss, terms, {"D": fakes})

        logs = self._update(ctx, generator_loss, {"D": real})
        if use_semi:
            logs["confident_fraction"] = self.confident_fraction
        return logs
