"""Label-to-image synthesis without a GAN (SynthSeg, Billot et al. 2023): images drawn from label maps alone.

    image = labels_to_image(label, generator, in_channels=1)      # label (B, *S) int64 -> image (B, C, *S) in [0, 1]

The generative model, per sample: every label k gets a random mean ~ U(``mean``) and std ~ U(``std``)
(intensities in [0, 1]); each voxel draws from its label's Gaussian; then a Gaussian blur of random width
(``blur``, px), a smooth multiplicative bias field (``bias``, std of its log), a resolution change (down by a
random factor in ``resolution``, back up linearly), additive noise (``noise``), a random gamma (``gamma``), and
min-max normalisation to [0, 1]. A segmenter trained on such images never sees a real intensity, so it works
on any contrast (ABDSynth: CT labels only, real MR kidneys segmented). Hand-written: SynthSeg ships as a
TensorFlow tool, not a library; here it is batched torch on the training device.

Used as the ``label_to_image`` entry of the augmentation schema (torch backend, labeled stream: it replaces
the image, so it needs the label), and by ``gans/``/``adapt/`` as a synthetic-data generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from weakseg.augment.appearance import bias_field
from weakseg.augment.torch_intensity import blur as gaussian_blur

__all__ = ["labels_to_image"]


def _uniform(g: torch.Generator, bounds: Sequence[float], *shape: int) -> torch.Tensor:
    return float(bounds[0]) + (float(bounds[1]) - float(bounds[0])) * torch.rand(shape, generator=g)


def labels_to_image(
    label: torch.Tensor,
    generator: torch.Generator,
    num_classes: int | None = None,
    in_channels: int = 1,
    mean: Sequence[float] = (0.0, 1.0),
    std: Sequence[float] = (0.0, 0.08),
    blur: Sequence[float] = (0.0, 1.0),
    bias: Sequence[float] = (0.0, 0.3),
    resolution: Sequence[float] = (1.0, 2.5),
    noise: Sequence[float] = (0.0, 0.04),
    gamma: Sequence[float] = (0.7, 1.5),
) -> torch.Tensor:
    """Images (B, in_channels, *S) in [0, 1] on ``label``'s device; one channel per ``in_channels`` drawn
    independently (other contrasts of the same anatomy). All draws come from the CPU ``generator``."""
    if label.is_floating_point() or label.ndim not in (3, 4):
        raise ValueError(
            f"labels_to_image needs integer label maps (B, H, W[, D]), got {label.dtype} {tuple(label.shape)}"
        )
    g, dev = generator, label.device
    b, size, dims = label.shape[0], tuple(label.shape[1:]), label.ndim - 1
    n = int(num_classes if num_classes is not None else int(label.max()) + 1)
    if int(label.max()) >= n or int(label.min()) < 0:
        raise ValueError(
            f"labels_to_image: label values must be in 0..{n - 1}, got {int(label.min())}..{int(label.max())}"
        )
    mu = _uniform(g, mean, b, in_channels, n).to(dev)
    sigma = _uniform(g, std, b, in_channels, n).to(dev)
    idx = label.long().unsqueeze(1).expand(b, in_channels, *size).reshape(b, in_channels, -1)
    base = torch.gather(mu, 2, idx).view(b, in_channels, *size)
    spread = torch.gather(sigma, 2, idx).view(b, in_channels, *size)
    unit = torch.randn((b, in_channels, *size), generator=g).to(dev)
    x = base + spread * unit
    widths = _uniform(g, blur, b)
    if float(widths.max()) > 0:
        x = gaussian_blur(x, widths.clamp(min=1e-3).to(dev))
    seeds = torch.randint(0, 2**62, (b,), generator=g).tolist()
    x = (
        x - x.flatten(1).min(1).values.view(-1, *[1] * (dims + 1)) + 1e-3
    )  # positive before the multiplicative field
    x = bias_field(x, seeds, _uniform(g, bias, b), grid=4) if dims in (2, 3) else x
    factors = _uniform(g, resolution, b)
    mode = "bilinear" if dims == 2 else "trilinear"
    for i in range(b):
        f = float(factors[i])
        if f > 1.01:
            low = [max(2, round(s / f)) for s in size]
            xi = F.interpolate(x[i : i + 1], size=low, mode=mode, align_corners=False)
            x[i : i + 1] = F.interpolate(xi, size=size, mode=mode, align_corners=False)
    x = x + _uniform(g, noise, b).to(dev).view(-1, *[1] * (dims + 1)) * torch.randn(x.shape, generator=g).to(
        dev
    )
    lo = x.flatten(1).min(1).values.view(-1, *[1] * (dims + 1))
    hi = x.flatten(1).max(1).values.view_as(lo)
    x = ((x - lo) / (hi - lo).clamp(min=1e-6)).clamp(0, 1)
    return x ** _uniform(g, gamma, b).to(dev).view(-1, *[1] * (dims + 1))
