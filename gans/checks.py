"""Checks of a synthetic dataset: is it authentic, and is it useful?

* ``authenticity(real, synthetic)``: a small CNN learns to tell real from synthetic images on part of both
  (real images split by case, ``case_regex``), then scores the held-out rest: accuracy and ROC AUC (MONAI's
  ``compute_roc_auc``). 0.5 = indistinguishable; 1.0 = trivially told apart. The survey's test of GAN data.
* ``usefulness(cfg, synthetic)``: three segmenters with the config's model, loss and schedule, all validated on
  the config's real validation cases: real only (the config's labeled cases), synthetic only, and real +
  synthetic (``data.extra_labeled_roots``). Their best validation mean Dice.

    weakseg synth evaluate --real data/drive/train --synthetic data/synth --config configs/drive.yaml
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from weakseg.data.readers import case_id_from, list_image_files, read_image_file

__all__ = ["authenticity", "usefulness"]


def _images_dir(root: Path) -> Path:
    return root / "images" if (root / "images").is_dir() else root


def _load(root: Path, size: int) -> tuple[list[str], torch.Tensor]:
    """Every image of ``root`` (or ``root/images``) as float (C, size, size) in [0, 1] (8-bit / 16-bit scaled)."""
    files = list_image_files(_images_dir(root))
    if not files:
        raise FileNotFoundError(f"{_images_dir(root)} holds no images")
    stems, images = [], []
    for stem, path in sorted(files.items()):
        raw = read_image_file(path)
        scale = (
            255.0
            if raw.dtype == np.uint8
            else 65535.0
            if raw.dtype == np.uint16
            else max(1.0, float(raw.max()))
        )
        x = torch.from_numpy(raw.astype(np.float32) / scale)[None]
        images.append(F.interpolate(x, size=(size, size), mode="area")[0])
        stems.append(stem)
    channels = {im.shape[0] for im in images}
    if len(channels) > 1:
        raise ValueError(f"{root}: images mix channel counts {sorted(channels)}")
    return stems, torch.stack(images)


class _Critic(nn.Module):
    """Four stride-2 conv + batch norm + ReLU blocks, global pooling, one logit (real = 1)."""

    def __init__(self, channels: int, width: int = 16) -> None:
        super().__init__()
        layers, c = [], channels
        for i in range(4):
            layers += [
                nn.Conv2d(c, width * 2**i, 3, stride=2, padding=1),
                nn.BatchNorm2d(width * 2**i),
                nn.ReLU(),
            ]
            c = width * 2**i
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


def _split_by_case(stems: list[str], case_regex: str, rng: random.Random, test_fraction: float) -> list[bool]:
    cases = sorted({case_id_from(s, case_regex) for s in stems})
    rng.shuffle(cases)
    test = set(cases[: max(1, round(test_fraction * len(cases)))])
    return [case_id_from(s, case_regex) in test for s in stems]


def authenticity(
    real: str | Path,
    synthetic: str | Path,
    size: int = 64,
    steps: int = 300,
    seed: int = 0,
    case_regex: str = r"p(\d+)",
    test_fraction: float = 0.5,
    device: str = "cpu",
) -> dict:
    """Held-out accuracy and AUC of a real-vs-synthetic classifier (equal numbers of each class)."""
    from monai.metrics import compute_roc_auc

    rng = random.Random(seed)
    torch.manual_seed(seed)
    r_stems, r_images = _load(Path(real), size)
    s_stems, s_images = _load(Path(synthetic), size)
    if r_images.shape[1] != s_images.shape[1]:
        raise ValueError(
            f"real images have {r_images.shape[1]} channel(s) but synthetic ones {s_images.shape[1]}: compare "
            "datasets of the same modality"
        )
    r_test = torch.tensor(_split_by_case(r_stems, case_regex, rng, test_fraction))
    s_test = torch.tensor(_split_by_case(s_stems, case_regex, rng, test_fraction))

    def balanced(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = min(len(a), len(b))
        ia, ib = rng.sample(range(len(a)), n), rng.sample(range(len(b)), n)
        return torch.cat([a[ia], b[ib]]), torch.cat([torch.ones(n), torch.zeros(n)])

    x_train, y_train = balanced(r_images[~r_test], s_images[~s_test])
    x_test, y_test = balanced(r_images[r_test], s_images[s_test])
    if len(x_train) < 4 or len(x_test) < 2:
        raise ValueError(
            f"too few images for the authenticity check ({len(r_images)} real, {len(s_images)} synthetic); "
            "write more synthetic samples or use more real cases"
        )
    dev = torch.device(device)
    model = _Critic(x_train.shape[1]).to(dev)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(x_train), (min(32, len(x_train)),), generator=g)
        x = x_train[idx]
        flip = torch.rand(len(idx), generator=g) < 0.5  # flips: no shortcut through orientation
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        loss = F.binary_cross_entropy_with_logits(model(x.to(dev)), y_train[idx].to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        prob = torch.sigmoid(
            torch.cat([model(x_test[i : i + 64].to(dev)) for i in range(0, len(x_test), 64)])
        ).cpu()
    return {
        "accuracy": float(((prob > 0.5).float() == y_test).float().mean()),
        "auc": float(compute_roc_auc(prob, y_test)),
        "n_train": len(x_train),
        "n_test": len(x_test),
        "size": size,
        "steps": steps,
    }


def usefulness(cfg, synthetic: str | Path, run_root: str | Path, overwrite: bool = False) -> dict[str, dict]:
    """Best validation ``train.key_metric`` (the config's real validation cases) of segmenters trained on real only,
    synthetic only and real + synthetic; runs in ``run_root/{real,synthetic,real_synthetic}``."""
    from weakseg.api import Trainer
    from weakseg.data import build_datasets
    from weakseg.data.build import read_records

    base = copy.deepcopy(cfg)
    splits = build_datasets(base.data)
    real = {r.case_id for r in read_records(base.data)}  # not the cases of data.extra_labeled_roots
    named = {
        "labeled": [c for c in splits["labeled"].case_ids if c in real],
        "val": splits["val"].case_ids,
    }
    if not named["val"]:
        raise ValueError(
            "usefulness needs real validation cases: the config's data split has none (set data.val_fraction or "
            "data.splits.val)"
        )
    variants = {
        "real": ({**named}, []),
        "synthetic": ({"labeled": [], "val": named["val"]}, [str(synthetic)]),
        "real_synthetic": ({**named}, [str(synthetic)]),
    }
    results = {}
    for name, (split, extra) in variants.items():
        run_cfg = copy.deepcopy(base)
        run_cfg.data.splits = split
        run_cfg.data.extra_labeled_roots = list(base.data.extra_labeled_roots) + extra
        run_cfg.train.name = f"{base.train.name}_{name}"
        summary = Trainer(run_cfg, run_dir=Path(run_root) / name, overwrite=overwrite).fit()
        results[name] = {
            "key_metric": base.train.key_metric,
            "best": summary[f"best_{base.train.key_metric}"],
            "best_step": summary["best_step"],
            "labeled_real_cases": split["labeled"],
        }
    return results
