"""The ``albumentations`` backend (2D, per sample, CPU): each spec entry becomes albumentations 2.x steps.

Mapping (``spec.py`` name -> albumentations; docs/augment.md has the table for all backends):

- rotate / translate / shear / scale -> one ``A.Affine`` each (zero fill; bilinear image, nearest masks).
  translate: ``translate_percent`` per axis (albumentations truncates the shift to whole pixels); shear: two
  angles drawn from the range, x and y shear; scale: ``keep_ratio=True`` (isotropic).
- flip -> ``A.VerticalFlip`` (axis 0) / ``A.HorizontalFlip`` (axis 1); several axes mirror together.
- crop -> ``A.PadIfNeeded`` (centred zero pad) + ``A.RandomCrop`` (``A.CenterCrop`` where it does not fire).
- elastic_dense -> ``A.ElasticTransform(alpha, sigma, noise_distribution="uniform", approximate=False)``:
  in albumentations 2.x that is exactly the Simard field (uniform(-1, 1), Gaussian std ``sigma`` px, times
  ``alpha`` px). elastic_grid: not available here (spec.py restricts it).
- gaussian_blur -> ``A.GaussianBlur(sigma_limit)``; gaussian_noise -> ``A.GaussNoise(std_range)`` (for float
  images the std is in image units); brightness -> ``A.RandomBrightnessContrast`` (additive, x + shift);
  contrast / saturation / hue -> ``A.ColorJitter`` (torchvision semantics; contrast scales around the mean,
  of the grey-scale image for RGB); gamma -> ``A.RandomGamma(gamma_limit = 100 * gamma)`` (x ** gamma).
- smooth: ``A.MedianBlur`` goes through uint8 for float images (``@uint8_io``), so it is written here: an
  ``A.Lambda`` running ``scipy.ndimage.median_filter`` on the float image (mirror border).

Albumentations clips float images to [0, 1] in its pixel (intensity) transforms, so a pipeline with
intensity transforms needs images in [0, 1] (the ct_window, mr_percentile, scale and rgb presets); other
images raise an error that says so. Seeding: one NumPy and one Python generator from ``seed`` shared by
all transforms (``Compose.set_random_state``); ``Compose(seed=...)`` would give every transform the SAME
seed, so e.g. two flips with equal p would always fire together.
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import numpy as np
import torch

from weakseg.augment.sample import SampleTransform

__all__ = ["AlbumentationsTransform"]

_CLIPPING = ("gaussian_blur", "gaussian_noise", "brightness", "contrast", "gamma", "saturation", "hue")


def _median(img: np.ndarray, kernel: int, **_: Any) -> np.ndarray:
    """Median filter of each channel of an (H, W, C) float image, mirror border (like the torch backend)."""
    from scipy.ndimage import median_filter

    return median_filter(img, size=(kernel, kernel, 1), mode="mirror")


def _steps(A: Any, cv2: Any, t: dict, lr_flips: list) -> list:
    """albumentations transforms for one normalised spec entry ``t``; HorizontalFlips go into ``lr_flips``."""
    name, p = t["name"], t["p"]
    geo = dict(interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
               border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0)  # fmt: skip
    jitter = dict(brightness=(1.0, 1.0), contrast=(1.0, 1.0), saturation=(1.0, 1.0), hue=(0.0, 0.0))
    rng = lambda key: tuple(t[key])  # noqa: E731
    if name == "rotate":
        return [A.Affine(rotate=rng("degrees"), p=p, **geo)]
    if name == "translate":
        return [A.Affine(translate_percent={"x": rng("fraction"), "y": rng("fraction")}, p=p, **geo)]
    if name == "shear":  # both keys given: a dict missing "y" would default to 1 degree
        return [A.Affine(shear={"x": rng("degrees"), "y": rng("degrees")}, p=p, **geo)]
    if name == "scale":
        return [A.Affine(scale=rng("factor"), keep_ratio=True, p=p, **geo)]
    if name == "flip":
        flips = [A.VerticalFlip(p=1.0) if axis == 0 else A.HorizontalFlip(p=1.0) for axis in t["axes"]]
        lr_flips.extend(f for f in flips if isinstance(f, A.HorizontalFlip))
        return [A.Sequential(flips, p=p)]
    if name == "crop":
        h, w = t["size"]
        pad = A.PadIfNeeded(min_height=h, min_width=w, position="center", border_mode=cv2.BORDER_CONSTANT,
                            fill=0, fill_mask=0, p=1.0)  # fmt: skip
        if p >= 1.0:
            return [pad, A.RandomCrop(h, w, p=1.0)]
        return [pad, A.OneOf([A.RandomCrop(h, w, p=p), A.CenterCrop(h, w, p=1.0 - p)], p=1.0)]
    if name == "elastic_dense":
        return [A.ElasticTransform(alpha=t["alpha"], sigma=t["sigma"], approximate=False, same_dxdy=False,
                                   noise_distribution="uniform", p=p, **geo)]  # fmt: skip
    if name == "gaussian_blur":
        return [A.GaussianBlur(sigma_limit=rng("sigma"), blur_limit=0, p=p)]
    if name == "gaussian_noise":
        return [A.GaussNoise(std_range=rng("std"), mean_range=(0.0, 0.0), per_channel=True, p=p)]
    if name == "smooth":
        return [A.Lambda(image=partial(_median, kernel=t["kernel"]), name="smooth", p=p)]
    if name == "brightness":
        return [A.RandomBrightnessContrast(brightness_limit=rng("shift"), contrast_limit=(0.0, 0.0),
                                           brightness_by_max=True, p=p)]  # fmt: skip
    if name in ("contrast", "saturation", "hue"):
        key = "hue" if name == "hue" else name
        return [A.ColorJitter(**{**jitter, key: rng("shift" if name == "hue" else "factor")}, p=p)]
    if name == "gamma":
        return [A.RandomGamma(gamma_limit=(100.0 * t["gamma"][0], 100.0 * t["gamma"][1]), p=p)]
    raise NotImplementedError(
        f'transform "{name}" has no albumentations mapping (see weakseg/augment/albu.py)'
    )


class AlbumentationsTransform(SampleTransform):
    """albumentations 2.x pipeline on one 2D sample: CHW tensors <-> HWC float32 arrays, masks as masks."""

    backend = "albumentations"

    def __init__(self, transforms: list[dict], spatial_dims: int, swap_labels=()):
        super().__init__(transforms, spatial_dims, swap_labels)
        import albumentations as A
        import cv2

        self._lr_flips: list = []
        steps = [s for t in self.transforms for s in _steps(A, cv2, t, self._lr_flips)]
        self.compose = A.Compose(steps, additional_targets={"weight": "mask"}, p=1.0)
        names = {t["name"] for t in self.transforms}
        self._clipping = sorted(names & set(_CLIPPING))
        self._jitter = sorted(names & {"contrast", "saturation", "hue"})

    def _check_image(self, x: np.ndarray) -> None:
        if self._clipping and x.size and (float(x.min()) < -1e-3 or float(x.max()) > 1.0 + 1e-3):
            raise ValueError(
                f"backend albumentations clips float images to [0, 1] in {', '.join(self._clipping)}, but "
                f"this image spans [{float(x.min()):.3g}, {float(x.max()):.3g}]; use an intensity preset "
                f'that maps to [0, 1] (ct_window, mr_percentile, scale, rgb) or backend "torch" or "monai"'
            )
        if self._jitter and x.shape[-1] not in (1, 3):
            raise ValueError(
                f"{', '.join(self._jitter)} in backend albumentations (A.ColorJitter) needs 1 or 3 channels, "
                f'the image has {x.shape[-1]}; use backend "torch" or "monai" for other channel counts'
            )

    def _apply(self, image, label, weight, seed):
        x = np.ascontiguousarray(image.permute(1, 2, 0).numpy(), dtype=np.float32)
        self._check_image(x)
        data: dict[str, np.ndarray] = {"image": x}
        if label is not None:  # uint8 where it fits (what albumentations is built for); float32 is exact too
            small = label.numel() == 0 or (int(label.min()) >= 0 and int(label.max()) <= 255)
            data["mask"] = label.numpy().astype(np.uint8 if small else np.float32)
        if weight is not None:
            data["weight"] = np.ascontiguousarray(weight.float().numpy())
        for flip in self._lr_flips:  # a flip's params are only reset when it is reached; reset them all
            flip.params = {}
        self.compose.set_random_state(np.random.default_rng(seed), random.Random(seed))
        out = self.compose(**data)
        fired = sum(bool(f.get_applied_params()) for f in self._lr_flips) % 2 == 1
        img = torch.from_numpy(np.ascontiguousarray(out["image"])).reshape(*out["image"].shape[:2], -1)
        lab = torch.from_numpy(np.ascontiguousarray(out["mask"])).long() if label is not None else None
        wgt = torch.from_numpy(np.ascontiguousarray(out["weight"])) if weight is not None else None
        return img.permute(2, 0, 1), lab, wgt, fired
