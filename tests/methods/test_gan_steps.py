"""The shared GAN update: D frozen (no gradient) in the G step, G untouched by the D step, fixed order,
hand-computed discriminator loss, range maps, and ctx.backward over several optimizers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weakseg.losses import GANLoss, ImagePool
from weakseg.methods import StepContext
from weakseg.methods.gan_steps import (
    GeneratorOutput,
    Judge,
    adversarial_loss,
    discriminator_step,
    from_gan_range,
    gan_update,
    generator_step,
    to_gan_range,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is fastest


class Recorder(nn.Module):
    """A 1x1-conv discriminator that records whether its weights required grad at each call."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.conv, self.log = nn.Conv2d(1, 1, 1), log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append("D(trainable)" if self.conv.weight.requires_grad else "D(frozen)")
        return self.conv(x)


def _setup(log: list[str]):
    torch.manual_seed(0)
    g, d = nn.Conv2d(1, 1, 3, padding=1), Recorder(log)
    opts = {"G": torch.optim.SGD(g.parameters(), lr=0.1), "D": torch.optim.SGD(d.parameters(), lr=0.1)}
    for name, opt in opts.items():
        step = opt.step
        opt.step = lambda *a, _n=name, _s=step, **k: (log.append(f"step {_n}"), _s(*a, **k))[1]
    ctx = StepContext(torch.device("cpu"), opts)
    x, real = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    gan = GANLoss("lsgan")

    def g_loss() -> GeneratorOutput:
        fake = g(x)
        adv = adversarial_loss(d, fake, gan)
        return GeneratorOutput(adv, {"adv": adv}, {"b": fake})

    return g, d, ctx, {"b": Judge(d, ImagePool(0))}, {"b": real}, gan, g_loss


def test_fixed_order_d_frozen_then_trained() -> None:
    log: list[str] = []
    g, d, ctx, judges, reals, gan, g_loss = _setup(log)
    logs = gan_update(ctx, judges, reals, g_loss, gan)
    assert log == ["D(frozen)", "step G", "D(trainable)", "D(trainable)", "step D"]
    assert set(logs) == {"adv", "D_b", "loss_G", "loss_D"}
    assert all(p.requires_grad for p in d.parameters())  # flags restored


def test_generator_step_gives_the_discriminator_no_gradient() -> None:
    g, d, ctx, judges, reals, gan, g_loss = _setup([])
    d_before = [p.detach().clone() for p in d.parameters()]
    g_before = [p.detach().clone() for p in g.parameters()]
    out = generator_step(ctx, judges, g_loss, "G")
    assert all(p.grad is None for p in d.parameters())
    assert all(torch.equal(a, b) for a, b in zip(d_before, d.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, g.parameters()))
    # the D step on the (detached) fakes trains D and leaves G alone
    g.zero_grad(set_to_none=True)
    g_after = [p.detach().clone() for p in g.parameters()]
    discriminator_step(ctx, judges, reals, out.fakes, gan, "D")
    assert all(p.grad is None for p in g.parameters())
    assert all(torch.equal(a, b) for a, b in zip(g_after, g.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d.parameters()))


@pytest.mark.parametrize(("mode", "expected"), [("lsgan", 0.5 * (0.75**2 + 0.25**2)), ("vanilla", None)])
def test_discriminator_loss_by_hand(mode: str, expected: float | None) -> None:
    """A discriminator that outputs 0.25 everywhere: 0.5 * (loss(real -> 1) + loss(fake -> 0))."""
    d = nn.Conv2d(1, 1, 1)
    nn.init.zeros_(d.weight)
    nn.init.constant_(d.bias, 0.25)
    ctx = StepContext(torch.device("cpu"), {"D": torch.optim.SGD(d.parameters(), lr=0.0)})
    x = torch.randn(2, 1, 4, 4)
    terms = discriminator_step(ctx, {"b": Judge(d, ImagePool(0))}, {"b": x}, {"b": x}, GANLoss(mode), "D")
    if expected is None:
        s = torch.tensor(0.25)
        expected = 0.5 * float(torch.nn.functional.softplus(-s) + torch.nn.functional.softplus(s))
    assert terms["D_b"].item() == pytest.approx(expected, rel=1e-6)


def test_adversarial_loss_refuses_an_unfrozen_discriminator() -> None:
    with pytest.raises(RuntimeError, match="not frozen"):
        adversarial_loss(nn.Conv2d(1, 1, 1), torch.zeros(1, 1, 2, 2), GANLoss())


def test_missing_fake_for_a_judge() -> None:
    g, d, ctx, judges, reals, gan, g_loss = _setup([])

    def no_fakes() -> GeneratorOutput:
        out = g_loss()
        return GeneratorOutput(out.loss, out.terms, {})

    with pytest.raises(KeyError, match=r"judges \['b'\] need theirs"):
        generator_step(ctx, judges, no_fakes, "G")
    assert all(p.requires_grad for p in d.parameters())


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (0.0, 255.0), (-1000.0, 1000.0)])
def test_gan_range_maps(lo: float, hi: float) -> None:
    x = torch.tensor([lo, (lo + hi) / 2, hi])
    assert torch.allclose(to_gan_range(x, lo, hi), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(from_gan_range(to_gan_range(x, lo, hi), lo, hi), x)


def test_backward_over_two_optimizers() -> None:
    a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    opts = {"a": torch.optim.SGD(a.parameters(), lr=0.1), "b": torch.optim.SGD(b.parameters(), lr=0.1)}
    ctx = StepContext(torch.device("cpu"), opts)
    before = [p.detach().clone() for p in (*a.parameters(), *b.parameters())]
    x = torch.ones(1, 2)
    ctx.backward((a(x) + b(x)).sum(), ("a", "b"))
    assert all(not torch.equal(p0, p) for p0, p in zip(before, (*a.parameters(), *b.parameters())))
    with pytest.raises(KeyError, match="no optimizer named \\['G'\\]; configure_optimizers returned a, b"):
        ctx.backward((a(x)).sum(), ("a", "G"))
