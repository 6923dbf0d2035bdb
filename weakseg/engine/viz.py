"""Pictures for the run folder: training curves and prediction overlays."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from weakseg.methods.pictures import COLORS, grey, label_overlay, save_figure

__all__ = ["error_map", "save_curves", "save_overlays", "slice_dice"]


def slice_dice(label: np.ndarray, pred: np.ndarray) -> float | None:
    """Mean Dice over the foreground classes present in the reference or the prediction (None: neither)."""
    classes = [c for c in np.union1d(np.unique(label), np.unique(pred)) if c > 0]
    if not classes:
        return None
    scores = []
    for c in classes:
        a, b = label == c, pred == c
        scores.append(2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))
    return float(np.mean(scores))


def error_map(image: np.ndarray, label: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The image in grey with false positives (predicted foreground class that the reference does not have
    there) in red and false negatives (reference foreground missed) in blue."""
    rgb = grey(image).copy()
    fp = (pred > 0) & (pred != label)
    fn = (label > 0) & (pred != label) & ~fp
    rgb[fp] = 0.4 * rgb[fp] + 0.6 * np.array([1.0, 0.1, 0.1])
    rgb[fn] = 0.4 * rgb[fn] + 0.6 * np.array([0.1, 0.3, 1.0])
    return rgb


def save_overlays(
    examples: list[dict], path: Path, title: str = "", class_names: list[str] | None = None
) -> None:
    """Rows of (image, reference, prediction, errors) for each example slice, with its case / slice name and
    Dice, and a legend of the class colours."""
    if not examples:
        return
    fig, axes = plt.subplots(len(examples), 4, figsize=(10, 2.55 * len(examples)), squeeze=False)
    for row, ex in zip(axes, examples):
        dice = slice_dice(ex["label"], ex["pred"])
        panels = [
            grey(ex["image"]),
            label_overlay(ex["image"], ex["label"]),
            label_overlay(ex["image"], ex["pred"]),
            error_map(ex["image"], ex["label"], ex["pred"]),
        ]
        names = [
            str(ex.get("name", "image")),
            "reference",
            "prediction" + ("" if dice is None else f" (Dice {dice:.3f})"),
            "errors: FP red, FN blue",
        ]
        for ax, pic, name in zip(row, panels, names):
            ax.imshow(pic)
            ax.set_title(name, fontsize=8)
            ax.axis("off")
    if class_names:
        handles = [Patch(color=COLORS[i % len(COLORS)], label=n) for i, n in enumerate(class_names) if i > 0]
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


_RATES = ("weight", "fraction", "rate", "lr")


def save_curves(records: list[dict], key_metric: str, path: Path) -> None:
    """Training loss terms, then (when logged) weights and fractions such as an unlabeled-loss weight or the
    confident-pixel fraction, then the validation metrics, against step; a loss panel whose terms span more
    than two decades is drawn on a log scale."""
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    keys = sorted(
        {k for r in train for k in r if k not in ("step", "split", "lr") and isinstance(r[k], (int, float))}
    )
    losses = [k for k in keys if not any(w in k for w in _RATES)]
    rates = [k for k in keys if k not in losses]
    groups = [("training loss", losses), *([("weights and fractions", rates)] if rates else [])]
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(5 * (len(groups) + 1), 3.6), squeeze=False)
    for ax, (name, group) in zip(axes[0], groups):
        values = []
        for k in group:
            pts = [(r["step"], r[k]) for r in train if k in r]
            ax.plot(*zip(*pts), label=k, marker="." if len(pts) < 60 else None)
            values += [v for _, v in pts]
        positive = [v for v in values if v > 0]
        if positive and len(positive) == len(values) and max(positive) / min(positive) > 100:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(name)
        if group:
            ax.legend(fontsize=8)
    ax = axes[0][-1]
    vkeys = [k for k in (key_metric, "mean_dice", "mean_iou") if val and k in val[0]]
    for k in dict.fromkeys(vkeys):
        ax.plot([r["step"] for r in val], [r[k] for r in val], marker="o", label=k)
    ax.set_xlabel("step")
    ax.set_title("validation")
    if vkeys:
        ax.legend(fontsize=8)
    save_figure(fig, path)
