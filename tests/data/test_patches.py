"""Training patches: size, foreground oversampling, padding of small samples, unlabeled samples, seeding; and a
3D phantom run end to end (patches for training, sliding windows for evaluation)."""

from __future__ import annotations

import pytest
import torch

from weakseg.data.patches import PatchSampler, compose_sample_transforms
from weakseg.keys import Keys


def _sample(shape=(20, 24, 28)) -> dict:
    label = torch.zeros(shape, dtype=torch.int64)
    label[2:5, 3:6, 20:24] = 3  # one small foreground blob near a corner
    return {Keys.IMAGE: torch.randn(1, *shape), Keys.LABEL: label, Keys.CASE_ID: "c", Keys.NAME: "n"}


def test_patches_have_the_size_and_keep_image_and_label_aligned():
    sample = _sample()
    sample[Keys.IMAGE][0] = sample[Keys.LABEL].float()  # image = label: alignment is visible
    patch = PatchSampler([8, 8, 8], foreground=0.5)(sample, seed=3)
    assert patch[Keys.IMAGE].shape == (1, 8, 8, 8) and patch[Keys.LABEL].shape == (8, 8, 8)
    assert patch[Keys.LABEL].dtype == torch.int64 and type(patch[Keys.IMAGE]) is torch.Tensor
    assert torch.equal(patch[Keys.IMAGE][0], patch[Keys.LABEL].float())


def test_foreground_fraction_one_always_hits_the_blob_and_zero_rarely_does():
    sample = _sample()
    always = [PatchSampler([8, 8, 8], 1.0)(sample, s)[Keys.LABEL].max().item() for s in range(20)]
    assert all(v == 3 for v in always)
    never = [PatchSampler([8, 8, 8], 0.0)(sample, s)[Keys.LABEL].max().item() for s in range(20)]
    assert sum(v == 3 for v in never) < 10


@pytest.mark.filterwarnings("ignore:Num foregrounds 0")
def test_small_samples_are_padded_and_unlabeled_samples_cropped():
    small = _sample((6, 30, 10))
    patch = PatchSampler([8, 8, 8])(small, seed=0)
    assert patch[Keys.IMAGE].shape == (1, 8, 8, 8)  # padded with zeros (label 0) where the volume ends
    unlabeled = {k: v for k, v in _sample().items() if k != Keys.LABEL}
    out = PatchSampler([8, 8, 8])(unlabeled, seed=1)
    assert out[Keys.IMAGE].shape == (1, 8, 8, 8) and Keys.LABEL not in out


def test_patches_are_seeded_and_compose():
    sample = _sample()
    a, b = (PatchSampler([8, 8, 8])(sample, 11) for _ in range(2))
    assert torch.equal(a[Keys.IMAGE], b[Keys.IMAGE])
    flip = lambda s, seed: {**s, Keys.IMAGE: s[Keys.IMAGE].flip(-1)}  # noqa: E731
    both = compose_sample_transforms(PatchSampler([8, 8, 8]), None, flip)
    assert both(sample, 5)[Keys.IMAGE].shape == (1, 8, 8, 8)
    assert compose_sample_transforms(None, None) is None
