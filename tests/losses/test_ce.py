"""Cross-entropy family: hand-computed balanced CE, frequency weights, module/function agreement."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from weakseg.losses import (
    BalancedCrossEntropyLoss,
    CrossEntropyLoss,
    WeightedCrossEntropyLoss,
    balanced_cross_entropy,
    inverse_frequency_weights,
)

LN3 = math.log(3.0)


def test_balanced_ce_hand_example() -> None:
    # one row of 4 pixels, 2 classes; background logit 0, foreground logits give p1 = 3/4, 1/2, 1/4, 1/2
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [LN3, 0.0, -LN3, 0.0]]).reshape(1, 2, 1, 4)
    target = torch.tensor([[[1, 0, 0, 0]]])
    beta = 3 / 4  # fraction of negative pixels
    expected = (
        -(beta * math.log(3 / 4) + (1 - beta) * (math.log(1 / 2) + math.log(3 / 4) + math.log(1 / 2))) / 4
    )
    assert balanced_cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-5)
    assert BalancedCrossEntropyLoss()(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_balanced_ce_averages_one_vs_rest_over_foreground() -> None:
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(2, 3, 5, 5, generator=g), torch.randint(0, 3, (2, 5, 5), generator=g)
    log_p = F.log_softmax(logits, 1)
    per_class = []
    for c in (1, 2):
        pos = (target == c).float()
        beta = 1 - pos.mean()
        log_not = torch.log1p(-log_p[:, c].exp())
        per_class.append(-(beta * pos * log_p[:, c] + (1 - beta) * (1 - pos) * log_not).mean())
    assert balanced_cross_entropy(logits, target).item() == pytest.approx(
        torch.stack(per_class).mean().item(), 1e-5
    )


WEIGHT_CASES = [  # target, num_classes, expected weights
    ([0, 0, 0, 1], 2, [2 * (4 / 3) / (4 / 3 + 4), 2 * 4 / (4 / 3 + 4)]),
    ([0, 0, 2, 2], 3, [1.0, 0.0, 1.0]),
    ([1, 1, 1, 1], 2, [0.0, 1.0]),
]


@pytest.mark.parametrize("target,num_classes,expected", WEIGHT_CASES)
def test_inverse_frequency_weights(target: list[int], num_classes: int, expected: list[float]) -> None:
    weights = inverse_frequency_weights(torch.tensor(target), num_classes)
    assert weights.tolist() == pytest.approx(expected, rel=1e-6)


def test_weighted_ce_agrees_with_functional() -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 3, 6, 6, generator=g), torch.randint(0, 3, (2, 6, 6), generator=g)
    freq = WeightedCrossEntropyLoss("frequency")(logits, target)
    expected = F.cross_entropy(logits, target, weight=inverse_frequency_weights(target, 3))
    assert freq.item() == pytest.approx(expected.item(), rel=1e-6)
    fixed = WeightedCrossEntropyLoss([1.0, 2.0, 4.0], num_classes=3)(logits, target)
    assert fixed.item() == pytest.approx(
        F.cross_entropy(logits, target, weight=torch.tensor([1.0, 2, 4])).item()
    )


def test_weighted_ce_checks_class_count_at_call() -> None:
    with pytest.raises(ValueError, match="2 entries but the logits have 3 classes"):
        WeightedCrossEntropyLoss([1.0, 2.0])(torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))


def test_ce_ignore_index() -> None:
    logits = torch.randn(1, 2, 2, 2)
    target = torch.tensor([[[0, 1], [255, 255]]])
    value = CrossEntropyLoss(ignore_index=255)(logits, target)
    assert value.item() == pytest.approx(
        F.cross_entropy(logits[..., 0, :], target[..., 0, :]).item(), rel=1e-6
    )
