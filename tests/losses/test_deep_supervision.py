"""Deep supervision over a list, a stacked tensor and a plain tensor; weights and their errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from weakseg.losses import BoundaryLoss, CrossEntropyLoss, DeepSupervisionLoss


def _target() -> torch.Tensor:
    return torch.randint(0, 3, (2, 16, 16), generator=torch.Generator().manual_seed(0))


def _outputs() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(2, 3, s, s, generator=g) for s in (16, 8, 4)]


def _down(target: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(target[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()


WEIGHTS = [  # given weights, normalised weights used
    (None, [4 / 7, 2 / 7, 1 / 7]),
    ([1.0, 1.0, 0.0], [0.5, 0.5, 0.0]),
    ([2.0, 1.0, 1.0], [0.5, 0.25, 0.25]),
]


@pytest.mark.parametrize("weights,normalised", WEIGHTS)
def test_list_of_outputs(weights: list[float] | None, normalised: list[float]) -> None:
    target, outputs = _target(), _outputs()
    expected = sum(
        w * F.cross_entropy(out, _down(target, out.shape[-1])) for w, out in zip(normalised, outputs)
    )
    loss = DeepSupervisionLoss(CrossEntropyLoss(), weights)
    assert loss(outputs, target).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(tuple(outputs), target.unsqueeze(1)).item() == pytest.approx(expected.item(), rel=1e-6)


def test_stacked_tensor_like_dynunet() -> None:
    target = _target()
    stacked = torch.randn(2, 3, 3, 16, 16, generator=torch.Generator().manual_seed(2))  # B, S, C, H, W
    expected = sum(w * F.cross_entropy(stacked[:, i], target) for i, w in enumerate([4 / 7, 2 / 7, 1 / 7]))
    loss = DeepSupervisionLoss(CrossEntropyLoss())
    assert loss(stacked, target).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(stacked, target.unsqueeze(1)).item() == pytest.approx(expected.item(), rel=1e-6)


def test_plain_tensor_passes_through() -> None:
    target, logits = _target(), _outputs()[0]
    loss = DeepSupervisionLoss(CrossEntropyLoss(), [1.0, 0.5])
    assert loss(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)


def test_weight_count_mismatch_names_both_lengths() -> None:
    loss = DeepSupervisionLoss(CrossEntropyLoss(), [1.0, 0.5])
    with pytest.raises(ValueError, match="2 weights but the network returned 3 outputs"):
        loss(_outputs(), _target())


def test_unmatched_shapes_are_explained() -> None:
    with pytest.raises(ValueError, match="cannot match output"):
        DeepSupervisionLoss(CrossEntropyLoss())(
            torch.randn(2, 3, 8, 8), torch.zeros(2, 4, 4, 4, dtype=torch.long)
        )


def test_update_reaches_the_wrapped_loss() -> None:
    loss = DeepSupervisionLoss(BoundaryLoss(alpha_every=10))
    loss.update(20, 100)
    assert loss.loss.alpha == pytest.approx(0.98)
