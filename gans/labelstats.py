"""Statistics of label maps, to tell how anatomical sampled maps look against the real ones and to select the
label-map GAN's checkpoint by them (not by its last step).

    real = label_map_stats(real_maps, num_classes)      # maps (N, H, W) int
    fake = label_map_stats(sampled_maps, num_classes)
    stat_distance(fake, real)                            # 0 for identical statistics; mean relative error

Per foreground class k: ``frequency`` (share of pixels of class k), ``components`` (connected pieces of
class k per map, 8-connectivity), ``boundary`` (share of class-k pixels on its border: high for thin
vessels, low for compact organs). Hand-written on scipy.ndimage: a few lines, and no library measures these.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["label_map_stats", "stat_distance"]

_EIGHT = np.ones((3, 3), bool)


def label_map_stats(maps: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Mean per-class statistics (arrays of num_classes - 1 values, classes 1..K-1) over ``maps`` (N, H, W)."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or not maps.size:
        raise ValueError(f"label_map_stats needs label maps (N, H, W), got shape {maps.shape}")
    k = range(1, num_classes)
    freq = np.array([[float((m == c).mean()) for c in k] for m in maps])
    comps = np.array([[float(ndimage.label(m == c, structure=_EIGHT)[1]) for c in k] for m in maps])
    boundary = []
    for m in maps:
        row = []
        for c in k:
            region = m == c
            n = int(region.sum())
            inner = ndimage.binary_erosion(region, structure=_EIGHT, border_value=0)
            row.append(float((n - int(inner.sum())) / n) if n else 0.0)
        boundary.append(row)
    return {"frequency": freq.mean(0), "components": comps.mean(0), "boundary": np.array(boundary).mean(0)}


def stat_distance(fake: dict[str, np.ndarray], real: dict[str, np.ndarray]) -> float:
    """Mean over statistics and classes of |fake - real| / max(|real|, floor): 0 when they agree."""
    floors = {"frequency": 1e-3, "components": 0.5, "boundary": 1e-2}
    errors = [np.abs(fake[s] - real[s]) / np.maximum(np.abs(real[s]), floors[s]) for s in real]
    return float(np.mean(np.concatenate(errors)))
