"""Training patches (``data.patch_size``), cut per sample on the CPU before the augmentation, with MONAI's
transforms: ``SpatialPadd`` (a sample smaller than the patch is zero-padded, label 0 = background, as nnU-Net
does), then ``RandCropByPosNegLabeld`` with pos = ``data.patch_foreground`` and neg = 1 - pos (a patch centred
on a foreground voxel with probability pos, nnU-Net's foreground oversampling), or ``RandSpatialCropd`` for
unlabeled samples. Seeded per draw like the augmentation, so runs are reproducible and resume exactly.

    sampler = PatchSampler([96, 96, 96], foreground=0.33)
    patch = sampler(sample, seed)            # sample[Keys.IMAGE]: (C, H, W, D) -> (C, 96, 96, 96)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.transforms import RandCropByPosNegLabeld, RandSpatialCropd, SpatialPadd

from weakseg.keys import Keys

__all__ = ["PatchSampler", "compose_sample_transforms"]


class PatchSampler:
    def __init__(self, size: Sequence[int], foreground: float = 0.33) -> None:
        self.size = tuple(int(s) for s in size)
        self.foreground = float(foreground)

    def __call__(self, sample: dict, seed: int) -> dict:
        keys = [k for k in (Keys.IMAGE, Keys.LABEL, Keys.WEIGHT) if k in sample]
        channel_first = {
            k: sample[k] if k == Keys.IMAGE else sample[k][None] for k in keys
        }  # MONAI: (C, ...)
        data = SpatialPadd(keys, spatial_size=self.size, mode="constant")(channel_first)
        if Keys.LABEL in sample:
            crop = RandCropByPosNegLabeld(
                keys,
                label_key=Keys.LABEL,
                spatial_size=self.size,
                pos=self.foreground,
                neg=1.0 - self.foreground,
                num_samples=1,
            )
        else:
            crop = RandSpatialCropd(keys, roi_size=self.size, random_size=False)
        crop.set_random_state(seed % 2**32)
        out = crop(data)
        out = out[0] if isinstance(out, list) else out
        patch = dict(sample)
        for k in keys:
            value = torch.as_tensor(out[k]).as_subclass(torch.Tensor)  # MetaTensor -> plain tensor
            patch[k] = value if k == Keys.IMAGE else value[0].to(sample[k].dtype)
        return patch


def compose_sample_transforms(
    *transforms: Callable[[dict, int], dict] | None,
) -> Callable[[dict, int], dict] | None:
    """Apply per-sample transforms in order with seeds derived from one draw seed; None when there are none."""
    chain = [t for t in transforms if t is not None]
    if not chain:
        return None
    if len(chain) == 1:
        return chain[0]

    def run(sample: dict, seed: int) -> dict:
        for i, t in enumerate(chain):
            sample = t(sample, (seed + 104_729 * i) % 2**32)
        return sample

    return run
