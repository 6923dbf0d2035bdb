"""Run-folder pictures: the overlay's error map and per-slice Dice on hand-made masks, and the curves."""

from __future__ import annotations

import numpy as np
from PIL import Image

from weakseg.engine.viz import error_map, save_curves, save_overlays, slice_dice


def test_error_map_and_slice_dice_on_a_hand_made_case():
    label = np.zeros((4, 4), int)
    label[:2, :2] = 1  # 4 pixels of class 1
    pred = np.zeros((4, 4), int)
    pred[:2, :1] = 1  # 2 found, 2 missed
    pred[3, 3] = 2  # a false positive of class 2
    assert slice_dice(label, pred) == (2 * 2 / (4 + 2) + 0.0) / 2
    assert slice_dice(np.zeros((2, 2), int), np.zeros((2, 2), int)) is None
    rgb = error_map(np.zeros((1, 4, 4), np.float32), label, pred)
    assert rgb[3, 3, 0] > 0.5 and rgb[3, 3, 2] < 0.2  # FP red
    assert rgb[0, 1, 2] > 0.5 and rgb[0, 1, 0] < 0.2  # FN blue
    assert np.allclose(rgb[0, 0], rgb[2, 2])  # a hit looks like background: no error colour


def test_overlays_and_curves_are_written(tmp_path):
    ex = {"name": "p01_z003", "image": np.random.rand(1, 16, 16).astype(np.float32)}
    ex["label"] = (ex["image"][0] > 0.5).astype(int)
    ex["pred"] = ex["label"].copy()
    save_overlays([ex], tmp_path / "o.png", "step 1", ["background", "liver"])
    assert Image.open(tmp_path / "o.png").size[0] > 400
    records = [{"step": s, "split": "train", "loss": 10.0**-s, "unsup_weight": s / 4} for s in range(5)]
    records += [{"step": 4, "split": "val", "mean_dice": 0.5}]
    save_curves(records, "mean_dice", tmp_path / "c.png")
    w, h = Image.open(tmp_path / "c.png").size
    assert w > 2.5 * h  # three panels: losses (log scale), weights and fractions, validation
