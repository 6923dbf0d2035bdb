"""Appearance randomisation (gin, intensity_curve, bias_field) and SynthSeg label-to-image synthesis in the
torch backend: labels untouched, the image range kept, reproducible, monotone curves keep (or reverse) the
intensity order, synthesised images follow their labels and load through the core reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from weakseg.augment.synthseg import labels_to_image
from weakseg.augment.torch_backend import BatchAugment
from weakseg.config import DataConfig
from weakseg.data import build_datasets
from weakseg.data.phantoms import phantom_case
from weakseg.keys import Keys

APPEARANCE = ["gin", "intensity_curve", "bias_field"]


def _batch(dims: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    size = (24, 20) if dims == 2 else (12, 10, 8)
    label = torch.randint(0, 3, (3, *size), generator=g)
    image = 0.2 + 0.6 * torch.rand((3, 1, *size), generator=g) + 0.1 * label[:, None]
    return {Keys.IMAGE: image, Keys.LABEL: label}


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("name", APPEARANCE)
def test_labels_untouched_range_kept_reproducible(name, dims):
    batch = _batch(dims)
    aug = BatchAugment([{"name": name}], spatial_dims=dims)
    out = aug(batch, torch.Generator().manual_seed(1))
    again = aug(batch, torch.Generator().manual_seed(1))
    x, y = batch[Keys.IMAGE], out[Keys.IMAGE]
    assert torch.equal(out[Keys.LABEL], batch[Keys.LABEL]) and torch.equal(y, again[Keys.IMAGE])
    lo, hi = x.flatten(1).min(1).values, x.flatten(1).max(1).values
    assert bool((y.flatten(1).min(1).values >= lo - 1e-5).all()) and bool(
        (y.flatten(1).max(1).values <= hi + 1e-5).all()
    )
    assert not torch.allclose(x, y) and torch.isfinite(y).all()


@pytest.mark.parametrize("monotone_p", [0.0, 1.0])
def test_intensity_curve_monotone_keeps_or_reverses_the_order(monotone_p):
    x = torch.linspace(0, 1, 400).view(1, 1, 20, 20).repeat(4, 1, 1, 1)
    y = BatchAugment([{"name": "intensity_curve", "monotone_p": monotone_p, "knots": 8}], 2)(
        {Keys.IMAGE: x}, torch.Generator().manual_seed(3)
    )[Keys.IMAGE]
    d = y.flatten(1).diff(dim=1)
    monotone = [bool((row >= -1e-6).all() or (row <= 1e-6).all()) for row in d]
    assert all(monotone) if monotone_p == 1.0 else not all(monotone)


def test_labels_to_image_follows_the_labels():
    label = torch.zeros(2, 16, 16, dtype=torch.long)
    label[:, 4:10, 4:10] = 1
    label[:, 11:14, 2:6] = 2
    plain = dict(std=(0, 0), blur=(0, 0), bias=(0, 0), resolution=(1, 1), noise=(0, 0), gamma=(1, 1))
    image = labels_to_image(label, torch.Generator().manual_seed(0), 3, **plain)
    assert image.shape == (2, 1, 16, 16) and float(image.min()) >= 0 and float(image.max()) <= 1
    for b in range(2):
        for k in range(3):
            values = image[b, 0][label[b] == k]
            assert float(values.max() - values.min()) < 1e-5  # one intensity per label without noise or blur
    full = labels_to_image(label, torch.Generator().manual_seed(0), 3)
    assert not torch.allclose(full[0], full[1])  # each sample its own contrast
    with pytest.raises(ValueError, match="label values must be in 0..1"):
        labels_to_image(label, torch.Generator(), num_classes=2)


def test_label_to_image_in_the_pipeline_replaces_the_image_and_needs_labels():
    batch = _batch()
    aug = BatchAugment([{"name": "rotate", "p": 1.0}, {"name": "label_to_image", "num_classes": 3}], 2)
    out = aug(batch, torch.Generator().manual_seed(2))
    assert out[Keys.IMAGE].shape == batch[Keys.IMAGE].shape and float(out[Keys.IMAGE].max()) <= 1
    with pytest.raises(ValueError, match="label_to_image draws images from label maps"):
        aug({Keys.IMAGE: batch[Keys.IMAGE]}, torch.Generator().manual_seed(2))


def test_synthesised_images_load_through_the_core_reader(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    raw, labels = phantom_case(5, "ct", n_slices=3, size=32)
    label = torch.from_numpy(labels.astype(np.int64))
    image = labels_to_image(label, torch.Generator().manual_seed(0), 5)
    for z in range(3):
        name = f"synth_p{z:02d}_z000.png"
        Image.fromarray((image[z, 0].numpy() * 255).astype(np.uint8)).save(tmp_path / "images" / name)
        Image.fromarray(labels[z].astype(np.uint8)).save(tmp_path / "masks" / name)
    cfg = DataConfig(source="folder", root=str(tmp_path), val_fraction=0.0)
    sets = build_datasets(cfg)
    assert len(sets["labeled"]) == 3
    assert torch.equal(sets["labeled"][0][Keys.LABEL], label[0])


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"name": "gin", "layers": 0}, "layers must be > 0"),
        ({"name": "gin", "channels": 2.5}, "channels must be an integer >= 1"),
        ({"name": "intensity_curve", "monotone_p": 2}, "monotone_p must be in \\[0, 1\\]"),
        ({"name": "bias_field", "strength": [0.5, 0.1]}, "backwards"),
        ({"name": "label_to_image", "num_classes": 1}, "num_classes must be an integer >= 2"),
    ],
)
def test_bad_entries(entry, match):
    with pytest.raises(ValueError, match=match):
        BatchAugment([entry], 2)


def test_torch_backend_only():
    from weakseg.augment.spec import validate_pipeline

    with pytest.raises(ValueError, match='not available in backend "albumentations"'):
        validate_pipeline([{"name": "gin"}], "albumentations", 2, 1)
