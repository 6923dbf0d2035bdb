"""The shared abdominal CT set through the folder reader (skipped when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from weakseg.config import DataConfig
from weakseg.data import build_datasets
from weakseg.keys import Keys

CT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "abdominal_ct_mr" / "ct"


@pytest.mark.skipif(
    not (CT / "images").is_dir(), reason=f"shared data not found at {CT} (it lives beside the repo)"
)
def test_abdominal_ct_case_wise_split():
    cfg = DataConfig(source="folder", root=str(CT), val_fraction=0.2, test_fraction=0.1, labeled_fraction=0.5)
    sets = build_datasets(cfg)
    cases = [c for ds in sets.values() for c in ds.case_ids]
    assert len(cases) == len(set(cases)) == 22  # 22 patients, none in two splits
    assert [len(sets[k].case_ids) for k in ("labeled", "unlabeled", "val", "test")] == [8, 8, 4, 2]
    assert sum(len(ds) for ds in sets.values()) == 631
    item = sets["val"][0]  # decodes one slice only (lazy)
    assert item[Keys.IMAGE].shape == (1, 256, 256) and item[Keys.LABEL].max().item() <= 4
    assert item[Keys.CASE_ID] in sets["val"].case_ids and len(sets["val"]._cache) == 1
    assert Keys.LABEL not in sets["unlabeled"][0]
