"""The GAN update, written once: freeze D, step G, unfreeze D, step D on pooled fakes with ``fake.detach()``.

Every adversarial method (adapt/ CycleGAN, gans/ cGAN, semi-supervised adversarial training) builds its step
from these parts instead of re-writing the order (pytorch-CycleGAN's ``optimize_parameters``):

    judges = {"mr": Judge(self.d_mr, self.pool_mr)}                  # discriminators by the domain they judge
    def generator_loss() -> GeneratorOutput:                         # runs with every judge frozen
        fake = self.g(x)
        adv = adversarial_loss(self.d_mr, fake, self.gan)            # G wants D(fake) -> real
        return GeneratorOutput(adv + l1, {"adv": adv, "l1": l1}, fakes={"mr": fake})
    logs = gan_update(ctx, judges, {"mr": real_mr}, generator_loss, self.gan, g_opt="G", d_opt="D")

``gan_update`` = ``generator_step`` (judges frozen via ``ctx.requires_grad``, one backward of the generator
loss, the G optimizer(s) step; the discriminators get no gradient) followed by ``discriminator_step``
(each judge: 0.5 * (loss on real -> real + loss on pooled, detached fakes -> fake), summed, one backward, the D
optimizer steps). Conditional discriminators (pix2pix) pass the condition concatenated to ``real`` and to the
fakes; a pool of size 0 uses the current fakes.

Images go through GAN generators in [-1, 1] (tanh output): ``to_gan_range`` / ``from_gan_range`` map the data
range (e.g. [0, 1] after the intensity preset) there and back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from weakseg.losses.gan import GANLoss, ImagePool
from weakseg.methods.base import StepContext
from weakseg.methods.common import float_logits
from weakseg.nets.ddp import no_sync

__all__ = [
    "GeneratorOutput",
    "Judge",
    "adversarial_loss",
    "discriminator_loss",
    "discriminator_step",
    "from_gan_range",
    "gan_update",
    "generator_step",
    "to_gan_range",
]


class Judge(NamedTuple):
    """A discriminator and the pool of past fakes it is trained on (``ImagePool(0)``: no pool)."""

    net: nn.Module
    pool: ImagePool


class GeneratorOutput(NamedTuple):
    """What a generator-loss closure returns: the total loss, the logged terms, the fakes per judge name."""

    loss: Tensor
    terms: dict[str, Tensor]
    fakes: dict[str, Tensor]


def to_gan_range(x: Tensor, lo: float = 0.0, hi: float = 1.0) -> Tensor:
    """Map images from the data range [lo, hi] to the generators' [-1, 1]."""
    return (x - lo) * (2.0 / (hi - lo)) - 1.0


def from_gan_range(x: Tensor, lo: float = 0.0, hi: float = 1.0) -> Tensor:
    """Map generator outputs from [-1, 1] back to the data range [lo, hi]."""
    return (x + 1.0) * ((hi - lo) / 2.0) + lo


def adversarial_loss(disc: nn.Module, fake: Tensor, gan_loss: GANLoss) -> Tensor:
    """The generator's adversarial term: ``fake`` judged as real. ``disc`` must be frozen (inside
    ``generator_step``), else this term would also train the discriminator."""
    if any(p.requires_grad for p in disc.parameters()):
        raise RuntimeError(
            "adversarial_loss: the discriminator is not frozen, so the generator's loss would also train it; "
            "compute the generator loss inside generator_step / gan_update (they freeze every judge)"
        )
    return gan_loss(float_logits(disc(fake)), True, for_discriminator=False)


def discriminator_loss(disc: nn.Module, real: Tensor, fake: Tensor, gan_loss: GANLoss) -> Tensor:
    """0.5 * (real -> real + fake -> fake), as in CycleGAN; ``fake`` is detached so G gets no gradient."""
    loss_real = gan_loss(float_logits(disc(real)), True)
    loss_fake = gan_loss(float_logits(disc(fake.detach())), False)
    return 0.5 * (loss_real + loss_fake)


def _nets(judges: Mapping[str, Judge]) -> list[nn.Module]:
    return [j.net for j in judges.values()]


def generator_step(
    ctx: StepContext,
    judges: Mapping[str, Judge],
    generator_loss: Callable[[], GeneratorOutput],
    g_opt: str | Sequence[str],
) -> GeneratorOutput:
    """Freeze every judge, compute ``generator_loss()`` under autocast, backward, step ``g_opt``.

    The judges' parameters get no gradient (their ``.grad`` stays as it was) and their ``requires_grad``
    flags are restored afterwards."""
    with ctx.requires_grad(_nets(judges), False), no_sync(_nets(judges)):
        with ctx.autocast():
            out = generator_loss()
        missing = [name for name in judges if name not in out.fakes]
        if missing:
            raise KeyError(
                f"generator_loss returned fakes for {sorted(out.fakes)}, but the judges {missing} need theirs: "
                "return one fake batch per judge name in GeneratorOutput.fakes"
            )
        ctx.backward(out.loss, g_opt, terms=out.terms)
    return out


def discriminator_step(
    ctx: StepContext,
    judges: Mapping[str, Judge],
    reals: Mapping[str, Tensor],
    fakes: Mapping[str, Tensor],
    gan_loss: GANLoss,
    d_opt: str,
) -> dict[str, Tensor]:
    """Each judge on its real batch and on pooled, detached fakes; one backward of the sum; step ``d_opt``.

    Returns the loss per judge (keys ``D_<name>``)."""
    terms: dict[str, Tensor] = {}
    with ctx.autocast():
        for name, (disc, pool) in judges.items():
            terms[f"D_{name}"] = discriminator_loss(disc, reals[name], pool(fakes[name].detach()), gan_loss)
    ctx.backward(torch.stack(list(terms.values())).sum(), d_opt, terms=terms)
    return terms


def gan_update(
    ctx: StepContext,
    judges: Mapping[str, Judge],
    reals: Mapping[str, Tensor],
    generator_loss: Callable[[], GeneratorOutput],
    gan_loss: GANLoss,
    g_opt: str | Sequence[str] = "G",
    d_opt: str = "D",
) -> dict[str, float]:
    """One full GAN iteration in the fixed order; returns every term as a float plus ``loss_G``, ``loss_D``."""
    out = generator_step(ctx, judges, generator_loss, g_opt)
    d_terms = discriminator_step(ctx, judges, reals, out.fakes, gan_loss, d_opt)
    logs = {k: float(v.detach()) for k, v in {**out.terms, **d_terms}.items()}
    logs["loss_G"] = float(out.loss.detach())
    logs["loss_D"] = sum(float(v.detach()) for v in d_terms.values())
    return logs
