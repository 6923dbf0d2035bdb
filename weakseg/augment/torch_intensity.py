"""Batched intensity transforms for the torch backend: image (B, C, *S) in, image out; never a label.

Each function takes per-sample parameters as (B,) tensors on the image's device and returns a new tensor
(float32 in, float32 out). The caller picks the samples a transform fires on; these functions just compute.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from weakseg.augment.grids import gaussian_kernels, separable_filter

__all__ = ["blur", "brightness", "contrast", "gamma", "hue", "median", "noise", "saturation"]


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))


def blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with std ``sigma[b]`` px on every spatial axis (kernels truncated at 3 sigma)."""
    radius = max(1, math.ceil(3.0 * float(sigma.max())))
    return separable_filter(x, gaussian_kernels(sigma.to(x.dtype), radius))


def noise(x: torch.Tensor, std: torch.Tensor, unit_noise: torch.Tensor) -> torch.Tensor:
    """Add ``std[b] * unit_noise[b]`` (unit_noise: standard normal, shaped like ``x``)."""
    return x + _per_sample(std, x) * unit_noise


def median(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Median filter with an odd cubic window of side ``kernel`` (reflect border; replicate on tiny inputs)."""
    r = kernel // 2
    dims = x.ndim - 2
    mode = "reflect" if r < min(x.shape[2:]) else "replicate"
    padded = F.pad(x, [r] * (2 * dims), mode=mode)
    for axis in range(2, 2 + dims):
        padded = padded.unfold(axis, kernel, 1)
    return padded.reshape(*x.shape, -1).median(dim=-1).values


def brightness(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return x + _per_sample(shift, x)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Scale around the mean of each image (all channels together)."""
    mean = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
    return mean + _per_sample(factor, x) * (x - mean)


def gamma(x: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``lo + (hi - lo) * ((x - lo) / (hi - lo)) ** exponent`` with lo/hi each image's min/max (flat images kept)."""
    flat = x.flatten(1)
    lo = flat.min(dim=1).values.view(-1, *([1] * (x.ndim - 1)))
    hi = flat.max(dim=1).values.view_as(lo)
    span = hi - lo
    safe = torch.where(span > 0, span, torch.ones_like(span))
    out = lo + span * ((x - lo) / safe).clamp(0, 1) ** _per_sample(exponent, x)
    return torch.where(span > 0, out, x)


def _rgb(x: torch.Tensor, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(
            f"{name} needs RGB 2D images (B, 3, H, W), got shape {tuple(x.shape)}; "
            "remove it from augment.transforms for grey-scale or 3D data"
        )


def saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """RGB saturation scaled by ``factor[b]`` (kornia; expects RGB in [0, 1])."""
    from kornia.enhance import adjust_saturation

    _rgb(x, "saturation")
    return adjust_saturation(x, factor.to(x.dtype))


def hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """RGB hue shifted by ``shift[b]`` of the colour circle (kornia takes radians)."""
    from kornia.enhance import adjust_hue

    _rgb(x, "hue")
    return adjust_hue(x, (2.0 * math.pi) * shift.to(x.dtype))
