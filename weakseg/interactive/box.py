"""Box-driven segmentation with image-specific fine-tuning (BIFSeg, Wang et al. 2018), method ``box``.

The user draws a box around an object; a network segments the object inside the box (binary), whatever its
class: the crop is the box grown by ``margin`` on each side, resized to ``crop_size``. Training (stream
``labeled``), per sample and seeded by the step: a class present in the label, the bounding box of its largest
connected part, jittered by up to ``jitter`` of its size on each side (users do not draw tight boxes), the
binary target inside.

``fine_tune(image, box, foreground, background)`` adapts a copy of the network to one image for
``steps`` Adam steps (BIFSeg's image-specific fine-tuning): the labels are the current prediction inside the
crop, replaced by the user's clicks / scribbles where given (weight ``scribble_weight``), with uncertain pixels
(probability within ``uncertain`` of 0.5) left out of the loss; the trained network itself is never changed.
``method.predicts`` is False (evaluation: ``benchmarks/interactive.py``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor
from torch.optim import Optimizer

from weakseg.keys import Keys
from weakseg.losses import build_loss
from weakseg.methods.base import BuildContext, Method, StepContext, make_optimizer
from weakseg.methods.common import main_output
from weakseg.methods.params import integer, number, param
from weakseg.nets import build_network
from weakseg.nets.ddp import unwrap

__all__ = ["BoxSeg", "BoxSegParams", "bounding_box"]

Box = tuple[int, int, int, int]  # y0, x0, y1, x1 (inclusive start, exclusive end)


def bounding_box(mask: np.ndarray) -> Box | None:
    """The box of the ``True`` pixels of ``mask`` (H, W), or None when there are none."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def _grow(box: Box, margin: float, shape: tuple[int, int]) -> Box:
    y0, x0, y1, x1 = box
    my, mx = max(1, round(margin * (y1 - y0))), max(1, round(margin * (x1 - x0)))
    return max(0, y0 - my), max(0, x0 - mx), min(shape[0], y1 + my), min(shape[1], x1 + mx)


@dataclass
class BoxSegParams:
    """``method.params`` of ``box``."""

    crop_size: int = param(96, integer(16), "side of the network's input: the grown box, resized")
    margin: float = param(0.1, number(0.0, 1.0), "the box grows by this share of its size on each side")
    jitter: float = param(0.15, number(0.0, 1.0), "training boxes move by up to this share of their size")
    steps: int = param(10, integer(0), "Adam steps of image-specific fine-tuning")
    fine_tune_lr: float = param(1e-4, number(0.0), "learning rate of image-specific fine-tuning")
    scribble_weight: float = param(5.0, number(0.0), "loss weight of the user's clicks / scribbles")
    uncertain: float = param(
        0.2, number(0.0, 0.499), "pixels with probability within this of 0.5 do not teach"
    )


class BoxSeg(Method):
    streams = ("labeled",)
    predicts = False
    params_class = BoxSegParams

    def __init__(self, ctx: BuildContext, params: BoxSegParams) -> None:
        super().__init__()
        if ctx.spatial_dims != 2:
            raise ValueError('method "box" is 2D: set data.slice_axis to segment slices')
        crop_size = params.crop_size
        self.crop_size, self.margin, self.jitter = crop_size, params.margin, params.jitter
        self.steps, self.fine_tune_lr = params.steps, params.fine_tune_lr
        self.scribble_weight, self.uncertain = params.scribble_weight, params.uncertain
        self.optim_cfg, self.seed = ctx.optim, ctx.seed
        self.net = build_network(ctx.network, 2, ctx.in_channels, 2, **ctx.network_params)
        div = int(getattr(self.net, "size_divisor", 1))
        if crop_size % div:  # the network's divisor, known once it is built
            raise ValueError(f'method "box": method.params.crop_size {crop_size} must be a multiple of {div}')
        self.loss = build_loss(ctx.loss, 2)

    # ------------------------------------------------------------------ crops
    def _crop(self, image: Tensor, box: Box) -> Tensor:
        """(C, H, W) -> (1, C, crop_size, crop_size): the grown box, resized."""
        y0, x0, y1, x1 = _grow(box, self.margin, tuple(image.shape[1:]))
        return F.interpolate(
            image[None, :, y0:y1, x0:x1].float(), size=(self.crop_size,) * 2, mode="bilinear"
        )

    def _paste(self, prob: Tensor, box: Box, shape: tuple[int, int]) -> Tensor:
        y0, x0, y1, x1 = _grow(box, self.margin, shape)
        out = torch.zeros(shape, device=prob.device)
        out[y0:y1, x0:x1] = F.interpolate(prob[None, None], size=(y1 - y0, x1 - x0), mode="bilinear")[0, 0]
        return out

    def segment_box(self, image: Tensor, box: Box, net: torch.nn.Module | None = None) -> Tensor:
        """Foreground probability (H, W) of the object in ``box`` of ``image`` (C, H, W); 0 outside the crop."""
        net = net or self.net
        logits = main_output(net(self._crop(image, box)))
        return self._paste(logits.float().softmax(1)[0, 1], box, tuple(image.shape[1:]))

    # ------------------------------------------------------------------ image-specific fine-tuning
    def fine_tune(
        self,
        image: Tensor,
        box: Box,
        foreground: np.ndarray | None = None,
        background: np.ndarray | None = None,
    ) -> Tensor:
        """Probability (H, W) after ``steps`` steps of fine-tuning a copy of the network on this image, with
        the user's foreground / background pixels (bool (H, W) masks: clicks or scribbles)."""
        net = copy.deepcopy(unwrap(self.net)).train()
        with torch.no_grad():
            prob = self.segment_box(image, box, net.eval())
        shape = tuple(image.shape[1:])
        labels = (prob > 0.5).long()
        weight = ((prob - 0.5).abs() >= self.uncertain).float()  # uncertain pixels do not teach
        y0, x0, y1, x1 = _grow(box, self.margin, shape)
        grow = max(0, int(np.ceil(max(y1 - y0, x1 - x0) / self.crop_size)) - 1)  # clicks survive the resize
        for mask, value in ((foreground, 1), (background, 0)):
            if mask is not None:
                mark = np.asarray(mask, bool)
                mark = ndimage.binary_dilation(mark, iterations=grow) if grow and mark.any() else mark
                m = torch.as_tensor(mark, device=prob.device)
                labels[m], weight[m] = value, self.scribble_weight
        crop = self._crop(image, box)
        size = (self.crop_size,) * 2
        lab = F.interpolate(labels[None, None, y0:y1, x0:x1].float(), size=size, mode="nearest")[0, 0].long()
        wgt = F.interpolate(weight[None, None, y0:y1, x0:x1], size=size, mode="nearest")[0, 0]
        opt = torch.optim.Adam(net.parameters(), lr=self.fine_tune_lr)
        net.train()
        for _ in range(self.steps):
            logits = main_output(net(crop))
            ce = F.cross_entropy(logits.float(), lab[None], reduction="none")[0]
            loss = (ce * wgt).sum() / wgt.sum().clamp(min=1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return self.segment_box(image, box, net.eval())

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"net": make_optimizer(self.net.parameters(), self.optim_cfg)}

    def _example(self, image: Tensor, label: np.ndarray, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        present = [c for c in np.unique(label) if c > 0]
        h, w = label.shape
        if present:
            target = label == int(rng.choice(present))
            parts, n = ndimage.label(target)
            sizes = np.bincount(parts.ravel())[1:]
            target = parts == int(np.argmax(sizes)) + 1
            y0, x0, y1, x1 = bounding_box(target)
        else:  # nothing to segment: a random box with an empty target
            target = np.zeros_like(label, bool)
            y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            y1, x1 = y0 + h // 4 + 1, x0 + w // 4 + 1
        jy, jx = self.jitter * (y1 - y0), self.jitter * (x1 - x0)
        box = (
            int(np.clip(y0 + rng.uniform(-jy, jy), 0, h - 1)),
            int(np.clip(x0 + rng.uniform(-jx, jx), 0, w - 1)),
            int(np.clip(y1 + rng.uniform(-jy, jy), 1, h)),
            int(np.clip(x1 + rng.uniform(-jx, jx), 1, w)),
        )
        box = (box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1))
        crop = self._crop(image, box)[0]
        y0, x0, y1, x1 = _grow(box, self.margin, (h, w))
        truth = torch.from_numpy(target[y0:y1, x0:x1].astype(np.float32))[None, None]
        truth = F.interpolate(truth, size=(self.crop_size,) * 2, mode="nearest")[0, 0].long()
        return crop, truth

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        data = batch["labeled"]
        rng = np.random.default_rng(
            [self.seed, step, getattr(ctx.dist, "rank", 0)]
        )  # DDP: other draws per rank
        labels = data[Keys.LABEL].cpu().numpy()
        pairs = [self._example(data[Keys.IMAGE][i], labels[i], rng) for i in range(len(labels))]
        crops = torch.stack([p[0] for p in pairs])
        truth = torch.stack([p[1] for p in pairs]).to(crops.device)
        with ctx.autocast():
            logits = main_output(self.net(crops))
        loss = self.loss(logits.float(), truth)
        ctx.backward(loss, "net", terms={"box": loss})
        return {"loss": float(loss.detach())}

    def predict(self, image: Tensor) -> Tensor:
        raise RuntimeError(
            'method "box" segments inside a user\'s box: use segment_box(image, box) or fine_tune'
        )

    @property
    def size_divisor(self) -> int:
        return int(getattr(unwrap(self.net), "size_divisor", 1))
