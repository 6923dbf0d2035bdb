"""Differentiable augmentation for data-efficient GAN training (DiffAugment, Zhao et al. 2020).

    d = DiffAugmented(build_discriminator("patchgan", 4), ("translation", "cutout", "color"), color=(1, 4))
    d.reseed(step)                 # once per training step: the real and the fake batch get the same draws
    score = d(torch.cat([condition, image], 1))

With a handful of training images a discriminator memorises them and the generator's gradient dies. DiffAugment
augments every input of the discriminator, real and fake alike, with transforms that let gradients through to
the generator: ``translation`` (shift by up to ``translation`` of the size, zero fill), ``cutout`` (a zeroed
square of ``cutout`` x the size at a random place) and ``color`` (brightness, saturation for 3 channels,
contrast; only on the ``color`` channel range, e.g. the image channels of a (label, image) pair).

Hand-written: DiffAugment is a reference repository, not a package, and its draws use torch's global RNG;
here every draw comes from a CPU generator reseeded per step, so a resumed run is exact and, within one step,
sample i of the real batch and sample i of the fake batch see the same transform.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["POLICIES", "DiffAugmented", "check_policy", "diff_augment"]

POLICIES = ("translation", "cutout", "color")


def check_policy(policy: Sequence[str], where: str, allowed: Sequence[str] = POLICIES) -> tuple[str, ...]:
    """The policy as a tuple; an unknown or disallowed name raises naming ``where`` and the valid ones."""
    if isinstance(policy, str) or not all(isinstance(p, str) for p in policy):
        raise ValueError(f"{where} must be a list of {', '.join(allowed)}, got {policy!r}")
    bad = [p for p in policy if p not in allowed]
    if bad:
        raise ValueError(f"{where}: {bad} not allowed here; choose from {', '.join(allowed)}")
    return tuple(policy)


def _translate(x: Tensor, g: torch.Generator, ratio: float) -> Tensor:
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (b,), generator=g).tolist()
    dx = torch.randint(-sx, sx + 1, (b,), generator=g).tolist()
    padded = F.pad(x, [sx, sx, sy, sy])
    return torch.stack(
        [padded[i, :, sy - dy[i] : sy - dy[i] + h, sx - dx[i] : sx - dx[i] + w] for i in range(b)]
    )


def _cutout(x: Tensor, g: torch.Generator, ratio: float) -> Tensor:
    b, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    ys = torch.randint(0, h - ch + 1, (b,), generator=g).tolist()
    xs = torch.randint(0, w - cw + 1, (b,), generator=g).tolist()
    keep = torch.ones((b, 1, h, w), dtype=x.dtype)
    for i in range(b):
        keep[i, :, ys[i] : ys[i] + ch, xs[i] : xs[i] + cw] = 0
    return x * keep.to(x.device)


def _color(x: Tensor, g: torch.Generator) -> Tensor:
    b = x.shape[0]
    shape = (b, 1, 1, 1)
    x = x + (torch.rand(shape, generator=g) - 0.5).to(x.device, x.dtype)  # brightness
    if x.shape[1] == 3:
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (2 * torch.rand(shape, generator=g)).to(x.device, x.dtype) + mean  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(shape, generator=g) + 0.5).to(x.device, x.dtype) + mean  # contrast


def diff_augment(
    x: Tensor,
    policy: Sequence[str],
    generator: torch.Generator,
    color: tuple[int, int] | None = None,
    translation: float = 0.125,
    cutout: float = 0.5,
) -> Tensor:
    """Apply ``policy`` (in the order color, translation, cutout) to ``x`` (B, C, H, W); ``color`` = the
    channel range [start, stop) colour changes apply to (default all)."""
    if "color" in policy:
        lo, hi = color or (0, x.shape[1])
        x = torch.cat([x[:, :lo], _color(x[:, lo:hi], generator), x[:, hi:]], 1)
    if "translation" in policy:
        x = _translate(x, generator, translation)
    if "cutout" in policy:
        x = _cutout(x, generator, cutout)
    return x


class DiffAugmented(nn.Module):
    """A discriminator that judges DiffAugment-ed inputs. ``reseed(step)`` before a step's first call."""

    def __init__(
        self, disc: nn.Module, policy: Sequence[str], color: tuple[int, int] | None = None, seed: int = 0
    ):
        super().__init__()
        self.disc, self.policy, self.color, self.base_seed = disc, tuple(policy), color, int(seed)
        self.seed = self.base_seed

    def reseed(self, step: int) -> None:
        self.seed = self.base_seed * 1_000_003 + 7 * step + 3

    def forward(self, x: Tensor) -> Tensor:
        return self.disc(diff_augment(x, self.policy, torch.Generator().manual_seed(self.seed), self.color))

    def __getattr__(self, name: str):  # min_size and friends of the wrapped discriminator
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("disc"), name)
