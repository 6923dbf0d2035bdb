"""Simulated users: a click goes where the current result is most wrong (DeepIGeoS, Xu et al. 2016).

``next_click(pred, truth)``: the largest connected error region of a binary result decides the click: a
foreground click when the region is missed foreground (false negative), a background click when it is false
positive; the click is the region's pixel farthest from the region's border (its "centre"; ties -> the first
in row-major order, so simulations are deterministic). ``simulate_clicks`` applies it repeatedly to a result
that a callback updates after each click. Connected components and distances come from ``scipy.ndimage``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Click", "click_discs", "enforce_clicks", "next_click", "simulate_clicks"]


@dataclass(frozen=True)
class Click:
    y: int
    x: int
    foreground: bool


def click_discs(clicks: list[Click], shape: tuple[int, int], radius: int, foreground: bool) -> np.ndarray:
    """Bool (H, W): discs of ``radius`` pixels around the foreground (or background) clicks."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    out = np.zeros(shape, bool)
    for c in clicks:
        if c.foreground == foreground:
            out |= (yy - c.y) ** 2 + (xx - c.x) ** 2 <= radius * radius
    return out


def enforce_clicks(mask: np.ndarray, clicks: list[Click], radius: int = 3) -> np.ndarray:
    """``mask`` (H, W) with discs of ``radius`` around the clicks set to their labels, background discs over
    foreground ones as in GrabCut's mask (``grabcut_refine``), then every clicked pixel itself at its label:
    what the user marked stays marked. Without it a network that ignores a click gets the same simulated click
    again and again."""
    out = np.asarray(mask, bool).copy()
    out[click_discs(clicks, out.shape, radius, True)] = True
    out[click_discs(clicks, out.shape, radius, False)] = False
    for c in clicks:
        out[c.y, c.x] = c.foreground
    return out


def next_click(pred: np.ndarray, truth: np.ndarray) -> Click | None:
    """The click a user would make on binary ``pred`` given binary ``truth`` (H, W); None when they agree."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"next_click: pred {pred.shape} and truth {truth.shape} differ in shape")
    best: tuple[int, np.ndarray, bool] | None = None
    for errors, foreground in ((truth & ~pred, True), (pred & ~truth, False)):
        labels, n = ndimage.label(errors)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        k = int(np.argmax(sizes))
        if best is None or sizes[k] > best[0]:
            best = (int(sizes[k]), labels == k + 1, foreground)
    if best is None:
        return None
    _, region, foreground = best
    inside = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]  # border of the image counts too
    y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
    return Click(int(y), int(x), foreground)


def simulate_clicks(
    pred: np.ndarray,
    truth: np.ndarray,
    n_clicks: int,
    refine: Callable[[list[Click]], np.ndarray],
) -> tuple[list[Click], list[np.ndarray]]:
    """Up to ``n_clicks`` clicks, each placed on the result ``refine(clicks so far)`` returned; the results
    after 0, 1, ... clicks (stops early once the result is perfect)."""
    clicks: list[Click] = []
    results = [np.asarray(pred, bool)]
    for _ in range(n_clicks):
        click = next_click(results[-1], truth)
        if click is None:
            break
        clicks.append(click)
        results.append(np.asarray(refine(list(clicks)), bool))
    return clicks, results
