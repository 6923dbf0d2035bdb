from __future__ import annotations

import numpy as np
import pytest

from weakseg.config import DataConfig
from weakseg.data import DataError, build_datasets, phantom_case
from weakseg.keys import Keys

SIZE = 64  # small for speed; the anatomy is resolution independent


@pytest.mark.parametrize("modality", ["ct", "mr"])
def test_deterministic(modality):
    a = phantom_case(2, modality, n_slices=4, size=SIZE, seed=5)
    b = phantom_case(2, modality, n_slices=4, size=SIZE, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = phantom_case(2, modality, n_slices=4, size=SIZE, seed=6)
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("modality", ["ct", "mr"])
@pytest.mark.parametrize("case", [0, 1, 7])
def test_labels_and_organ_sides(modality, case):
    image, label = phantom_case(case, modality, n_slices=8, size=SIZE)
    assert image.shape == label.shape == (8, SIZE, SIZE)
    assert image.dtype == np.float32 and label.dtype == np.int64 and np.isfinite(image).all()
    assert set(np.unique(label)) <= {0, 1, 2, 3, 4}
    mid = label[4]
    assert set(np.unique(mid)) == {0, 1, 2, 3, 4}  # all four organs in the middle slice
    col = {k: np.nonzero(mid == k)[1].mean() / SIZE for k in (1, 2, 3, 4)}
    row = {k: np.nonzero(mid == k)[0].mean() / SIZE for k in (2, 3)}
    assert col[1] < 0.5 and col[2] < 0.5  # liver and right kidney on the image left (radiological display)
    assert col[3] > 0.5 and col[4] > 0.5  # left kidney and spleen on the image right
    assert row[2] > 0.5 and row[3] > 0.5  # kidneys posterior (lower half)


def test_kidneys_only_in_lower_slices():
    _, label = phantom_case(0, "ct", n_slices=8, size=SIZE)
    assert not np.isin(label[0], (2, 3)).any()  # top slice: no kidneys
    assert (label == 1).sum(axis=(1, 2))[0] > (label == 1).sum(axis=(1, 2))[-1]  # liver shrinks inferiorly


def test_ct_and_mr_are_unpaired_and_in_their_units():
    ct, ct_label = phantom_case(0, "ct", n_slices=2, size=SIZE)
    mr, mr_label = phantom_case(0, "mr", n_slices=2, size=SIZE)
    assert not np.array_equal(ct_label, mr_label)  # different anatomy
    assert ct[:, 0, 0].mean() < -900  # air in HU
    assert ct[ct_label == 1].mean() == pytest.approx(60, abs=15)  # liver ~60 HU
    assert mr.min() >= 0  # Rician magnitude
    assert mr[mr_label == 1].mean() < mr[mr_label == 4].mean()  # T2: liver darker than spleen


def test_phantom_source_builds_datasets():
    cfg = DataConfig(
        phantom_cases=4, phantom_slices=3, phantom_size=SIZE, phantom_modality="mr", val_fraction=0.25
    )
    sets = build_datasets(cfg)
    assert sets["val"].case_ids and len(sets["labeled"]) == 9
    item = sets["labeled"][4]
    assert item[Keys.CASE_ID].startswith("mr_p") and item[Keys.NAME].endswith("_z001")
    assert (
        item[Keys.IMAGE].shape == (1, SIZE, SIZE)
        and 0 <= item[Keys.IMAGE].min() <= item[Keys.IMAGE].max() <= 1
    )


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"phantom_modality": "pet"}, "ct.* or .*mr"),
        ({"num_classes": 2, "class_names": ["a", "b"]}, "num_classes: 5"),
    ],
)
def test_phantom_config_errors(kw, match):
    with pytest.raises(DataError, match=match):
        build_datasets(DataConfig(**kw))
