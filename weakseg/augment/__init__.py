"""Augmentation: one schema (``spec.py``), three backends behind it.

- ``torch`` (ours, ``torch_backend.BatchAugment``): batched on the training device after the loader; one
  composed sampling grid for affine + elastic + crop, image and labels warped with the same grid.
- ``albumentations`` (2D) and ``monai`` (2D/3D): per sample on the CPU, inside the loader workers.

The trainer calls ``build_augmentation(cfg)`` and applies what it returns to the streams listed in
``augment.streams``; every random draw is seeded from the run seed and the step (batched) or the draw
number (per sample), so runs are reproducible and resume exactly.
"""

from __future__ import annotations

from collections.abc import Callable

from weakseg.augment.spec import BACKENDS, TRANSFORMS, TransformSpec, normalize_transform, validate_pipeline
from weakseg.config import Config

__all__ = [
    "BACKENDS",
    "TRANSFORMS",
    "TransformSpec",
    "build_augmentation",
    "normalize_transform",
    "validate_pipeline",
]


def build_augmentation(cfg: Config) -> tuple[Callable[[dict, int], dict] | None, Callable | None]:
    """``(per-sample transform, batch transform)`` for ``cfg.augment``. Entries by import path
    (``outside.py``) run per sample first; the schema's own run per sample (albumentations, monai) or batched
    on the device (torch)."""
    a, d = cfg.augment, cfg.data
    if not a.transforms:
        return None, None
    from weakseg.augment.outside import OutsideTransform, split_outside

    outside_entries, own = split_outside(a.transforms)
    outside = OutsideTransform(outside_entries, d.spatial_dims) if outside_entries else None
    if not own:
        return outside, None
    transforms = validate_pipeline(own, a.backend, d.spatial_dims, d.in_channels)
    if a.backend == "torch":
        from weakseg.augment.torch_backend import BatchAugment

        return outside, BatchAugment(transforms, d.spatial_dims, d.swap_labels)
    from weakseg.augment.cpu_backends import build_sample_transform

    sample = build_sample_transform(transforms, a.backend, d.spatial_dims, d.swap_labels)
    if outside is None:
        return sample, None
    from weakseg.data.patches import compose_sample_transforms

    return compose_sample_transforms(outside, sample), None
