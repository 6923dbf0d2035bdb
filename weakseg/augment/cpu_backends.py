"""Per-sample augmentation on the CPU, inside the loader workers: albumentations (2D) and MONAI (2D, 3D).

:func:`build_sample_transform` reads the pipeline of ``spec.py`` and returns the backend's
:class:`~weakseg.augment.sample.SampleTransform` (the contract: ``sample.py``):

    t = build_sample_transform([{"name": "rotate", "p": 0.5}], "monai", spatial_dims=3, swap_labels=[[2, 3]])
    out = t({Keys.IMAGE: x, Keys.LABEL: y, Keys.CASE_ID: "03"}, seed=1234)
"""

from __future__ import annotations

from collections.abc import Sequence

from weakseg.augment.sample import SampleTransform
from weakseg.registry import suggest

__all__ = ["CPU_BACKENDS", "SampleTransform", "build_sample_transform"]

CPU_BACKENDS = ("albumentations", "monai")


def build_sample_transform(
    transforms: list[dict], backend: str, spatial_dims: int, swap_labels: Sequence[Sequence[int]] = ()
) -> SampleTransform:
    """The per-sample transform for ``augment.transforms`` in a CPU ``backend`` (albumentations, monai)."""
    if backend == "albumentations":
        from weakseg.augment.albu import AlbumentationsTransform

        return AlbumentationsTransform(transforms, spatial_dims, swap_labels)
    if backend == "monai":
        from weakseg.augment.monai_backend import MonaiTransform

        return MonaiTransform(transforms, spatial_dims, swap_labels)
    if backend == "torch":
        raise ValueError(
            'backend "torch" runs batched on the training device (weakseg.augment.torch_backend.'
            f"BatchAugment), not per sample; per-sample backends: {', '.join(CPU_BACKENDS)}"
        )
    raise ValueError(
        f'unknown augmentation backend "{backend}".{suggest(str(backend), CPU_BACKENDS)} '
        f"Per-sample backends: {', '.join(CPU_BACKENDS)}"
    )
