"""Simulated-user evaluation: Dice against the number of clicks, NoC@85/90, and a classical baseline.

For each (image, target class) episode: the first result (the refine checkpoint's first network, thresholded
at 0.5) is scored with no click; then, ``n_clicks`` times, a simulated user clicks the centre of the largest
error region of the current result (``next_click``) and the method re-segments with all clicks so far. Methods:

* ``refine``: the refinement network (``Refine.refine_logits``), with discs of ``click_radius`` around the
  clicks kept at the clicks' labels (``enforce_clicks``), as GrabCut keeps them;
* ``grabcut``: OpenCV's GrabCut (a classical interactive method) started from the same first result
  (probable foreground / background) with the same clicks as definite foreground / background discs
  (radius ``click_radius``), 3 iterations;
* ``guided``: guided feature modulation of the first network (``GuidedModulation``, Rupprecht et al.): its
  features between encoder and decoder rescaled per channel to fit the clicks, weights frozen;
* ``refine+guided``: the refine network with the guided result as its prior;
* ``none``: no interaction (the first result after every click).

NoC@d: the number of clicks after which Dice first reaches d (``n_clicks + 1`` when it never does, as usual).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from weakseg.interactive.clicks import Click, click_discs, enforce_clicks, next_click

__all__ = ["click_curves", "episode_pool", "grabcut_refine", "guided_runner", "noc", "refine_runner"]

Runner = Callable[[np.ndarray, np.ndarray, list[Click], int], np.ndarray]


def _dice(pred: np.ndarray, truth: np.ndarray) -> float:
    total = float(pred.sum() + truth.sum())
    return 1.0 if total == 0 else 2.0 * float((pred & truth).sum()) / total


def episode_pool(dataset, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to ``n`` (sample index, class) episodes of ``dataset``, drawn without replacement from the foreground
    classes present in each sample's label, in dataset order."""
    pool = []
    for i in range(len(dataset)):
        pool += [(i, int(c)) for c in torch.unique(dataset[i]["label"]) if c > 0]
    picks = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    return [pool[k] for k in sorted(picks)]


def grabcut_refine(
    image: np.ndarray, prior: np.ndarray, clicks: list[Click], click_radius: int = 3
) -> np.ndarray:
    """GrabCut on ``image`` (C, H, W) in [0, 1] from the binary ``prior`` (H, W) and the clicks."""
    import cv2

    rgb = np.clip(image * 255 if image.shape[0] == 3 else np.repeat(image[:1] * 255, 3, 0), 0, 255)
    rgb = np.ascontiguousarray(rgb.transpose(1, 2, 0).astype(np.uint8))
    mask = np.where(prior, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[click_discs(clicks, prior.shape, click_radius, True)] = cv2.GC_FGD
    mask[click_discs(clicks, prior.shape, click_radius, False)] = cv2.GC_BGD
    if (
        not ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).any()
        or not ((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)).any()
    ):
        return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)  # GrabCut needs both kinds of pixels
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(rgb, mask, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def click_curves(
    episodes: Iterable[tuple],
    methods: dict[str, Runner],
    n_clicks: int,
) -> dict[str, np.ndarray]:
    """Dice after 0..n_clicks clicks, (episodes, n_clicks + 1) per method; an episode is (image (C, H, W),
    first-result probability (H, W), truth (H, W) bool[, target class, default 1]); a method maps (image,
    prior, clicks, target) to a mask."""
    curves: dict[str, list[list[float]]] = {name: [] for name in methods}
    for image, prob, truth, *rest in episodes:
        target = rest[0] if rest else 1
        prior = prob > 0.5
        for name, run in methods.items():
            state, clicks, dice = prior, [], [_dice(prior, truth)]
            for _ in range(n_clicks):
                click = next_click(state, truth)
                if click is not None:
                    clicks.append(click)
                    state = run(image, prob, clicks, target)
                dice.append(_dice(state, truth))
            curves[name].append(dice)
    return {name: np.asarray(v) for name, v in curves.items()}


def noc(curve: np.ndarray, threshold: float) -> float:
    """Mean number of clicks to reach Dice ``threshold`` (n_clicks + 1 when never reached)."""
    n = curve.shape[1] - 1
    reached = curve >= threshold
    first = np.where(reached.any(1), reached.argmax(1), n + 1)
    return float(first.mean())


def refine_runner(
    method, device: torch.device, click_radius: int = 3, guided: Runner | None = None
) -> Runner:
    """(image, prior probability, clicks, target) -> mask with a ``refine`` method (click discs enforced);
    with ``guided`` (a ``guided_runner`` with ``probabilities=True``) its result is the refine network's prior."""

    @torch.no_grad()
    def run(image: np.ndarray, prob: np.ndarray, clicks: list[Click], target: int = 1) -> np.ndarray:
        if guided is not None:
            prob = guided(image, prob, clicks, target)
        x = torch.from_numpy(image)[None].to(device)
        p = torch.from_numpy(prob.astype(np.float32))[None].to(device)
        mask = (method.refine_logits(x, p, [clicks]).argmax(1)[0] == 1).cpu().numpy()
        return enforce_clicks(mask, clicks, click_radius)

    return run


def guided_runner(
    net: torch.nn.Module,
    device: torch.device,
    steps: int = 20,
    click_radius: int = 3,
    probabilities: bool = False,
    **guide,
) -> Runner:
    """(image, prior, clicks, target) -> mask by guided feature modulation of the segmenter ``net`` (fitted
    afresh to all clicks so far, ``steps`` Adam steps; ``guide``: ``GuidedModulation``'s options), click discs
    enforced; ``probabilities``: the guided probability of ``target`` instead (a prior for refine)."""
    from weakseg.interactive.guided import GuidedModulation

    modulation = GuidedModulation(net.eval(), radius=click_radius, **guide)

    def run(image: np.ndarray, prob: np.ndarray, clicks: list[Click], target: int = 1) -> np.ndarray:
        modulation.reset()
        x = torch.from_numpy(image)[None].to(device)
        p = modulation.fit(x, clicks, target, steps).softmax(1)[0, target].detach().cpu().numpy()
        return p if probabilities else enforce_clicks(p > 0.5, clicks, click_radius)

    return run
