"""Every registered loss, generated from the registry: 2D and 3D forward/backward, build_loss behaviour."""

from __future__ import annotations

import pytest
import torch

from weakseg.config import LossConfig
from weakseg.losses import LOSSES, DeepSupervisionLoss, build_loss

SHAPES = [(2, 3, 16, 16), (1, 3, 8, 8, 8)]


def _batch(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g, requires_grad=True)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    return logits, target


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "3d"])
@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_runs_forward_backward(name: str, shape: tuple[int, ...]) -> None:
    loss = build_loss(LossConfig(name=name), num_classes=shape[1])
    if hasattr(loss, "update"):
        loss.update(10_000, 10_000)  # late in training: every scheduled term is active
    logits, target = _batch(shape)
    value = loss(logits, target)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # the (B, 1, *spatial) target form gives the same value
    assert torch.allclose(loss(logits, target.unsqueeze(1)), value)


HIGH = 20.0  # logits of a confident, perfect prediction

PERFECT = [  # name, params, tolerance
    ("ce", {}, 1e-4),
    ("weighted_ce", {}, 1e-4),
    ("balanced_ce", {}, 1e-4),
    ("border_ce", {}, 1e-3),
    ("dice", {}, 1e-4),
    ("tversky", {}, 1e-4),
    ("generalized_dice", {}, 1e-4),
    ("focal", {}, 1e-4),
    ("dice_ce", {}, 1e-4),
    ("exp_log", {}, 0.05),  # -ln p is clamped to >= 1e-6 and (1e-6)^0.3 = 0.016
]


@pytest.mark.parametrize("name,params,tol", PERFECT, ids=[p[0] for p in PERFECT])
def test_perfect_prediction_is_near_zero(name: str, params: dict, tol: float) -> None:
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 1:4, 1:4] = 1
    target[:, 5:7, 4:8] = 2
    logits = HIGH * torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float()
    value = build_loss(LossConfig(name=name, params=params), num_classes=3)(logits, target)
    assert 0.0 <= value.item() < tol


def test_build_loss_wraps_deep_supervision() -> None:
    loss = build_loss(LossConfig(name="dice", deep_supervision_weights=[1.0, 0.5]), num_classes=3)
    assert isinstance(loss, DeepSupervisionLoss) and loss.weights == [1.0, 0.5]
    plain = build_loss(
        LossConfig(name="dice"), num_classes=3
    )  # always wrapped; tensors pass straight through
    assert isinstance(plain, DeepSupervisionLoss) and plain.weights is None


def test_build_loss_passes_num_classes() -> None:
    with pytest.raises(ValueError, match="3 entries but there are 4 classes"):
        build_loss(LossConfig(name="weighted_ce", params={"class_weights": [1, 2, 3]}), num_classes=4)
    with pytest.raises(ValueError, match="data.num_classes=3"):
        build_loss(LossConfig(name="weighted_ce", params={"num_classes": 5}), num_classes=3)


BAD_CONFIGS = [  # name, params, error type, message fragment
    ("dcie", {}, KeyError, 'Did you mean "dice"'),
    ("ce", {"label_smothing": 0.1}, ValueError, 'Did you mean "label_smoothing"'),
    ("focal", {"gama": 2.0}, ValueError, 'Did you mean "gamma"'),
    ("dice", {"softmax": False}, ValueError, "fixed by weakseg"),
    ("dice_ce", {"to_onehot_y": False}, ValueError, "fixed by weakseg"),
    ("tversky", {"alpha": -0.1}, ValueError, "alpha and beta must be >= 0"),
    ("focal", {"gamma": -1.0}, ValueError, "gamma must be >= 0"),
    ("weighted_ce", {"class_weights": "inverse"}, ValueError, '"frequency", got "inverse"'),
    ("border_ce", {"class_weights": [1.0]}, ValueError, "1 entries but there are 3 classes"),
    ("border_ce", {"sigma": 0}, ValueError, "sigma must be > 0"),
    ("boundary", {"alpha_every": 0}, ValueError, "alpha_every must be >= 1"),
    ("exp_log", {"gamma_dice": -0.3}, ValueError, "gamma_dice must be >= 0"),
    ("ce", {"label_smoothing": 1.5}, ValueError, "label_smoothing must be in"),
]


@pytest.mark.parametrize("name,params,error,match", BAD_CONFIGS)
def test_bad_flags_raise_clear_errors(name: str, params: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build_loss(LossConfig(name=name, params=params), num_classes=3)


def test_deep_supervision_weights_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive sum"):
        build_loss(LossConfig(name="ce", deep_supervision_weights=[]), num_classes=3)


def test_target_shape_mismatch_is_explained() -> None:
    loss = build_loss(LossConfig(name="dice"), num_classes=3)
    with pytest.raises(ValueError, match=r"target \(2, 8, 8\)"):
        loss(torch.randn(2, 3, 16, 16), torch.zeros(2, 8, 8, dtype=torch.long))
