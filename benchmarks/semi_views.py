"""The picture of docs/semi.md: weak view, strong view, pseudo-labels and confident pixels of a trained
FixMatch / UniMatch run on unlabeled CT slices.

    python benchmarks/semi_views.py [--checkpoint runs/bench/semi/ct2_unet_fixmatch_s0/best.pt]

The checkpoint comes from ``benchmarks/semi.py`` (its config names the data); the picture goes to
docs/img/semi_views.png and beside the checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import REPO, parent_parser

from weakseg.api import load_trained
from weakseg.augment import build_augmentation
from weakseg.data import build_datasets
from weakseg.engine.streams import BatchStream
from weakseg.keys import Keys
from weakseg.methods.base import StepContext
from weakseg.methods.consistency import step_generator
from weakseg.methods.pictures import label_overlay, save_image_grid, scaled_rgb


def _unconfident(image: np.ndarray, confident: np.ndarray) -> np.ndarray:
    """The strong view, dimmed, with the pixels whose pseudo-label does not count in red."""
    rgb = scaled_rgb(image) * 0.6
    rgb[~confident] = [1.0, 0.1, 0.1]
    return rgb


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[parent_parser(samples=4, helps={"samples": "unlabeled CT slices, one row each"})],
    )
    default = REPO / "runs" / "bench" / "semi" / "ct2_unet_fixmatch_s0" / "best.pt"
    ap.add_argument(
        "--checkpoint", type=Path, default=default, help="a fixmatch or unimatch run's checkpoint"
    )
    args = ap.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(
            f"{args.checkpoint} does not exist: run benchmarks/semi.py first, or pass --checkpoint"
        )
    cfg, method, dev = load_trained(args.checkpoint, device="cpu")
    if not hasattr(method, "strong"):
        raise SystemExit(
            f"{args.checkpoint} holds a {cfg.method.name} run: pass a fixmatch or unimatch checkpoint"
        )
    sets = build_datasets(cfg.data)
    batch = next(BatchStream(sets["unlabeled"], args.samples, seed=3, size_divisor=method.size_divisor))
    _, batch_aug = build_augmentation(cfg)
    weak = batch_aug({Keys.IMAGE: batch[Keys.IMAGE]}, torch.Generator().manual_seed(5))[Keys.IMAGE]
    method.train()  # pseudo-labels as in training
    ctx = StepContext(dev, {})
    label, mask, _ = method.pseudo_labels(weak, ctx)
    view = method.strong(weak, label, mask, step_generator(cfg.train.seed, 0, 0))
    rows = []
    for i in range(weak.shape[0]):
        w, s = weak[i].numpy(), view.image[i].numpy()
        rows.append([
            ("weak view", scaled_rgb(w)),
            ("strong view", scaled_rgb(s)),
            ("pseudo-label (mixed)", label_overlay(s, view.target[i].numpy())),
            (f"red: confidence < {method.threshold:g}", _unconfident(s, view.mask[i].numpy())),
        ])  # fmt: skip
    title = f"{cfg.method.name}: unlabeled CT slices, {args.checkpoint.parent.name}"
    for path in (REPO / "docs" / "img" / "semi_views.png", args.checkpoint.parent / "views.png"):
        save_image_grid(rows, path, title)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
