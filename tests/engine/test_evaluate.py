"""evaluate_dataset on hand-made cases: slices of a case are stacked into one volume before scoring, batch
padding is cropped away before scoring, and distances are in the spacing's units."""

from __future__ import annotations

import pytest
import torch

from weakseg.engine.evaluate import evaluate_dataset
from weakseg.keys import Keys


class ImageIsThePrediction(torch.nn.Module):
    """predict: class 1 where the image is 0 and class 0 where it is 1, so the zero padding of a batch would
    read as class 1 everywhere it is not cropped away."""

    size_divisor = 1

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        fg = 1.0 - image[:, :1]
        return torch.cat([1.0 - fg, fg], 1) * 10.0


def _sample(case: str, name: str, pred, label) -> dict:
    pred, label = torch.tensor(pred), torch.tensor(label)
    return {Keys.IMAGE: (1.0 - pred.float())[None], Keys.LABEL: label, Keys.CASE_ID: case, Keys.NAME: name}


def _evaluate(samples, spacing=None):
    acc, _ = evaluate_dataset(
        ImageIsThePrediction(), samples, 2, ["bg", "fg"], torch.device("cpu"), spacing=spacing, batch_size=8
    )
    return acc


def test_slices_of_a_case_are_stacked_and_padding_is_cropped():
    z = [[0] * 4 for _ in range(4)]
    label1 = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    pred1 = [[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]  # 4 right + 1 extra
    pred2 = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]  # 1 false positive, no fg in label
    small = [[1] * 5 for _ in range(3)]  # a 3x5 case in a batch padded to 4x5: perfect only when cropped
    samples = [
        _sample("a", "a_z0", pred1, label1),
        _sample("a", "a_z1", pred2, z),
        _sample("b", "b_z0", small, small),
    ]
    rows = {(r["case_id"], r["class"]): r for r in _evaluate(samples).per_case()}
    # stacked: 2 * 4 / (6 + 4) = 0.8; the mean of the per-slice Dice would be (8/9 + 0) / 2
    assert rows[("a", "fg")]["dice"] == pytest.approx(0.8)
    assert rows[("b", "fg")]["dice"] == pytest.approx(1.0)


def test_distances_use_the_spacing():
    label = [[0, 1, 0, 0]] * 4
    pred = [[0, 0, 1, 0]] * 4  # one column to the right
    acc = _evaluate([_sample("c", "c_z0", pred, label)], spacing=[5.0, 1.0, 3.0])  # (z, y, x)
    row = next(r for r in acc.per_case() if r["class"] == "fg")
    assert (
        row["dice"] == pytest.approx(0.0)
        and row["hd95"] == pytest.approx(3.0)
        and row["assd"] == pytest.approx(3.0)
    )
