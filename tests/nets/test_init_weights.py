from __future__ import annotations

import pytest
import torch
from torch import nn

from weakseg.nets import INIT_KINDS, init_weights


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(8, 64, 3), nn.BatchNorm2d(64), nn.InstanceNorm2d(64), nn.Linear(64, 64))


def test_normal_init_statistics() -> None:
    torch.manual_seed(0)
    net = init_weights(_net(), "normal", gain=0.02)
    conv, bn, _, lin = net
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert lin.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.count_nonzero(conv.bias) == 0 and torch.count_nonzero(bn.bias) == 0


@pytest.mark.parametrize("kind", INIT_KINDS)
def test_every_kind_runs_and_is_finite(kind: str) -> None:
    net = init_weights(_net(), kind)
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match='unknown init kind "uniform"'):
        init_weights(_net(), "uniform")
