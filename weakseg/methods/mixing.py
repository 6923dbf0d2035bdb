"""Strong views and box mixing for the consistency methods (fixmatch, unimatch, cps, bcp).

    strong = StrongView("fixmatch", transforms=None, cutmix_p=0.5, spatial_dims=2)
    view = strong(x_weak, pseudo, confident, torch.Generator().manual_seed(step))
    view.image, view.target, view.mask       # (B,C,H,W), (B,H,W) int64, (B,H,W) bool: all three aligned

A strong view is the weak view (the batch's geometric augmentation, already applied by the trainer) with
intensity-only perturbations (schema entries of weakseg/augment/spec.py, run by the batched torch backend) and
CutMix between the unlabeled images of the batch. No geometric change happens between the views, so a pixel of
the strong view sits where its pseudo-label does; CutMix moves image, pseudo-label and confidence mask with one
box. Every random draw comes from the CPU generator passed in (seeded by the step: exact resume).

The box sampling and the mixing are hand-written (kornia's CutMix mixes images and labels but not a confidence
mask, and BCP needs the box itself); they are a few lines of tensor indexing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from weakseg.augment.spec import TRANSFORMS, normalize_transform
from weakseg.augment.torch_backend import BatchAugment
from weakseg.keys import Keys
from weakseg.methods.params import custom, param

__all__ = [
    "DEFAULT_STRONG",
    "StrongView",
    "cutmix_param",
    "strong_param",
    "View",
    "bcp_mix",
    "box_masks",
    "check_cutmix_p",
    "check_strong",
    "cutmix",
]

# UniMatch's strong intensity perturbations (colour jitter, greyscale-free for 1-channel scans, blur) plus
# noise and gamma as in the medical variants
DEFAULT_STRONG: list[dict] = [
    {"name": "brightness", "p": 0.8, "shift": [-0.2, 0.2]},
    {"name": "contrast", "p": 0.8, "factor": [0.6, 1.4]},
    {"name": "gamma", "p": 0.5, "gamma": [0.6, 1.6]},
    {"name": "gaussian_blur", "p": 0.5, "sigma": [0.1, 1.5]},
    {"name": "gaussian_noise", "p": 0.5, "std": [0.0, 0.05]},
]


@dataclass
class View:
    image: Tensor  # (B, C, *S)
    target: Tensor  # (B, *S) int64 pseudo-labels
    mask: Tensor  # (B, *S) bool: pixels whose pseudo-label counts


def box_masks(
    b: int,
    size: tuple[int, ...],
    generator: torch.Generator,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
    p: float = 1.0,
) -> Tensor:
    """(B, *size) bool boxes, one per sample, covering a uniform ``area`` fraction with an aspect ratio drawn
    log-uniformly from ``ratio`` (UniMatch's ``obtain_cutmix_box``); a sample gets an empty box with
    probability 1 - ``p``. 2D boxes on (H, W); 3D boxes span the last axis too (cube-root sides)."""
    out = torch.zeros((b, *size), dtype=torch.bool)
    fire = torch.rand(b, generator=generator) < p
    u = torch.rand(b, 4, generator=generator, dtype=torch.float64)
    for i in range(b):
        a = (area[0] + (area[1] - area[0]) * u[i, 0]) * math.prod(size)
        r = math.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[i, 1])
        if len(size) == 2:
            sides = [math.sqrt(a / r), math.sqrt(a * r)]
        else:
            c = a ** (1 / 3)
            sides = [c / math.sqrt(r), c * math.sqrt(r), c]
        sides = [max(1, min(n, int(round(s)))) for s, n in zip(sides, size)]
        starts = [int(u[i, 2 + k] * (n - s + 1)) if k < 2 else 0 for k, (s, n) in enumerate(zip(sides, size))]
        if len(size) == 3:
            starts[2] = (size[2] - sides[2]) // 2
        if fire[i]:
            out[(i, *[slice(st, st + s) for st, s in zip(starts, sides)])] = True
    return out


def _expand(box: Tensor, like: Tensor) -> Tensor:
    """A (B, *S) box broadcast against ``like`` (B, C, *S) or (B, *S)."""
    return box[:, None] if like.ndim == box.ndim + 1 else box


def cutmix(box: Tensor, *pairs: tuple[Tensor, Tensor]) -> list[Tensor]:
    """For each (a, b) pair: ``a`` with ``b`` pasted inside ``box`` (B, *S); one box for every pair."""
    box = box.to(pairs[0][0].device)
    return [torch.where(_expand(box, a), b, a) for a, b in pairs]


def bcp_mix(
    fg_image: Tensor, fg_label: Tensor, bg_image: Tensor, bg_label: Tensor, box: Tensor
) -> tuple[Tensor, Tensor]:
    """Bidirectional copy-paste (Bai et al. 2023): ``fg`` inside ``box``, ``bg`` outside, for the image and its
    (label or pseudo-label) map alike. Inward: labeled fg into unlabeled bg; outward: the reverse."""
    image, label = cutmix(box, (bg_image, fg_image), (bg_label, fg_label))
    return image, label


def check_strong(method: str, transforms: Any) -> list | None:
    """``method.params.strong``: a list of augmentation entries or ``None`` (DEFAULT_STRONG); the entries
    themselves are checked by ``StrongView`` (their schema depends on the data's dimensions)."""
    if transforms is not None and not isinstance(transforms, list):
        raise ValueError(
            f'method "{method}": method.params.strong must be a list of augmentation entries such as '
            f"{{name: gamma, p: 0.5, gamma: [0.7, 1.5]}}, got {transforms!r}"
        )
    return transforms


def check_cutmix_p(method: str, cutmix_p: Any) -> float:
    """``method.params.cutmix_p``: a probability in [0, 1]."""
    if not (isinstance(cutmix_p, (int, float)) and not isinstance(cutmix_p, bool) and 0 <= cutmix_p <= 1):
        raise ValueError(f'method "{method}": method.params.cutmix_p must be in [0, 1], got {cutmix_p!r}')
    return float(cutmix_p)


class StrongView:
    """Intensity perturbations from ``transforms`` (augmentation-schema entries; ``None`` = DEFAULT_STRONG)
    and CutMix with probability ``cutmix_p`` between the batch's samples (sample i takes a box of i + 1)."""

    def __init__(
        self, method: str, transforms: list[dict] | None, cutmix_p: float, spatial_dims: int
    ) -> None:
        entries = check_strong(method, transforms)
        entries = DEFAULT_STRONG if entries is None else entries
        checked = []
        for i, t in enumerate(entries):
            where = f"method.params.strong[{i}]"
            t = normalize_transform(t, where, spatial_dims)
            if TRANSFORMS[t["name"]].kind != "intensity":
                raise ValueError(
                    f'method "{method}": {where} is "{t["name"]}", a geometric transform; a strong view may '
                    "only change intensities (the pseudo-labels of the weak view must stay aligned). Put "
                    "geometric transforms in augment.transforms (the weak view of both streams)"
                )
            checked.append(t)
        cutmix_p = check_cutmix_p(method, cutmix_p)
        self.transforms = checked
        self.augment = BatchAugment(checked, spatial_dims) if checked else None
        self.cutmix_p = cutmix_p

    def __call__(self, image: Tensor, target: Tensor, mask: Tensor, generator: torch.Generator) -> View:
        if self.augment is not None:
            image = self.augment({Keys.IMAGE: image}, generator)[Keys.IMAGE]
        if self.cutmix_p > 0 and image.shape[0] > 1:
            box = box_masks(image.shape[0], tuple(image.shape[2:]), generator, p=self.cutmix_p)
            image, target, mask = cutmix(box, *[(x, x.roll(-1, 0)) for x in (image, target, mask)])
        return View(image, target, mask)


def strong_param(of: str) -> Any:
    """The ``strong`` field of a method's params: intensity-only augmentation entries of the strong view
    (``of`` says whose view, for ``weakseg list methods``)."""
    return param(
        None,
        custom(lambda p, key, value: check_strong(p.method, value), ("gamma",)),
        f"intensity-only augmentation entries of the strong view of {of} (null: DEFAULT_STRONG)",
    )


def cutmix_param(of: str) -> Any:
    """The ``cutmix_p`` field of a method's params: the probability of CutMix between ``of``."""
    return param(
        0.5,
        custom(lambda p, key, value: check_cutmix_p(p.method, value), (2, -0.5, "abc")),
        f"probability of CutMix between {of}",
    )
