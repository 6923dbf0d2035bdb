"""``weakseg augment CONFIG --n 16 --out grid.png``: originals beside their augmented versions, with masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from weakseg.augment import build_augmentation
from weakseg.config import Config
from weakseg.keys import Keys

__all__ = ["augment_samples", "preview"]


def _middle(t: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """3D samples are drawn by their middle slice along the last axis; 2D ones as they are."""
    return t[..., t.shape[-1] // 2] if spatial_dims == 3 else t


def augment_samples(cfg: Config, samples: list[dict], seed: int = 0) -> list[dict]:
    """The configured augmentation applied to ``samples`` (per sample, or as one batch on the CPU)."""
    sample_aug, batch_aug = build_augmentation(cfg)
    if sample_aug is not None:
        return [sample_aug(s, seed + i) for i, s in enumerate(samples)]
    if batch_aug is None:
        raise ValueError("the config has no augmentation: add augment.transforms (see docs/augment.md)")
    from weakseg.engine.streams import pad_collate

    batch = pad_collate()(samples)
    out = batch_aug(batch, torch.Generator().manual_seed(seed))
    return [{k: out[k][i] for k in (Keys.IMAGE, Keys.LABEL) if k in out} for i in range(len(samples))]


def preview(cfg: Config, n: int, out: str | Path, seed: int = 0, split: str = "labeled") -> Path:
    """Draw ``n`` samples of ``split`` (evenly spread) before and after augmentation into ``out`` (PNG)."""
    from weakseg.data import build_datasets
    from weakseg.methods.pictures import save_pairs_grid

    dataset = build_datasets(cfg.data)[split]
    if len(dataset) == 0:
        raise ValueError(f'the "{split}" split is empty; check data.root and data.labeled_fraction')
    idx = np.linspace(0, len(dataset) - 1, num=min(n, len(dataset))).round().astype(int)
    samples = [dataset[int(i)] for i in idx]
    augmented = augment_samples(cfg, samples, seed)
    pairs, dims = [], cfg.data.spatial_dims
    for a, b in zip(samples, augmented):
        pairs.append(
            tuple(
                {
                    "image": _middle(s[Keys.IMAGE], dims).numpy(),
                    "label": _middle(s[Keys.LABEL], dims).numpy() if Keys.LABEL in s else None,
                }
                for s in (a, b)
            )
        )
    out = Path(out)
    names = ", ".join(t["name"] for t in cfg.augment.transforms)
    save_pairs_grid(pairs, out, title=f"{cfg.augment.backend}: {names}")
    return out
