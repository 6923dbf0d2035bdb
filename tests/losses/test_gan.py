"""GAN loss modes by hand; ImagePool returns a past image about half the time."""

from __future__ import annotations

import math

import pytest
import torch

from weakseg.losses import GANLoss, ImagePool

PRED = torch.tensor([[0.5, -1.0], [2.0, 0.0]])


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


GAN_CASES = [  # mode, real?, for_discriminator, expected
    ("lsgan", True, True, ((0.5 - 1) ** 2 + 4 + 1 + 1) / 4),
    ("lsgan", False, True, (0.25 + 1 + 4 + 0) / 4),
    ("vanilla", True, True, sum(_softplus(-x) for x in (0.5, -1.0, 2.0, 0.0)) / 4),
    ("vanilla", False, True, sum(_softplus(x) for x in (0.5, -1.0, 2.0, 0.0)) / 4),
    ("hinge", True, True, (0.5 + 2.0 + 0 + 1.0) / 4),
    ("hinge", False, True, (1.5 + 0 + 3.0 + 1.0) / 4),
    ("hinge", True, False, -(0.5 - 1.0 + 2.0 + 0.0) / 4),
]


@pytest.mark.parametrize("mode,real,for_d,expected", GAN_CASES)
def test_gan_loss_modes(mode: str, real: bool, for_d: bool, expected: float) -> None:
    loss = GANLoss(mode)
    assert loss(PRED, real, for_discriminator=for_d).item() == pytest.approx(expected, rel=1e-6)
    assert loss([PRED, PRED], real, for_discriminator=for_d).item() == pytest.approx(expected, rel=1e-6)


def test_gan_loss_bad_flags() -> None:
    with pytest.raises(ValueError, match="lsgan, vanilla, hinge"):
        GANLoss("wgan")
    with pytest.raises(ValueError, match="target_is_real=True"):
        GANLoss("hinge")(PRED, False, for_discriminator=False)


def test_pool_returns_a_past_image_about_half_the_time() -> None:
    pool = ImagePool(size=4, generator=torch.Generator().manual_seed(0))
    first = torch.arange(4.0).reshape(4, 1, 1, 1)
    assert torch.equal(pool(first), first)  # filling: returned as is
    seen = set(range(4))
    past = 0
    for i in range(4, 204):
        out = pool(torch.full((1, 1, 1, 1), float(i))).item()
        assert out in seen or out == i
        past += out != i
        seen.add(i)
    assert 70 <= past <= 130
    assert len(pool) == 4


def test_pool_of_size_zero_passes_through() -> None:
    images = torch.randn(3, 1, 4, 4, requires_grad=True)
    assert ImagePool(0)(images) is images


def test_pool_detaches() -> None:
    images = torch.randn(2, 1, 4, 4, requires_grad=True)
    assert not ImagePool(5)(images * 2).requires_grad
