"""Pictures for the run folder: training curves and prediction overlays (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from weakseg.fileio import atomic_write  # noqa: E402

__all__ = ["label_overlay", "save_curves", "save_figure", "save_image_grid", "save_overlays", "scaled_rgb"]

_COLORS = (
    np.array(
        [
            [0, 0, 0],
            [230, 25, 75],
            [60, 180, 75],
            [255, 225, 25],
            [0, 130, 200],
            [245, 130, 48],
            [145, 30, 180],
            [70, 240, 240],
            [240, 50, 230],
            [210, 245, 60],
        ],
        dtype=np.float32,
    )
    / 255.0
)


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically (temp file + rename) and close it."""
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _grey(image: np.ndarray) -> np.ndarray:
    """(C,H,W) float image -> (H,W,3) in [0,1] for display (per-image min-max)."""
    img = image.transpose(1, 2, 0) if image.shape[0] == 3 else np.repeat(image[0][..., None], 3, axis=-1)
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)


def label_overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB picture of ``image`` (C,H,W) with ``label`` (H,W) drawn in class colours."""
    rgb = _grey(image)
    colors = _COLORS[np.asarray(label) % len(_COLORS)]
    mask = (np.asarray(label) > 0)[..., None]
    return np.where(mask, (1 - alpha) * rgb + alpha * colors, rgb)


def save_overlays(examples: list[dict], path: Path, title: str = "") -> None:
    """Rows of (image, reference, prediction) for each example slice."""
    if not examples:
        return
    fig, axes = plt.subplots(len(examples), 3, figsize=(7.5, 2.5 * len(examples)), squeeze=False)
    for row, ex in zip(axes, examples):
        panels = [
            _grey(ex["image"]),
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


def save_pairs_grid(pairs: list[tuple[dict, dict]], path: Path, title: str = "", per_row: int = 4) -> None:
    """Grid of (original, transformed) sample pairs, each drawn with its label overlay (or the bare image)."""
    rows = max(1, -(-len(pairs) // per_row))
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(2 * per_row * 1.6, rows * 1.75), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (a, b) in enumerate(pairs):
        for j, (sample, name) in enumerate(((a, "original"), (b, "augmented"))):
            ax = axes[i // per_row, 2 * (i % per_row) + j]
            image = np.asarray(sample["image"])
            label = sample.get("label")
            ax.imshow(_grey(image) if label is None else label_overlay(image, np.asarray(label)))
            ax.set_title(name, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def scaled_rgb(image: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """(C,H,W) image in the fixed range [lo, hi] -> (H,W,3) in [0,1]: unlike the per-image contrast stretch of
    the overlays, intensities stay comparable between panels (e.g. a real and a translated image)."""
    img = image.transpose(1, 2, 0) if image.shape[0] == 3 else np.repeat(image[0][..., None], 3, axis=-1)
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)


def save_image_grid(rows: list[list[tuple[str, np.ndarray]]], path: Path, title: str = "") -> None:
    """A grid of titled (H,W,3) pictures in [0,1], one list of (title, picture) per row."""
    n_cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(2.2 * n_cols, 2.3 * len(rows)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, panels in zip(axes, rows):
        for ax, (name, pic) in zip(row, panels):
            ax.imshow(pic)
            ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
