"""The base of the per-sample CPU augmentation backends (albumentations: albu.py, MONAI: monai_backend.py).

Contract: ``t(sample, seed)`` returns a NEW dict; image (C, *S) float32 -> (C, *S') float32, label (*S)
int64 -> int64, other keys (CASE_ID, ...) passed through.

- Every random draw of a call comes from ``seed`` (the backend's generators are re-seeded on each call), so
  the result depends on (sample, seed) only: not on loader workers, call order or a resume.
- Geometric transforms move image (bilinear), label (nearest) and weight map (bilinear in MONAI, nearest in
  albumentations) with one draw; intensity transforms see the image only, labels pass through unchanged.
  Only ``crop`` changes the spatial size.
- When an odd number of left-right flips (axis 1) fired, each ``swap_labels`` pair is swapped in the label.
- Not thread-safe (the backends keep per-call state); loader workers are processes, each with its own copy.

A backend subclasses :class:`SampleTransform`, sets ``backend`` and implements ``_apply``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from weakseg.augment.labels import check_swap_pairs, swap_label_pairs
from weakseg.augment.spec import TRANSFORMS, validate_pipeline
from weakseg.keys import Keys

__all__ = ["SampleTransform"]


class SampleTransform(ABC):
    """A seeded dict -> dict augmentation of one sample (see the module docstring)."""

    backend = ""

    def __init__(self, transforms: list[dict], spatial_dims: int, swap_labels: Sequence[Sequence[int]] = ()):
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        self.dims = spatial_dims
        # defaults filled in, names/ranges/backend restrictions checked (idempotent on validated entries);
        # in_channels is unknown here (None skips the RGB check, which the config load already did)
        channels: Any = None
        self.transforms = validate_pipeline(list(transforms), self.backend, spatial_dims, channels)
        self.swap_labels = check_swap_pairs(swap_labels)
        self.geometric = any(TRANSFORMS[t["name"]].kind == "geometric" for t in self.transforms)

    def __repr__(self) -> str:
        names = [t["name"] for t in self.transforms]
        return f"{type(self).__name__}({names}, spatial_dims={self.dims})"

    def __call__(self, sample: dict, seed: int) -> dict:
        image, label, weight = self._check(sample)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
        # intensity-only pipelines never hand the label or weight map to the backend
        geo_label = label if self.geometric else None
        geo_weight = weight if self.geometric else None
        img, lab, wgt, lr_flipped = self._apply(image.float(), geo_label, geo_weight, int(seed))
        out = dict(sample)
        out[Keys.IMAGE] = img.to(image.dtype).contiguous()
        if geo_label is not None:
            lab = lab.round() if lab.is_floating_point() else lab
            lab = lab.to(label.dtype).contiguous()
            out[Keys.LABEL] = (
                swap_label_pairs(lab, self.swap_labels) if lr_flipped and self.swap_labels else lab
            )
        if geo_weight is not None:
            out[Keys.WEIGHT] = wgt.to(weight.dtype).contiguous()
        return out

    @abstractmethod
    def _apply(
        self, image: torch.Tensor, label: torch.Tensor | None, weight: torch.Tensor | None, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, bool]:
        """(image (C,*S'), label (*S') or None, weight (*S') or None, whether an odd number of left-right
        flips fired)."""

    def _check(self, sample: dict) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        where = f"sample {sample.get(Keys.CASE_ID, sample.get(Keys.NAME, ''))!s}".rstrip()
        image = sample.get(Keys.IMAGE)
        if not torch.is_tensor(image) or not image.is_floating_point() or image.ndim != self.dims + 1:
            got = f"{tuple(image.shape)} {image.dtype}" if torch.is_tensor(image) else type(image).__name__
            raise ValueError(
                f"{where}: {Keys.IMAGE} must be a float tensor (C, *S) with {self.dims} spatial dims, "
                f"got {got}"
            )
        label, weight = sample.get(Keys.LABEL), sample.get(Keys.WEIGHT)
        for key, value, integer in ((Keys.LABEL, label, True), (Keys.WEIGHT, weight, False)):
            if value is None:
                continue
            kind_ok = torch.is_tensor(value) and (value.is_floating_point() != integer)
            if not kind_ok or tuple(value.shape) != tuple(image.shape[1:]):
                got = (
                    f"{tuple(value.shape)} {value.dtype}" if torch.is_tensor(value) else type(value).__name__
                )
                kind = "an integer" if integer else "a float"
                raise ValueError(
                    f"{where}: {key} must be {kind} tensor shaped like the image's spatial size "
                    f"{tuple(image.shape[1:])}, got {got}"
                )
        return (
            image.detach().cpu(),
            None if label is None else label.detach().cpu(),
            None if weight is None else weight.detach().cpu(),
        )
