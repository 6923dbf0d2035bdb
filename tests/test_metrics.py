"""Hand-computed metric values and the empty-mask policy (absent / missed / false positive)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from weakseg.metrics import MetricAccumulator, case_metrics, image_diagonal


def _a(rows: list[list[int]]) -> np.ndarray:
    return np.array(rows, dtype=np.int64)


def _square(shift: int = 0) -> np.ndarray:
    m = np.zeros((8, 8), dtype=np.int64)
    m[2:5, 2 + shift : 5 + shift] = 1
    return m


# pred, target, num_classes, expected dice per foreground class, expected iou
OVERLAP_CASES = [
    ("2x2 half", _a([[1, 1], [0, 0]]), _a([[1, 0], [1, 0]]), 2, [0.5], [1 / 3]),
    ("2x2 equal", _a([[1, 0], [0, 1]]), _a([[1, 0], [0, 1]]), 2, [1.0], [1.0]),
    (
        "4x4 two classes",  # class 1: |P|=4 |T|=6 overlap 4; class 2: |P|=4 |T|=2 overlap 2
        _a([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 0, 0], [0, 0, 0, 0]]),
        _a([[1, 1, 1, 2], [1, 1, 1, 2], [0, 0, 0, 0], [0, 0, 0, 0]]),
        3,
        [0.8, 2 / 3],
        [2 / 3, 0.5],
    ),
]


@pytest.mark.parametrize("case", OVERLAP_CASES, ids=[c[0] for c in OVERLAP_CASES])
def test_dice_iou(case: tuple) -> None:
    _, pred, target, nc, dice, iou = case
    r = case_metrics(pred, target, nc)
    np.testing.assert_allclose(r["dice"], dice)
    np.testing.assert_allclose(r["iou"], iou)
    assert r["present"].all()


# A 3x3 square and the same square one pixel to the right (x). Border pixels (8 each): from each border,
# 4 of 8 pixels lie on the other border (distance 0) and 4 are one step away -> HD95 = 1, ASSD = 8/16 = 0.5.
# Spacing (0.5, 3): the 4 off pixels are 3, 3, 3 and 0.5 away (the middle-right one is 0.5 below/above a
# corner of the other border) -> per direction 9.5, ASSD = 19/16; 95th percentile of {0,0,0,0,0.5,3,3,3} = 3.
SHIFT_CASES = [
    (None, 1.0, 0.5),
    ((2.0, 2.0), 2.0, 1.0),
    ((0.5, 3.0), 3.0, 19 / 16),
]


@pytest.mark.parametrize("spacing, hd95, assd", SHIFT_CASES)
def test_shifted_square_distances(spacing: tuple | None, hd95: float, assd: float) -> None:
    r = case_metrics(_square(1), _square(0), 2, spacing)
    assert r["dice"][0] == pytest.approx(2 * 6 / 18) and r["iou"][0] == pytest.approx(6 / 12)
    assert r["hd95"][0] == pytest.approx(hd95) and r["assd"][0] == pytest.approx(assd)


def test_volume_shift_along_z_uses_z_spacing() -> None:
    # 2x2x2 cubes overlapping in one z slice: 4 voxels per cube at distance 0, 4 at one slice (3 mm).
    a = np.zeros((4, 4, 4), dtype=np.int64)
    b = a.copy()
    a[0:2, 1:3, 1:3] = 1
    b[1:3, 1:3, 1:3] = 1
    r = case_metrics(a, b, 2, spacing=(3.0, 1.0, 1.0))
    assert r["dice"][0] == pytest.approx(0.5)
    assert r["hd95"][0] == pytest.approx(3.0) and r["assd"][0] == pytest.approx(1.5)


def test_empty_mask_policy() -> None:
    # class 1 in both (identical), 2 in the reference only, 3 in the prediction only, 4 in neither
    target = _a([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]])
    pred = _a([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 3]])
    for spacing, diag in [(None, math.sqrt(32)), ((2.0, 0.5), math.sqrt(68))]:
        r = case_metrics(pred, target, 5, spacing)
        np.testing.assert_allclose(r["dice"], [1, 0, 0, 1])
        np.testing.assert_allclose(r["iou"], [1, 0, 0, 1])
        np.testing.assert_allclose(r["hd95"], [0, diag, diag, 0])
        np.testing.assert_allclose(r["assd"], [0, diag, diag, 0])
        assert r["present"].tolist() == [True, True, True, False]
        assert r["in_target"].tolist() == [True, True, False, False]
        assert r["in_pred"].tolist() == [True, False, True, False]
        assert image_diagonal((4, 4), spacing) == pytest.approx(diag)
        assert not any(np.isnan(v).any() for v in r.values())

    acc = MetricAccumulator(5, ["bg", "a", "b", "c", "d"])
    acc.add("p1", pred, target)
    assert [row["status"] for row in acc.per_case()] == ["present", "missed", "false_positive", "absent"]
    s = acc.summary()
    assert (s["dice/a"], s["dice/b"], s["dice/c"]) == (1.0, 0.0, 0.0)
    assert s["mean_dice"] == pytest.approx(1 / 3), "absent class d is excluded, missed/false positive count"
    assert math.isnan(s["dice/d"]) and s["n_unmeasured_classes"] == 1
    assert (s["n_excluded_absent"], s["n_missed"], s["n_false_positive"]) == (1, 1, 1)


def _two_cases() -> MetricAccumulator:
    acc = MetricAccumulator(3, ["background", "liver", "spleen"])
    # p1: liver |P|=2 |T|=2 overlap 1 (dice 0.5, iou 1/3); spleen in neither -> absent
    acc.add("p1", _a([[1, 1, 0], [0, 0, 0]]), _a([[1, 0, 0], [1, 0, 0]]))
    # p2: liver perfect; spleen in the reference only -> missed
    acc.add("p2", torch.tensor([[1, 1, 0], [0, 0, 0]]), torch.tensor([[1, 1, 0], [0, 0, 2]]))
    return acc


def test_accumulator_means_over_cases() -> None:
    s = _two_cases().summary()
    assert s["dice/liver"] == pytest.approx(0.75) and s["iou/liver"] == pytest.approx(2 / 3)
    # p1 liver borders: one pixel each side is 1 away -> directed {0, 1}: 95th percentile 0.95, ASSD 0.5
    assert s["hd95/liver"] == pytest.approx(0.95 / 2) and s["assd/liver"] == pytest.approx(0.25)
    assert s["dice/spleen"] == 0.0 and s["hd95/spleen"] == pytest.approx(math.sqrt(13)), "p1 absent excluded"
    assert s["mean_dice"] == pytest.approx(0.375)
    assert s["mean_hd95"] == pytest.approx((0.475 + math.sqrt(13)) / 2)
    assert (s["n_cases"], s["n_excluded_absent"], s["n_missed"], s["n_false_positive"]) == (2, 1, 1, 0)


def test_csv_and_table(tmp_path) -> None:
    acc = _two_cases()
    path = acc.write_csv(tmp_path / "eval" / "per_case.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["case_id"], r["class"], r["status"]) for r in rows] == [
        ("p1", "liver", "present"),
        ("p1", "spleen", "absent"),
        ("p2", "liver", "present"),
        ("p2", "spleen", "missed"),
    ]
    assert float(rows[0]["dice"]) == pytest.approx(0.5)
    assert sorted(p.name for p in path.parent.iterdir()) == ["per_case.csv"], "no temp file left behind"
    table = acc.format_table()
    assert "liver" in table and "spleen" in table and "1 absent class entries" in table


ERROR_CASES = [
    (np.zeros((2, 2), int), np.zeros((2, 3), int), 2, r"\(2, 2\).*\(2, 3\)"),
    (_a([[0, 3]]), _a([[0, 1]]), 3, "label 3, outside"),
    (_a([[0, 1]]), _a([[-1, 1]]), 3, "label -1, outside"),
    (np.zeros((2, 2), np.float32), np.zeros((2, 2), int), 2, "integer class labels"),
]


@pytest.mark.parametrize("pred, target, nc, match", ERROR_CASES)
def test_input_validation(pred: np.ndarray, target: np.ndarray, nc: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        case_metrics(pred, target, nc)


def test_accumulator_validation() -> None:
    acc = MetricAccumulator(2, ["background", "liver"], spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="no cases"):
        acc.summary()
    acc.add("p1", _a([[1, 0]]), _a([[1, 0]]))
    with pytest.raises(ValueError, match='case "p1" was added twice'):
        acc.add("p1", _a([[1, 0]]), _a([[1, 0]]))
    with pytest.raises(ValueError, match='case "p2": spacing must be 2 positive numbers'):
        acc.add("p2", _a([[1, 0]]), _a([[1, 0]]), spacing=(1.0,))
    with pytest.raises(ValueError, match="class_names has 3 names"):
        MetricAccumulator(5, ["a", "b", "c"])
