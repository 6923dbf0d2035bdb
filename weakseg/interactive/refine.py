"""Click-based refinement (DeepIGeoS' R-Net, Wang et al. 2019), method ``refine``: a network corrects a first
segmentation of one target class from the image, that segmentation and distance maps of the user's
foreground and background clicks.

Input channels: the image, the first result's probability of the target class, ``exp(-d_fg / scale)`` and
``exp(-d_bg / scale)`` (d: geodesic or Euclidean distance to the nearest foreground / background click, 1 at a
click, 0 without clicks); output: background / target logits.

Training (stream ``labeled``), per sample and seeded by the step: a target class present in the label (class 1
for an empty label), the first result (``initial``: any weakseg segmentation checkpoint, run frozen; or, with
none, the ground truth corrupted by a random erosion or dilation and a dropped or added blob; with one, a
share ``corrupt_prior`` of the first network's results get the same corruption, since that network fits its
own training images and would leave the clicks little to fix), then 0 to
``max_clicks`` simulated clicks: each goes to the centre of the largest remaining error region
(``weakseg.interactive.clicks.next_click``), which then counts as corrected for the next click. The loss is the
config's loss on the binary target. The first network is part of the checkpoint, so ``weakseg serve`` and the
evaluation need nothing else. ``method.predicts`` is False: the trainer does not score it; evaluation is the
clicks-vs-Dice curve of ``benchmarks/interactive.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor
from torch.optim import Optimizer

from weakseg.api import frozen_initial
from weakseg.interactive.clicks import Click, next_click
from weakseg.interactive.distances import euclidean_distance, geodesic_distance
from weakseg.keys import Keys
from weakseg.losses import build_loss
from weakseg.methods.base import BuildContext, Method, StepContext, make_optimizer
from weakseg.methods.common import main_output
from weakseg.methods.params import initial_param, integer, number, param, rule
from weakseg.nets import build_network
from weakseg.nets.ddp import unwrap

__all__ = ["Refine", "RefineParams", "click_maps"]

DISTANCES = ("geodesic", "euclidean")


@dataclass
class RefineParams:
    """``method.params`` of ``refine``."""

    initial: str | dict[str, Any] | None = initial_param(
        "segmentation checkpoint giving the first result (null: the ground truth, corrupted)"
    )
    max_clicks: int = param(5, integer(0), "simulated clicks per training sample: 0 to this many")
    distance: str = param(
        "geodesic",
        rule(lambda v: v in DISTANCES, "geodesic or euclidean", ("manhattan",)),
        "distance of the click maps: geodesic | euclidean",
    )
    lamb: float = param(1.0, number(), "geodesic distance: weight of the image gradient")
    distance_scale: float = param(20.0, number(1e-6), "click maps are exp(-distance / distance_scale)")
    corrupt_prior: float = param(
        0.5, number(0.0, 1.0), "share of the first network's training results corrupted before the clicks"
    )


def click_maps(
    image: Tensor,
    clicks: list[list[Click]],
    distance: str = "geodesic",
    lamb: float = 1.0,
    scale: float = 20.0,
) -> Tensor:
    """(B, 2, H, W) maps exp(-d / scale) of the foreground and background clicks of each image (B, C, H, W)."""
    b, _, h, w = image.shape
    seeds = torch.zeros(2 * b, h, w, dtype=torch.bool)
    for i, per_image in enumerate(clicks):
        for c in per_image:
            seeds[2 * i + (0 if c.foreground else 1), c.y, c.x] = True
    if distance == "geodesic":
        dist = geodesic_distance(image.detach().float().cpu().repeat_interleave(2, 0), seeds, lamb)
    else:
        dist = torch.stack([euclidean_distance(s) for s in seeds])
    return torch.exp(-dist / scale).view(b, 2, h, w).to(image.device, image.dtype)


def _corrupt(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong first result: erosion or dilation of the truth, then a dropped part or a spurious blob."""
    out = truth.copy()
    k = int(rng.integers(1, max(2, round(0.05 * max(truth.shape)) + 1)))
    out = (
        ndimage.binary_dilation(out, iterations=k)
        if rng.random() < 0.5
        else ndimage.binary_erosion(out, iterations=k)
    )
    h, w = truth.shape
    r = max(2, int(rng.integers(2, max(3, min(h, w) // 6))))
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    yy, xx = np.ogrid[:h, :w]
    blob = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    out = out & ~blob if rng.random() < 0.5 else out | blob
    return out


class Refine(Method):
    streams = ("labeled",)
    predicts = False
    params_class = RefineParams

    def __init__(self, ctx: BuildContext, params: RefineParams) -> None:
        super().__init__()
        if ctx.spatial_dims != 2:
            raise ValueError('method "refine" is 2D: set data.slice_axis to refine slices')
        self.corrupt_prior = params.corrupt_prior
        self.num_classes, self.max_clicks = ctx.num_classes, params.max_clicks
        self.distance, self.lamb, self.scale = params.distance, params.lamb, params.distance_scale
        self.optim_cfg = ctx.optim
        self.seed = ctx.seed
        self.net = build_network(ctx.network, 2, ctx.in_channels + 3, 2, **ctx.network_params)
        self.loss = build_loss(ctx.loss, 2)
        self.initial = frozen_initial(params.initial, ctx) if params.initial else None

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def first_probabilities(self, image: Tensor) -> Tensor:
        """(B, num_classes, H, W) softmax of the first network (``initial``), for a batch of images."""
        if self.initial is None:
            raise RuntimeError('method "refine" was trained without an initial network: pass a first result')
        from weakseg.methods.infer import predict_logits

        self.initial.eval()
        return predict_logits(self.initial, image).softmax(1)

    def refine_logits(self, image: Tensor, prior: Tensor, clicks: list[list[Click]]) -> Tensor:
        """(B, 2, H, W) logits for images (B, C, H, W), priors (B, H, W) in [0, 1] and each image's clicks."""
        from weakseg.nets import pad_to_divisor

        x = torch.cat(
            [
                image.float(),
                prior[:, None].float(),
                click_maps(image, clicks, self.distance, self.lamb, self.scale),
            ],
            1,
        )
        padded, crop = pad_to_divisor(
            x, max(1, int(getattr(unwrap(self.net), "size_divisor", 1))), mode="replicate"
        )
        return main_output(self.net(padded)).float()[crop]

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": make_optimizer(self.net.parameters(), self.optim_cfg)}

    def _episode(self, label: np.ndarray, prior: np.ndarray | None, rng: np.random.Generator):
        present = [c for c in np.unique(label) if c > 0]
        target = int(rng.choice(present)) if present else 1
        truth = label == target
        if prior is None:
            first = _corrupt(truth, rng).astype(np.float32)
        else:
            first = prior[target]
            if rng.random() < self.corrupt_prior:
                # the first network fits its own training images: corrupt its result so that clicks matter
                binary = first > 0.5
                wrong = _corrupt(binary, rng)
                first = np.where(wrong != binary, wrong.astype(np.float32), first)
        state = first > 0.5
        clicks = []
        for _ in range(int(rng.integers(0, self.max_clicks + 1))):
            click = next_click(state, truth)
            if click is None:
                break
            clicks.append(click)
            errors, _ = ndimage.label(state != truth)
            state = np.where(
                errors == errors[click.y, click.x], truth, state
            )  # that region now counts as fixed
        return truth, first, clicks

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        data = batch["labeled"]
        image, labels = data[Keys.IMAGE], data[Keys.LABEL].cpu().numpy()
        rng = np.random.default_rng(
            [self.seed, step, getattr(ctx.dist, "rank", 0)]
        )  # DDP: other draws per rank
        probs = self.first_probabilities(image).cpu().numpy() if self.initial is not None else None
        episodes = [
            self._episode(labels[i], None if probs is None else probs[i], rng) for i in range(len(labels))
        ]
        truth = torch.from_numpy(np.stack([e[0] for e in episodes]).astype(np.int64)).to(image.device)
        prior = torch.from_numpy(np.stack([e[1] for e in episodes])).to(image.device)
        with ctx.autocast():
            logits = self.refine_logits(image, prior, [e[2] for e in episodes])
        loss = self.loss(logits.float(), truth)
        ctx.backward(loss, "net", terms={"refine": loss})
        n_clicks = sum(len(e[2]) for e in episodes) / len(episodes)
        return {"loss": float(loss.detach()), "clicks": n_clicks}

    def predict(self, image: Tensor) -> Tensor:
        raise RuntimeError(
            'method "refine" corrects a first result from clicks: use refine_logits(image, prior, clicks) '
            "(or weakseg serve); evaluation is benchmarks/interactive.py's clicks-vs-Dice curve"
        )

    @property
    def size_divisor(self) -> int:
        return int(getattr(unwrap(self.net), "size_divisor", 1))

    @staticmethod
    def dice(pred: np.ndarray, truth: np.ndarray) -> float:
        """Binary Dice (1.0 when both are empty)."""
        inter, total = float((pred & truth).sum()), float(pred.sum() + truth.sum())
        return 1.0 if total == 0 else 2 * inter / total
