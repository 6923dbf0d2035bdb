from __future__ import annotations

import torch

from weakseg.cli.preview import _middle, augment_samples
from weakseg.config import load_config
from weakseg.data import build_datasets


def test_middle_slice_only_for_3d():
    image2d, image3d = torch.zeros(1, 8, 6), torch.zeros(1, 8, 6, 4)
    assert _middle(image2d, 2).shape == (1, 8, 6)
    assert _middle(image3d, 3).shape == (1, 8, 6)


def test_augment_samples_keeps_shapes_and_label_values(tiny_cfg_path):
    cfg = load_config(tiny_cfg_path, ["augment.transforms=[{name: rotate}, {name: elastic_grid}]"])
    samples = [build_datasets(cfg.data)["labeled"][i] for i in range(3)]
    out = augment_samples(cfg, samples, seed=1)
    for a, b in zip(samples, out):
        assert b["image"].shape == a["image"].shape and b["label"].shape == a["label"].shape
        assert set(b["label"].unique().tolist()) <= set(range(5))
    assert any(not torch.equal(a["image"], b["image"]) for a, b in zip(samples, out))
