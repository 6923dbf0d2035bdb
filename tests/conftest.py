"""Shared fixtures: CPU by default; ``device`` opts into CUDA and skips when absent (kornia style)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def device() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return torch.device("cuda")


@pytest.fixture
def tiny_cfg_path() -> Path:
    return REPO / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny batches: one torch thread is fastest and does not fight other jobs for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
