"""Pictures for the run folder: training curves and prediction overlays."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from weakseg.methods.pictures import grey, label_overlay, save_figure

__all__ = ["save_curves", "save_overlays"]


def save_overlays(examples: list[dict], path: Path, title: str = "") -> None:
    """Rows of (image, reference, prediction) for each example slice."""
    if not examples:
        return
    fig, axes = plt.subplots(len(examples), 3, figsize=(7.5, 2.5 * len(examples)), squeeze=False)
    for row, ex in zip(axes, examples):
        panels = [
            grey(ex["image"]),
            label_overlay(ex["image"], ex["label"]),
            label_overlay(ex["image"], ex["pred"]),
        ]
        for ax, pic, name in zip(row, panels, ("image", "reference", "prediction")):
            ax.imshow(pic)
            ax.set_title(name, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def save_curves(records: list[dict], key_metric: str, path: Path) -> None:
    """Training loss terms and validation metrics against step."""
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "val"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    keys = sorted(
        {k for r in train for k in r if k not in ("step", "split", "lr") and isinstance(r[k], (int, float))}
    )
    for k in keys:
        pts = [(r["step"], r[k]) for r in train if k in r]
        ax1.plot(*zip(*pts), label=k)
    ax1.set_xlabel("step")
    ax1.set_title("training loss")
    if keys:
        ax1.legend(fontsize=8)
    vkeys = [k for k in (key_metric, "mean_dice", "mean_iou") if val and k in val[0]]
    for k in dict.fromkeys(vkeys):
        ax2.plot([r["step"] for r in val], [r[k] for r in val], marker="o", label=k)
    ax2.set_xlabel("step")
    ax2.set_title("validation")
    if vkeys:
        ax2.legend(fontsize=8)
    save_figure(fig, path)
