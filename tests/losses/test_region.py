"""MONAI adapters: same values as MONAI with one-hot + softmax, label maps of either shape."""

from __future__ import annotations

import monai.losses
import pytest
import torch

from weakseg.losses import DiceCELoss, DiceLoss, FocalLoss, GeneralizedDiceLoss, TverskyLoss

ADAPTERS = [  # ours, the MONAI loss it must equal
    (DiceLoss(), monai.losses.DiceLoss(include_background=False, to_onehot_y=True, softmax=True)),
    (
        TverskyLoss(),
        monai.losses.TverskyLoss(
            include_background=False, to_onehot_y=True, softmax=True, alpha=0.3, beta=0.7
        ),
    ),
    (
        GeneralizedDiceLoss(),
        monai.losses.GeneralizedDiceLoss(include_background=False, to_onehot_y=True, softmax=True),
    ),
    (FocalLoss(), monai.losses.FocalLoss(to_onehot_y=True, use_softmax=True, gamma=2.0)),
    (
        DiceCELoss(lambda_ce=0.5),
        monai.losses.DiceCELoss(include_background=False, to_onehot_y=True, softmax=True, lambda_ce=0.5),
    ),
]


@pytest.mark.parametrize("ours,reference", ADAPTERS, ids=lambda m: type(m).__name__)
def test_adapter_equals_monai(ours: torch.nn.Module, reference: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 3, (2, 8, 8), generator=g)
    expected = reference(logits, target.unsqueeze(1))
    assert ours(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_tversky_with_equal_weights_is_dice() -> None:
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 3, (2, 8, 8), generator=g)
    tversky = TverskyLoss(alpha=0.5, beta=0.5)(logits, target)
    assert tversky.item() == pytest.approx(DiceLoss()(logits, target).item(), rel=1e-5)


@pytest.mark.parametrize(
    "ctor,kwargs,match",
    [
        (TverskyLoss, {"alpha": 0.0, "beta": 0.0}, "positive sum"),
        (DiceLoss, {"sigmoid": True}, '"sigmoid" is fixed'),
        (FocalLoss, {"use_softmax": False}, '"use_softmax" is fixed'),
        (GeneralizedDiceLoss, {"w_typ": "simple"}, 'Did you mean "w_type"'),
    ],
)
def test_bad_flags(ctor: type, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ctor(**kwargs)
