"""Appearance randomisation for domain generalisation, batched on the device (torch backend).

A segmenter trained on one modality (CT) meets other intensities at test time (MR). These transforms redraw
the appearance of every sample while keeping its anatomy, so a source-only segmenter already transfers:

* ``gin``: a random shallow convolution network per sample (GIN, Ouyang et al. 2022, "Causality-inspired
  single-source domain generalization"): ``layers`` 3x3 (or 1x1) convolutions with fresh Gaussian weights and
  leaky ReLUs, its output blended with the input by ``alpha``.
* ``intensity_curve``: a random piecewise-linear curve through ``knots`` points applied to the normalised
  intensities; with probability ``monotone_p`` it is monotone (increasing or decreasing, like a T1/T2 swap),
  else non-monotone (Bezier / histogram remapping in the spirit of Zhou et al.'s Models Genesis).
* ``bias_field``: a smooth multiplicative field exp(f), f a coarse ``grid``-point Gaussian field of std
  ``strength`` upsampled smoothly (MR coil shading).

Labels are never seen (intensity transforms). Every output is rescaled into each sample's input range
[min, max], so the data range the network sees stays that of the intensity preset. Hand-written: GIN and the
curves exist in no library we depend on (MONAI/TorchIO have bias fields per sample on the CPU only).
Randomness: one CPU generator per sample, seeded by the batch draw (``BatchAugment``), so CPU and GPU agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bias_field", "gin", "intensity_curve", "rescale_like"]


def _range(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.flatten(1)
    shape = (-1, *([1] * (x.ndim - 1)))
    return flat.min(1).values.view(shape), flat.max(1).values.view(shape)


def rescale_like(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` min-max rescaled per sample into the [min, max] of ``x`` (flat samples keep ``x``)."""
    lo, hi = _range(x)
    ylo, yhi = _range(y)
    span = yhi - ylo
    out = lo + (y - ylo) / torch.where(span > 0, span, torch.ones_like(span)) * (hi - lo)
    return torch.where((span > 0) & (hi > lo), out, x)


def _conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    conv = F.conv3d if x.ndim == 5 else F.conv2d
    return conv(x, weight, padding=weight.shape[-1] // 2)


def gin(x: torch.Tensor, seeds: list[int], alpha: torch.Tensor, layers: int, channels: int) -> torch.Tensor:
    """A fresh random conv net per sample (weights N(0, 1), kernels 1 or 3, leaky ReLU), output blended with
    the input: alpha * gin(x) + (1 - alpha) * x, then rescaled into the input's range."""
    dims, c_in = x.ndim - 2, x.shape[1]
    out = []
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(seed)
        h = x[i : i + 1]
        for k in range(layers):
            c_out = c_in if k == layers - 1 else channels
            size = 1 if torch.rand((), generator=g) < 0.5 else 3
            w = torch.randn((c_out, h.shape[1], *[size] * dims), generator=g).to(x.device, x.dtype)
            h = _conv(h, w / (h.shape[1] * size**dims) ** 0.5)
            if k < layers - 1:
                h = F.leaky_relu(h, 0.2)
        h = rescale_like(h, x[i : i + 1])
        a = alpha[i].to(x.device, x.dtype)
        out.append(a * h + (1 - a) * x[i : i + 1])
    return rescale_like(torch.cat(out), x)


def _curve(g: torch.Generator, knots: int, monotone: bool) -> torch.Tensor:
    """``knots`` y values of a curve on x = linspace(0, 1, knots), in [0, 1]."""
    if monotone:
        steps = torch.rand(knots - 1, generator=g) + 0.05
        y = torch.cat([torch.zeros(1), steps.cumsum(0)])
        y = y / y[-1]
        return y.flip(0) if torch.rand((), generator=g) < 0.5 else y
    return torch.rand(knots, generator=g)


def intensity_curve(x: torch.Tensor, seeds: list[int], knots: int, monotone_p: float) -> torch.Tensor:
    """Per sample: normalise to [0, 1], map through a random piecewise-linear curve, back to the input range."""
    lo, hi = _range(x)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    u = ((x - lo) / span).clamp(0, 1)
    out = torch.empty_like(x)
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(seed)
        monotone = bool(torch.rand((), generator=g) < monotone_p)
        y = _curve(g, knots, monotone).to(x.device, x.dtype)
        pos = u[i] * (knots - 1)
        left = pos.floor().clamp(max=knots - 2).long()
        frac = pos - left
        out[i] = y[left] * (1 - frac) + y[left + 1] * frac
    return lo + out * (hi - lo)


def bias_field(x: torch.Tensor, seeds: list[int], strength: torch.Tensor, grid: int) -> torch.Tensor:
    """x * exp(f): f a smooth field (``grid`` points per axis, std ``strength[b]``), clamped to the input range."""
    dims = x.ndim - 2
    fields = []
    for i, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(seed)
        fields.append(torch.randn((1, 1, *[grid] * dims), generator=g) * float(strength[i]))
    coarse = torch.cat(fields).to(x.device, x.dtype)
    mode = "trilinear" if dims == 3 else "bicubic"
    field = F.interpolate(coarse, size=x.shape[2:], mode=mode, align_corners=True)
    lo, hi = _range(x)
    return torch.minimum(torch.maximum(x * field.exp(), lo), hi)
