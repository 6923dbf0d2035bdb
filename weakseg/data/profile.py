"""What the training images looked like (channels, stored dtype, size, intensity range after the preset),
kept in the checkpoint, so ``weakseg predict`` can warn when an input differs: another bit depth or channel
count, a much larger or smaller image, or intensities the network never saw."""

from __future__ import annotations

from typing import Any

import numpy as np

from weakseg.config import DataConfig
from weakseg.data.io import load_image_for_inference

__all__ = ["compare_to_profile", "data_profile"]


def _stats(image: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(image, [1, 99])
    return float(lo), float(hi)


def data_profile(dataset: Any, cfg: DataConfig, n: int = 8) -> dict:
    """The profile of up to ``n`` training images, read from their files as ``predict`` reads its inputs."""
    first: dict[str, int] = {}  # one sample per file (slices of a volume share it): its first index
    for i, r in enumerate(getattr(dataset, "records", [])):
        first.setdefault(r.image, i)
    indices = list(first.values())
    picks = (
        [indices[int(i)] for i in np.linspace(0, len(indices) - 1, num=min(n, len(indices)))]
        if indices
        else []
    )
    sizes, lows, highs, dtypes, channels = [], [], [], set(), set()
    for i in picks:
        r = dataset.records[i]
        if r.kind in ("file", "nifti", "tiff"):
            image, meta = load_image_for_inference(r.image, cfg, r.channels)
            image, dtype = image.numpy(), meta.get("dtype")
        else:  # phantoms: generated, no file
            image, dtype = dataset[i]["image"].numpy(), None
        channels.add(int(image.shape[0]))
        sizes.append(list(image.shape[1:]))
        lo, hi = _stats(image)
        lows.append(lo)
        highs.append(hi)
        if dtype:
            dtypes.add(dtype)
    if not sizes:
        return {}
    return {
        "channels": sorted(channels),
        "dtypes": sorted(dtypes),
        "size": [float(np.median([s[i] for s in sizes if len(s) > i])) for i in range(len(sizes[0]))],
        "low": float(np.median(lows)),
        "high": float(np.median(highs)),
    }


def compare_to_profile(profile: dict, image: np.ndarray, meta: dict) -> list[str]:
    """How an input (as ``load_image_for_inference`` returns it) differs from the training profile."""
    if not profile:
        return []
    out = []
    if image.shape[0] not in profile["channels"]:
        out.append(f"{image.shape[0]} channel(s), the training images had {profile['channels']}")
    dtype = meta.get("dtype")
    if dtype and profile["dtypes"] and dtype not in profile["dtypes"]:
        out.append(
            f"stored as {dtype}, the training images as {', '.join(profile['dtypes'])} (another bit depth?)"
        )
    size = list(image.shape[1:])
    if len(size) == len(profile["size"]) and any(
        s > 2 * t or s < t / 2 for s, t in zip(size, profile["size"])
    ):
        out.append(f"size {size}, the training images about {[int(t) for t in profile['size']]}")
    lo, hi = _stats(image)
    span = max(profile["high"] - profile["low"], 1e-6)
    if hi < profile["low"] + 0.2 * span or lo > profile["high"] - 0.2 * span or hi - lo > 3 * span:
        out.append(
            f"intensities {lo:.3g}..{hi:.3g} after the preset, the training images {profile['low']:.3g}.."
            f"{profile['high']:.3g} (another modality, window or scaling? see data.intensity)"
        )
    return out
