"""Data-efficient GAN training: DiffAugment draws the same transforms for the real and the fake batch of a
step and lets gradients through; colour touches only the image channels; the EMA generator updates exactly."""

from __future__ import annotations

import pytest
import torch

from weakseg.config import load_config
from weakseg.data import build_datasets
from weakseg.engine.streams import BatchStream
from weakseg.methods import StepContext, build_method
from weakseg.nets.diffaug import DiffAugmented, diff_augment

pytestmark = pytest.mark.usefixtures("one_thread")


def test_same_draws_for_real_and_fake_and_differentiable():
    judge = DiffAugmented(torch.nn.Identity(), ("translation", "cutout", "color"), color=(1, 2))
    real = torch.rand(4, 2, 16, 16)
    fake = real.clone().requires_grad_()
    judge.reseed(3)
    step3 = judge(real)
    assert torch.equal(step3, judge(fake).detach())  # within a step: sample i gets one transform
    judge.reseed(4)
    assert not torch.equal(judge(real), step3)  # the next step draws anew
    (judge(fake) * torch.rand(4, 2, 16, 16)).sum().backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_colour_only_on_its_channels_and_translation_only_moves_pixels():
    x = torch.rand(3, 2, 12, 12)
    out = diff_augment(x, ("color",), torch.Generator().manual_seed(0), color=(1, 2))
    assert torch.equal(out[:, :1], x[:, :1]) and not torch.allclose(out[:, 1:], x[:, 1:])
    moved = diff_augment(x, ("translation",), torch.Generator().manual_seed(1))
    for i in range(3):  # every output value is an input value or the zero fill
        assert bool(torch.isin(moved[i], torch.cat([x[i].flatten(), torch.zeros(1)])).all())


def test_ema_generator_updates_exactly(tiny_cfg_path):
    cfg = load_config(tiny_cfg_path, ["method.name=cgan", "method.params={ngf: 8, ndf: 8, num_downs: 5, "
                                      "diffaugment: [translation, cutout, color], ema_decay: 0.9}",
                                      "data.phantom_size=32"])  # fmt: skip
    torch.manual_seed(0)
    method = build_method(cfg)
    batch = {"labeled": next(BatchStream(build_datasets(cfg.data)["labeled"], 2, seed=0, size_divisor=32))}
    ctx = StepContext(torch.device("cpu"), method.configure_optimizers(), max_steps=10)
    for step in range(3):
        ctx.step = step
        old = [t.detach().clone() for t in method.g_ema.parameters()]
        method.train_step(batch, step, ctx)
        a = min(1 - 1 / (step + 1), 0.9)
        for o, new, live in zip(old, method.g_ema.parameters(), method.g.parameters()):
            assert torch.equal(new, o.mul(a).add(live.detach(), alpha=1 - a))
    assert not any(p.requires_grad for p in method.g_ema.parameters())


@pytest.mark.parametrize(
    ("method", "params", "match"),
    [
        ("cgan", "{diffaugment: [rotate]}", "not allowed here; choose from translation, cutout, color"),
        ("dual_gan", "{label_diffaugment: [color]}", "not allowed here; choose from translation, cutout"),
        ("cgan", "{ema_decay: 1.5}", "ema_decay must be a number in"),
    ],
)
def test_bad_params(tiny_cfg_path, method, params, match):
    with pytest.raises(ValueError, match=match):
        build_method(load_config(tiny_cfg_path, [f"method.name={method}", f"method.params={params}"]))
