"""The picture of docs/augment.md's appearance section: CT slices under gin, intensity_curve, bias_field and
label_to_image (SynthSeg), beside an MR slice of the same organs for comparison.

    python benchmarks/appearance_views.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import REPO, default_data_root, parent_parser

from weakseg.augment.torch_backend import BatchAugment
from weakseg.config import load_config
from weakseg.data import build_datasets
from weakseg.keys import Keys
from weakseg.methods.pictures import save_image_grid, scaled_rgb

ROWS = [
    ("gin", [{"name": "gin", "alpha": [1.0, 1.0]}]),
    ("intensity_curve", [{"name": "intensity_curve"}]),
    ("bias_field", [{"name": "bias_field", "strength": [0.3, 0.3]}]),
    ("label_to_image", [{"name": "label_to_image", "num_classes": 5}]),
]


def _slices(root: Path, n: int) -> dict:
    cfg = load_config(REPO / "configs" / "ct.yaml", ["data.resize=[128, 128]", "data.val_fraction=0.25"])
    cfg.data.root = str(root)
    val = build_datasets(cfg.data)["val"]
    picks = np.linspace(len(val) * 0.3, len(val) * 0.6, n).astype(int)  # slices through the organs
    items = [val[int(i)] for i in picks]
    return {
        Keys.IMAGE: torch.stack([s[Keys.IMAGE] for s in items]),
        Keys.LABEL: torch.stack([s[Keys.LABEL] for s in items]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[
            parent_parser(
                data_root=default_data_root(), samples=3, helps={"samples": "CT slices, one row each"}
            )
        ],
    )
    args = ap.parse_args()
    ct = _slices(args.data_root / "abdominal_ct_mr" / "ct", args.samples)
    mr = _slices(args.data_root / "abdominal_ct_mr" / "mr", args.samples)
    rows = []
    for i in range(args.samples):
        row = [("CT", scaled_rgb(ct[Keys.IMAGE][i].numpy()))]
        for k, (name, entries) in enumerate(ROWS):
            out = BatchAugment(entries, 2)(ct, torch.Generator().manual_seed(10 + k))[Keys.IMAGE][i]
            row.append((name, scaled_rgb(out.numpy())))
        row.append(("real MR (other patient)", scaled_rgb(mr[Keys.IMAGE][i].numpy())))
        rows.append(row)
    path = REPO / "docs" / "img" / "appearance.png"
    save_image_grid(rows, path, "appearance randomisation of CT slices (torch backend, one draw each)")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
