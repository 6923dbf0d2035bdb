"""The ``monai`` backend (2D and 3D, per sample, CPU): each spec entry becomes MONAI dictionary transforms.

Keys "image", "label" (1, *S) and "weight" (1, *S); geometric transforms use bilinear for image and weight,
nearest for the label, zero padding. Mapping (docs/augment.md has the table for all backends):

- rotate -> ``RandAffined(rotate_range)`` in radians with ``[low, high]`` passed as a pair (MONAI then draws
  uniform(low, high), not a symmetric range), negated: MONAI turns the other way; 3D about the last axis.
- translate -> ``RandAffined(translate_range)``: fraction x size in pixels per axis, negated (same reason).
- shear -> ``RandAffined(shear_range)``: the two in-plane coefficients, each tan(angle) with the angle drawn
  from the range (uniform in tan(angle), not in the angle: equal for small angles).
- scale -> ``RandZoomd(min_zoom, max_zoom, keep_size=True)``: one isotropic factor (RandAffined would draw
  one per axis); the zoomed size is rounded to whole pixels before the centre crop or pad.
- flip -> ``RandFlipd(spatial_axis)``: the listed axes mirror together.
- crop -> ``SpatialPadd`` (centred zero pad) + ``RandSpatialCropd`` (``CenterSpatialCropd`` where it does not
  fire).
- elastic_grid (2D) -> ``Rand2DElasticd(spacing=(size - 1) / (grid - 1), magnitude_range=(sigma, sigma))``:
  the same control-point spacing and N(0, sigma^2) offsets, but MONAI centres its control grid on the image
  and adds points beyond the border instead of putting nodes on the corners. elastic_dense (3D) ->
  ``Rand3DElasticd(sigma_range=(sigma, sigma), magnitude_range=(alpha, alpha))``: exactly the Simard form.
  MONAI has no 3D control-grid and no 2D dense form (spec.py restricts those).
- gaussian_blur -> ``RandGaussianSmoothd``: sigma drawn per axis (anisotropic), not once for all axes.
- gaussian_noise -> ``RandGaussianNoised``: std drawn from [0, high] (low must be 0) or fixed (low == high).
- smooth -> ``MedianSmoothd(radius=kernel // 2)``; brightness -> ``RandShiftIntensityd(offsets)``;
  contrast -> ``RandScaleIntensityFixedMeand(factors=factor - 1)`` (scales around the mean, all channels);
  gamma -> ``RandAdjustContrastd(gamma)`` (min/max-normalised power, exactly the spec formula).
- Deterministic transforms (smooth) get their ``p`` from ``OneOf([t, Identityd], weights=(p, 1 - p))``.

Translate and elastic_grid depend on the spatial size, so a pipeline is built per input size (a few kept).
Seeding: ``Compose.set_random_state(seed)`` gives every transform its own seed drawn from ``seed``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from weakseg.augment.sample import SampleTransform

__all__ = ["MonaiTransform"]

_KEYS = ("image", "label", "weight")
_CACHED_SIZES = 8


def _steps(M: Any, t: dict, shape: tuple[int, ...], lr_flips: list) -> tuple[list, tuple[int, ...]]:
    """MONAI transforms for one normalised spec entry at input spatial size ``shape``; the size after it."""
    name, p, d = t["name"], t["p"], len(shape)
    linear = "bilinear" if d == 2 else "trilinear"
    geo = dict(keys=_KEYS, allow_missing_keys=True)
    warp = dict(geo, prob=p, mode=("bilinear", "nearest", "bilinear"), padding_mode="zeros")

    def maybe(step: Any) -> list:  # a deterministic transform applied with probability p
        if p >= 1.0:
            return [step]
        return [M.OneOf([step, M.Identityd(keys=step.keys)], weights=(p, 1.0 - p))] if p > 0 else []

    if name == "rotate":
        lo, hi = (math.radians(v) for v in t["degrees"])
        about_last = ((-hi, -lo),) if d == 2 else (0.0, 0.0, (-hi, -lo))
        return [M.RandAffined(rotate_range=about_last, **warp)], shape
    if name == "translate":
        lo, hi = t["fraction"]
        return [M.RandAffined(translate_range=tuple((-hi * n, -lo * n) for n in shape), **warp)], shape
    if name == "shear":
        tan = tuple(math.tan(math.radians(v)) for v in t["degrees"])
        in_plane = (tan, tan) if d == 2 else (tan, 0.0, tan, 0.0, 0.0, 0.0)
        return [M.RandAffined(shear_range=in_plane, **warp)], shape
    if name == "scale":
        lo, hi = t["factor"]
        zoom = M.RandZoomd(min_zoom=lo, max_zoom=hi, prob=p, mode=(linear, "nearest-exact", linear),
                           padding_mode="constant", keep_size=True, **geo)  # fmt: skip
        return [zoom], shape
    if name == "flip":
        flip = M.RandFlipd(prob=p, spatial_axis=list(t["axes"]), **geo)
        if 1 in t["axes"]:
            lr_flips.append(flip)
        return [flip], shape
    if name == "crop":
        size = tuple(t["size"])
        pad = M.SpatialPadd(spatial_size=size, method="symmetric", mode="constant", **geo)
        rand = M.RandSpatialCropd(roi_size=size, random_size=False, **geo)
        if p >= 1.0:
            return [pad, rand], size
        return [pad, M.OneOf([rand, M.CenterSpatialCropd(roi_size=size, **geo)], weights=(p, 1.0 - p))], size
    if name == "elastic_grid" and d == 2:
        spacing = tuple(max(1.0, (n - 1) / (t["grid"] - 1)) for n in shape)
        sigma = float(t["sigma"])
        return [M.Rand2DElasticd(spacing=spacing, magnitude_range=(sigma, sigma), **warp)], shape
    if name == "elastic_dense" and d == 3:
        s, a = float(t["sigma"]), float(t["alpha"])
        return [M.Rand3DElasticd(sigma_range=(s, s), magnitude_range=(a, a), **warp)], shape
    img = dict(keys="image", prob=p)
    if name == "gaussian_blur":
        r = tuple(t["sigma"])
        return [M.RandGaussianSmoothd(sigma_x=r, sigma_y=r, sigma_z=r, **img)], shape
    if name == "gaussian_noise":
        lo, hi = t["std"]
        return [M.RandGaussianNoised(mean=0.0, std=hi, sample_std=lo < hi, **img)], shape
    if name == "smooth":
        return maybe(M.MedianSmoothd(keys="image", radius=t["kernel"] // 2)), shape
    if name == "brightness":
        return [M.RandShiftIntensityd(offsets=tuple(t["shift"]), **img)], shape
    if name == "contrast":
        lo, hi = t["factor"]
        return [M.RandScaleIntensityFixedMeand(factors=(lo - 1.0, hi - 1.0), fixed_mean=True, **img)], shape
    if name == "gamma":
        return [M.RandAdjustContrastd(gamma=tuple(t["gamma"]), **img)], shape
    raise NotImplementedError(
        f'transform "{name}" has no MONAI mapping for {d}D data (see weakseg/augment/monai_backend.py)'
    )


class MonaiTransform(SampleTransform):
    """MONAI dictionary-transform pipeline on one 2D or 3D sample (tensors in, tensors out)."""

    backend = "monai"

    def __init__(self, transforms: list[dict], spatial_dims: int, swap_labels=()):
        super().__init__(transforms, spatial_dims, swap_labels)
        for i, t in enumerate(self.transforms):
            if t["name"] == "gaussian_noise" and 0.0 < t["std"][0] < t["std"][1]:
                raise ValueError(
                    f"augment.transforms[{i}] (gaussian_noise): MONAI draws the noise std from [0, high] or "
                    f"uses a fixed one; std {t['std']} is neither: write [0, {t['std'][1]}] or "
                    f'[{t["std"][1]}, {t["std"][1]}], or use backend "torch" or "albumentations"'
                )
        self._pipelines: OrderedDict[tuple[int, ...], tuple[Any, list]] = OrderedDict()
        self._pipeline(None)  # build once now so a bad entry fails here, not in a loader worker

    def _pipeline(self, shape: tuple[int, ...] | None) -> tuple[Any, list]:
        """(Compose, its left-right RandFlipd's) for input spatial size ``shape`` (None: a 64^d stand-in)."""
        key = shape or (64,) * self.dims
        if key in self._pipelines:
            self._pipelines.move_to_end(key)
            return self._pipelines[key]
        import monai.transforms as M

        steps, lr_flips, size = [], [], key
        for t in self.transforms:
            more, size = _steps(M, t, size, lr_flips)
            steps.extend(more)
        built = (M.Compose(steps), lr_flips)
        if shape is not None:
            self._pipelines[key] = built
            while len(self._pipelines) > _CACHED_SIZES:
                self._pipelines.popitem(last=False)
        return built

    def _apply(self, image, label, weight, seed):
        from monai.utils import convert_to_tensor

        compose, lr_flips = self._pipeline(tuple(image.shape[1:]))
        data = {"image": image}
        if label is not None:
            data["label"] = label[None]
        if weight is not None:
            data["weight"] = weight.float()[None]
        compose.set_random_state(seed=seed)
        out = compose(data)
        fired = sum(bool(f._do_transform) for f in lr_flips) % 2 == 1  # did each RandFlipd fire this call
        get = lambda k: convert_to_tensor(out[k], track_meta=False) if k in data else None  # noqa: E731
        lab, wgt = get("label"), get("weight")
        return (
            get("image").float(),
            None if lab is None else lab[0],
            None if wgt is None else wgt[0].float(),
            fired,
        )
