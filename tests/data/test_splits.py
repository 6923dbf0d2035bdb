from __future__ import annotations

import pytest

from weakseg.data import labeled_cases, split_cases

CASES = [f"p{i:02d}" for i in range(10)]


@pytest.mark.parametrize(
    "n, val, test, expected",  # expected (train, val, test) case counts
    [
        (10, 0.2, 0.0, (8, 2, 0)),
        (10, 0.2, 0.1, (7, 2, 1)),
        (10, 0.25, 0.0, (7, 3, 0)),  # 2.5 rounds half up
        (10, 0.0, 0.0, (10, 0, 0)),
        (3, 0.1, 0.0, (2, 1, 0)),  # at least one val case
        (2, 0.2, 0.0, (1, 1, 0)),
        pytest.param(2, 0.2, 0.2, (1, 1, 0), marks=pytest.mark.filterwarnings("ignore:only 2")),  # no test
        (22, 0.2, 0.0, (18, 4, 0)),
    ],
)
def test_split_sizes(n, val, test, expected):
    split = split_cases([f"c{i}" for i in range(n)], val, test, seed=0)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == expected


def test_single_case_warns_and_trains():
    with pytest.warns(UserWarning, match="only 1 case"):
        split = split_cases(["a"], 0.2, 0.0, seed=0)
    assert split == {"train": ["a"], "val": [], "test": []}


def test_split_is_partition_seeded_and_ignores_order():
    a = split_cases(CASES + CASES, 0.2, 0.2, seed=3)  # repeated ids (many slices per case) count once
    b = split_cases(list(reversed(CASES)), 0.2, 0.2, seed=3)
    assert a == b
    assert sorted(a["train"] + a["val"] + a["test"]) == CASES
    others = [split_cases(CASES, 0.2, 0.2, seed=s)["val"] for s in range(1, 6)]
    assert any(o != a["val"] for o in others)


def test_test_split_does_not_depend_on_val_fraction():
    assert split_cases(CASES, 0.1, 0.2, seed=0)["test"] == split_cases(CASES, 0.3, 0.2, seed=0)["test"]


@pytest.mark.parametrize("fraction, n_labeled", [(1.0, 10), (0.5, 5), (0.25, 3), (0.01, 1)])
def test_labeled_fraction_counts(fraction, n_labeled):
    labeled, unlabeled = labeled_cases(CASES, fraction, seed=0)
    assert len(labeled) == n_labeled
    assert sorted(labeled + unlabeled) == CASES


def test_labeled_subsets_are_nested():
    small, _ = labeled_cases(CASES, 0.2, seed=1)
    large, _ = labeled_cases(CASES, 0.6, seed=1)
    assert set(small) <= set(large)


def test_labeled_fraction_out_of_range():
    with pytest.raises(ValueError, match="labeled_fraction"):
        labeled_cases(CASES, 0.0, seed=0)
