"""Picture primitives (matplotlib, Agg backend): label overlays, fixed-range RGB, titled grids, atomic PNG
writes. Shared by the trainer's run-folder pictures, the methods' own grids and the CLI previews."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from weakseg.fileio import atomic_write  # noqa: E402

__all__ = [
    "COLORS",
    "grey",
    "label_overlay",
    "save_figure",
    "save_image_grid",
    "save_pairs_grid",
    "scaled_rgb",
]

COLORS = (
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


def grey(image: np.ndarray) -> np.ndarray:
    """(C,H,W) float image -> (H,W,3) in [0,1] for display (per-image min-max)."""
    img = image.transpose(1, 2, 0) if image.shape[0] == 3 else np.repeat(image[0][..., None], 3, axis=-1)
    lo, hi = np.percentile(img, [0.5, 99.5])
    return np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)


def label_overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB picture of ``image`` (C,H,W) with ``label`` (H,W) drawn in class colours."""
    rgb = grey(image)
    colors = COLORS[np.asarray(label) % len(COLORS)]
    mask = (np.asarray(label) > 0)[..., None]
    return np.where(mask, (1 - alpha) * rgb + alpha * colors, rgb)


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
            ax.imshow(grey(image) if label is None else label_overlay(image, np.asarray(label)))
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
