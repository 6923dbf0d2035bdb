"""Intensity presets: raw image values -> float32 network input in [0, 1]. Pure functions on numpy arrays.

Presets (``data.intensity.preset``): ``ct_window`` (HU window, ``window: [level, width]``), ``mr_percentile``
(per image and channel, ``percentiles: [lo, hi]``), ``scale`` (value / ``scale``), ``rgb`` (/255 per channel),
``none`` (unchanged), and ``auto``, which ``resolve_preset`` turns into one of them:

| source kind                 | auto ->                                                      |
|-----------------------------|--------------------------------------------------------------|
| phantom_ct / ct (Decathlon) | ct_window                                                    |
| phantom_mr / mr (Decathlon) | mr_percentile                                                |
| uint8 (PNG/JPG, any file)   | scale                                                        |
| unit_range (already 0..1)   | none                                                         |
| other (HU, 16-bit, floats)  | error: choose ct_window (CT in HU) or mr_percentile yourself |

Raw CT is never squeezed through 8 bits: the window maps float HU directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from weakseg.config import DataConfig
from weakseg.data.records import DataError
from weakseg.registry import suggest

__all__ = [
    "PRESETS",
    "Preset",
    "ct_window",
    "identity",
    "mr_percentile",
    "resolve_preset",
    "rgb",
    "scale",
    "source_kind_of",
]


def ct_window(image_hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Clip to [level - width/2, level + width/2] and map that range linearly to [0, 1]."""
    if width <= 0:
        raise ValueError(f"CT window width must be > 0, got {width}; e.g. data.intensity.window: [40, 400]")
    lo = level - width / 2.0
    return np.clip((np.asarray(image_hu, dtype=np.float32) - lo) / width, 0.0, 1.0)


def mr_percentile(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Clip to the image's [lo, hi] percentiles and map them to [0, 1] (a constant image -> zeros)."""
    if not 0.0 <= lo < hi <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= lo < hi <= 100, got [{lo}, {hi}]")
    image = np.asarray(image, dtype=np.float32)
    p_lo, p_hi = np.percentile(image, [lo, hi])
    if p_hi <= p_lo:
        return np.zeros_like(image)
    return np.clip((image - p_lo) / (p_hi - p_lo), 0.0, 1.0)


def scale(image: np.ndarray, s: float) -> np.ndarray:
    """``image / s`` (uint8 with s = 255 -> [0, 1])."""
    if s == 0:
        raise ValueError("data.intensity.scale must not be 0")
    return np.asarray(image, dtype=np.float32) / np.float32(s)


def rgb(image: np.ndarray) -> np.ndarray:
    """8-bit colour ``(3,H,W)`` -> float in [0, 1], per channel."""
    return np.asarray(image, dtype=np.float32) / np.float32(255.0)


def identity(image: np.ndarray) -> np.ndarray:
    """Values unchanged, as a new float32 array (preset ``none``)."""
    return np.array(image, dtype=np.float32)


PRESETS: dict[str, Callable[..., np.ndarray]] = {
    "none": identity,
    "scale": scale,
    "ct_window": ct_window,
    "mr_percentile": mr_percentile,
    "rgb": rgb,
}


@dataclass(frozen=True)
class Preset:
    """A resolved preset: ``Preset("ct_window", (40.0, 400.0))(image)``. Picklable (DataLoader workers)."""

    name: str
    params: tuple[float, ...] = ()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        fn = PRESETS[self.name]
        if self.name == "mr_percentile" and image.ndim >= 3:  # (C, ...): each channel is its own image
            return np.stack([fn(channel, *self.params) for channel in image]).astype(np.float32, copy=False)
        return fn(image, *self.params).astype(np.float32, copy=False)


def source_kind_of(array: np.ndarray) -> str:
    """What the data looks like, for ``auto``: ``uint8``, ``unit_range`` (all values in [0, 1]) or ``other``."""
    if array.dtype == np.uint8:
        return "uint8"
    if array.size and np.issubdtype(array.dtype, np.number) and array.min() >= 0 and array.max() <= 1:
        return "unit_range"
    return "other"


def resolve_preset(cfg: DataConfig, source_kind: str, where: str = "the images") -> Preset:
    """Turn ``cfg.intensity`` into a ``Preset``; ``source_kind`` (table above) decides ``auto``.

    ``where`` describes the data (file, value range) for the error raised when ``auto`` cannot decide.
    """
    it = cfg.intensity
    name = it.preset
    if name == "auto":
        table = {
            "phantom_ct": "ct_window",
            "ct": "ct_window",
            "phantom_mr": "mr_percentile",
            "mr": "mr_percentile",
            "uint8": "scale",
            "unit_range": "none",
        }
        if source_kind not in table:
            raise DataError(
                f"data.intensity.preset is auto, but {where} are neither 8-bit nor already in [0, 1], so auto "
                "cannot tell CT from MR: set data.intensity.preset to ct_window (CT in Hounsfield units, uses "
                "data.intensity.window) or mr_percentile (MR / arbitrary units, uses data.intensity.percentiles), "
                "or scale with data.intensity.scale (e.g. 65535 for 16-bit files)"
            )
        name = table[source_kind]
    if name == "ct_window":
        if len(it.window) != 2:
            raise DataError(f"data.intensity.window must be [level, width] in HU, got {it.window}")
        return Preset(name, (float(it.window[0]), float(it.window[1])))
    if name == "mr_percentile":
        if len(it.percentiles) != 2:
            raise DataError(
                f"data.intensity.percentiles must be [lo, hi], e.g. [0.5, 99.5], got {it.percentiles}"
            )
        return Preset(name, (float(it.percentiles[0]), float(it.percentiles[1])))
    if name == "scale":
        return Preset(name, (float(it.scale),))
    if name in ("rgb", "none"):
        return Preset(name)
    valid = ["auto", *PRESETS]
    raise DataError(
        f'unknown data.intensity.preset "{it.preset}".{suggest(it.preset, valid)} Valid presets: {", ".join(valid)}'
    )
