"""Shared by the semi-supervised tests: the tiny phantom config with half the cases unlabeled."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from weakseg.config import Config, load_config
from weakseg.data import build_datasets

SEMI = ["data.labeled_fraction=0.5", "data.phantom_cases=8", "train.save_pictures=false"]
TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"


def semi_cfg(tiny_cfg_path, method: str, *more: str) -> Config:
    return load_config(tiny_cfg_path, [*SEMI, f"method.name={method}", *more])


@pytest.fixture(scope="module")
def splits():
    """labeled / unlabeled / val datasets of the tiny semi-supervised phantoms."""
    return build_datasets(load_config(TINY, SEMI).data)


class LossSpy(torch.nn.Module):
    """Wraps a supervised loss and records (batch size of the main output, target) of every call."""

    def __init__(self, loss: torch.nn.Module) -> None:
        super().__init__()
        self.loss, self.seen = loss, []

    def forward(self, logits, label):
        main = logits[0] if isinstance(logits, (list, tuple)) else logits
        self.seen.append((main.shape[0], label))
        return self.loss(logits, label)
