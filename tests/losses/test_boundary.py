"""Boundary loss: signed distance maps by hand, the alpha schedule, module/function agreement."""

from __future__ import annotations

import monai.losses
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from weakseg.losses import BoundaryLoss, boundary_alpha, boundary_loss, signed_distance_map


def test_signed_distance_map_on_a_row() -> None:
    fg = np.array([[0, 0, 1, 1, 1, 0]])
    sdm = signed_distance_map(np.stack([1 - fg, fg]))
    assert sdm.dtype == np.float32 and sdm.shape == (2, 1, 6)
    # outside: distance to the class; inside: -(distance to the outside - 1), so edge pixels are 0
    np.testing.assert_allclose(sdm[1, 0], [2, 1, 0, -1, 0, 1])
    np.testing.assert_allclose(sdm[0, 0], [-1, 0, 1, 2, 1, 0])


def test_absent_or_full_class_map_is_zero() -> None:
    onehot = np.stack([np.ones((3, 3)), np.zeros((3, 3))])
    np.testing.assert_array_equal(signed_distance_map(onehot), np.zeros((2, 3, 3), dtype=np.float32))


def test_boundary_loss_hand_example() -> None:
    probs = torch.tensor([[[[0.5, 1.0], [0.0, 0.25]]]])
    sdm = torch.tensor([[[[2.0, -1.0], [3.0, 4.0]]]])
    assert boundary_loss(probs, sdm).item() == pytest.approx((1.0 - 1.0 + 0.0 + 1.0) / 4)
    with pytest.raises(ValueError, match="same shape"):
        boundary_loss(probs, sdm[..., :1])


ALPHAS = [  # step, alpha_step, alpha_every, alpha_min, expected alpha
    (0, 0.01, 100, 0.01, 1.0),
    (99, 0.01, 100, 0.01, 1.0),
    (100, 0.01, 100, 0.01, 0.99),
    (250, 0.01, 100, 0.01, 0.98),
    (9800, 0.01, 100, 0.01, 0.02),
    (9900, 0.01, 100, 0.01, 0.01),
    (50_000, 0.01, 100, 0.01, 0.01),
    (10, 0.25, 10, 0.1, 0.75),
    (30, 0.25, 10, 0.1, 0.25),
    (40, 0.25, 10, 0.1, 0.1),
]


@pytest.mark.parametrize("step,alpha_step,alpha_every,alpha_min,expected", ALPHAS)
def test_alpha_schedule(
    step: int, alpha_step: float, alpha_every: int, alpha_min: float, expected: float
) -> None:
    assert boundary_alpha(step, alpha_step, alpha_every, alpha_min) == pytest.approx(expected)
    loss = BoundaryLoss(alpha_step, alpha_every, alpha_min)
    loss.update(step, 100_000)
    assert loss.alpha == pytest.approx(expected)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    target = torch.zeros(2, 10, 10, dtype=torch.long)
    target[0, 2:6, 2:6] = 1
    target[1, 4:9, 1:5] = 2
    return torch.randn(2, 3, 10, 10, generator=g), target


def test_module_agrees_with_functions() -> None:
    logits, target = _batch()
    gd = monai.losses.GeneralizedDiceLoss(include_background=False, to_onehot_y=True, softmax=True)(
        logits, target.unsqueeze(1)
    )
    loss = BoundaryLoss()
    assert loss(logits, target).item() == pytest.approx(gd.item(), rel=1e-6)  # alpha = 1: GD only
    loss.update(5000, 10_000)
    onehot = F.one_hot(target, 3).movedim(-1, 1).numpy()
    sdm = torch.from_numpy(np.stack([signed_distance_map(o) for o in onehot]))[:, 1:]
    lb = boundary_loss(torch.softmax(logits, 1)[:, 1:], sdm)
    expected = 0.5 * gd + 0.5 * lb
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"alpha_min": 1.5}, "alpha_min must be in"), ({"alpha_step": -0.1}, "alpha_step must be >= 0")],
)
def test_bad_flags(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BoundaryLoss(**kwargs)


@pytest.mark.skipif(not hasattr(monai.losses, "BoundaryLoss"), reason="MONAI without BoundaryLoss")
def test_boundary_term_matches_monai() -> None:
    logits, target = _batch()
    reference = monai.losses.BoundaryLoss(include_background=False, to_onehot_y=True, softmax=True)
    onehot = F.one_hot(target, 3).movedim(-1, 1).numpy()
    sdm = torch.from_numpy(np.stack([signed_distance_map(o) for o in onehot]))[:, 1:]
    ours = boundary_loss(torch.softmax(logits, 1)[:, 1:], sdm)
    assert ours.item() == pytest.approx(reference(logits, target).item(), rel=1e-5)
