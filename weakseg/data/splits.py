"""Case-wise splits: samples of one case (patient / volume) always land in the same split.

Cases are sorted, then shuffled by ``random.Random(seed)``: the first ``n_test`` go to test, the next ``n_val``
to val, the rest to train. The labeled subset is the first ``n_labeled`` train cases of a second permutation
seeded by ``seed``, so smaller labeled fractions are subsets of larger ones (nested scarce-label runs), and the
val/test cases do not depend on ``labeled_fraction``.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Iterable

__all__ = ["labeled_cases", "split_cases"]


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))  # round half up; Python's round() would round 2.5 to 2


def split_cases(
    case_ids: Iterable[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Split unique case ids into ``{"train", "val", "test"}`` (each sorted).

    ``n_val = round(val_fraction * n)``, at least 1 when ``val_fraction > 0`` and there are >= 2 cases; the same
    for test when a case is left for training. Train always keeps at least one case.
    """
    cases = sorted(set(case_ids))
    n = len(cases)
    n_val = max(1, _round(val_fraction * n)) if val_fraction > 0 and n >= 2 else 0
    n_test = max(1, _round(test_fraction * n)) if test_fraction > 0 and n - n_val >= 2 else 0
    while n_val + n_test >= n and n_val + n_test > 0:  # keep >= 1 training case; shrink test first
        if n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    if n and (val_fraction > 0 and n_val == 0 or test_fraction > 0 and n_test == 0):
        warnings.warn(
            f"only {n} case(s): val gets {n_val} and test gets {n_test} despite data.val_fraction={val_fraction} "
            f"and data.test_fraction={test_fraction}, so that training keeps a case; add cases to evaluate",
            stacklevel=2,
        )
    order = cases[:]
    random.Random(seed).shuffle(order)
    return {
        "train": sorted(order[n_test + n_val :]),
        "val": sorted(order[n_test : n_test + n_val]),
        "test": sorted(order[:n_test]),
    }


def labeled_cases(
    train_cases: Iterable[str], labeled_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """``(labeled, unlabeled)`` train cases: ``round(labeled_fraction * n)`` labeled, at least 1 (if any)."""
    if not 0.0 < labeled_fraction <= 1.0:
        raise ValueError(f"data.labeled_fraction must be in (0, 1], got {labeled_fraction}")
    cases = sorted(set(train_cases))
    n_labeled = min(len(cases), max(1, _round(labeled_fraction * len(cases)))) if cases else 0
    order = cases[:]
    random.Random(f"labeled-{seed}").shuffle(order)
    return sorted(order[:n_labeled]), sorted(order[n_labeled:])
