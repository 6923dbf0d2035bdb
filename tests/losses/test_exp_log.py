"""Exponential logarithmic loss: a 2x2 example by hand; module and function agree."""

from __future__ import annotations

import math

import pytest
import torch

from weakseg.losses import ExpLogLoss, exp_log_loss

LN3 = math.log(3.0)


def _example() -> tuple[torch.Tensor, torch.Tensor]:
    # background logit 0; foreground p1 = [[1/4, 3/4], [1/2, 3/4]]
    logits = torch.stack([torch.zeros(2, 2), torch.tensor([[-LN3, LN3], [0.0, LN3]])]).unsqueeze(0)
    target = torch.tensor([[[0, 1], [1, 1]]])
    return logits, target


def test_two_by_two_by_hand() -> None:
    dice0 = (2 * 3 / 4 + 1) / (1 + 7 / 4 + 1)  # = 2/3: one pixel of class 0 with p0 = 3/4, sum p0 = 7/4
    dice1 = (2 * 2 + 1) / (3 + 9 / 4 + 1)  # = 0.8: three pixels, sum of their p1 = 2, sum p1 = 9/4
    l_dice = ((-math.log(dice0)) ** 0.3 + (-math.log(dice1)) ** 0.3) / 2
    w0, w1 = math.sqrt(4 / 1), math.sqrt(4 / 3)  # f = (1, 3)
    l_cross = (w0 * math.log(4 / 3) ** 0.3 + w1 * (2 * math.log(4 / 3) ** 0.3 + math.log(2) ** 0.3)) / 4
    expected = 0.8 * l_dice + 0.2 * l_cross
    logits, target = _example()
    assert exp_log_loss(logits, target).item() == pytest.approx(expected, rel=1e-5)
    assert ExpLogLoss()(logits, target).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"w_dice": 0.5, "w_cross": 0.5, "gamma_dice": 1.0, "gamma_cross": 2.0},
        {"frequencies": [10.0, 1.0, 5.0], "smooth": 0.5},
    ],
)
def test_module_agrees_with_function(kwargs: dict) -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 3, 6, 6, generator=g), torch.randint(0, 3, (2, 6, 6), generator=g)
    module = ExpLogLoss(**kwargs)(logits, target)
    assert module.item() == pytest.approx(exp_log_loss(logits, target, **kwargs).item(), rel=1e-6)


def test_gradient_is_finite_at_a_confident_prediction() -> None:
    target = torch.tensor([[[0, 1], [1, 1]]])
    logits = (60.0 * torch.nn.functional.one_hot(target, 2).movedim(-1, 1).float()).requires_grad_()
    exp_log_loss(logits, target).backward()
    assert torch.isfinite(logits.grad).all()


def test_bad_frequencies() -> None:
    with pytest.raises(ValueError, match="frequencies has 2 entries but there are 3 classes"):
        ExpLogLoss(frequencies=[1.0, 2.0], num_classes=3)
    with pytest.raises(ValueError, match="frequencies must be 3 values"):
        exp_log_loss(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), frequencies=[1.0, 2.0])
