"""Evaluation: predict every sample of a split, regroup 2D slices into per-case volumes, score with metrics."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import defaultdict

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from weakseg.config import Config, InferConfig
from weakseg.engine.streams import SHAPE_KEY, pad_collate
from weakseg.keys import Keys
from weakseg.metrics import MetricAccumulator
from weakseg.nets import pad_to_divisor

__all__ = ["evaluate_dataset", "infer_window", "predict_logits"]


@torch.no_grad()
def stitch_device(
    shape: tuple[int, ...], n_classes: int, device: torch.device, bound_mb: float
) -> torch.device:
    """Where sliding-window logits of an input ``shape`` (B,C,*S) are stitched: the CPU when they exceed
    ``bound_mb`` MiB of float32, else the input's own ``device``."""
    out_mb = shape[0] * n_classes * math.prod(shape[2:]) * 4 / 2**20
    return torch.device("cpu") if out_mb > bound_mb else device


def predict_logits(
    method, image: torch.Tensor, amp_dtype: torch.dtype | None = None, window: InferConfig | None = None
) -> torch.Tensor:
    """Logits for a batch (B,C,*spatial), padding each spatial size up to the method's size divisor. With a
    ``window`` (``infer_window(cfg)``) inputs larger than ``window.roi_size`` go through MONAI's
    ``sliding_window_inference`` (Gaussian blending by default); logits larger than
    ``window.stitch_on_cpu_mb`` are accumulated in CPU memory while the windows run on the input's device."""
    ctx = torch.autocast(image.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    roi = None if window is None or window.roi_size is None else tuple(window.roi_size)
    if roi is not None and any(s > r for s, r in zip(image.shape[2:], roi, strict=True)):
        from monai.inferers import sliding_window_inference

        def run(x: torch.Tensor) -> torch.Tensor:
            return _main(method.predict(x)).float()

        n_classes = _main(run(torch.zeros(1, *image.shape[1:2], *roi, device=image.device))).shape[1]
        with ctx, torch.no_grad():
            return sliding_window_inference(
                image,
                roi,
                window.sw_batch_size,
                run,
                overlap=window.overlap,
                mode=window.mode,
                padding_mode="replicate",
                sw_device=image.device,
                device=stitch_device(image.shape, n_classes, image.device, window.stitch_on_cpu_mb),
            ).as_subclass(torch.Tensor)
    padded, crop = pad_to_divisor(image, max(1, int(method.size_divisor)), mode="replicate")
    with ctx:
        logits = _main(method.predict(padded))
    return logits.float()[crop]


def _main(logits):
    """The full-resolution output (the first one when a network returns several, e.g. deep supervision)."""
    return logits[0] if isinstance(logits, (list, tuple)) else logits


def infer_window(cfg: Config) -> InferConfig | None:
    """``cfg.infer`` with ``roi_size`` defaulting to ``data.patch_size``; None when neither is set."""
    roi = cfg.infer.roi_size or cfg.data.patch_size
    return None if roi is None else dataclasses.replace(cfg.infer, roi_size=list(roi))


def evaluate_dataset(
    method,
    dataset,
    num_classes: int,
    class_names: list[str],
    device: torch.device,
    spacing: list[float] | None = None,
    batch_size: int = 16,
    amp_dtype: torch.dtype | None = None,
    n_examples: int = 4,
    progress: bool = False,
    window: InferConfig | None = None,
) -> tuple[MetricAccumulator, list[dict]]:
    """Score ``method`` on every labeled sample of ``dataset``; 2D slices of a case are stacked by name.

    Returns the filled accumulator and up to ``n_examples`` (image, label, pred) slices with the most
    foreground, for overlay pictures.
    """
    was_training = method.training
    method.eval()
    cases: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = defaultdict(list)
    candidates: list[tuple[int, str, dict]] = []
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=0,
        collate_fn=pad_collate(),
        generator=torch.Generator(),
    )
    try:
        for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
            if Keys.LABEL not in batch:
                raise ValueError("evaluation needs labeled samples; this split has no labels")
            logits = predict_logits(method, batch[Keys.IMAGE].to(device), amp_dtype, window)
            preds = logits.argmax(1).cpu().numpy().astype(np.uint8)
            labels = batch[Keys.LABEL].numpy()
            for i, (case, name) in enumerate(zip(batch[Keys.CASE_ID], batch[Keys.NAME])):
                crop = tuple(slice(0, int(s)) for s in batch[SHAPE_KEY][i])  # undo the batch padding
                cases[case].append((name, preds[i][crop], labels[i][crop]))
                fg = int((labels[i] > 0).sum())
                if preds.ndim == 3:  # 2D samples give picture candidates
                    example = {
                        "image": batch[Keys.IMAGE][i][(slice(None), *crop)].numpy(),
                        "label": labels[i][crop],
                        "pred": preds[i][crop],
                    }
                    candidates.append((fg, name, example))
                    candidates.sort(key=lambda c: (-c[0], c[1]))
                    del candidates[n_examples:]
    finally:
        method.train(was_training)
    acc = MetricAccumulator(num_classes, class_names, spacing=spacing)
    for case in sorted(cases):
        items = sorted(cases[case], key=lambda t: t[0])
        shapes = {p.shape for _, p, _ in items}
        if items[0][1].ndim == 2 and len(shapes) == 1:  # slices of one case -> one (Z,H,W) volume
            acc.add(case, np.stack([p for _, p, _ in items]), np.stack([t for _, _, t in items]))
        else:  # 3D samples, or slices of differing sizes: score each sample on its own
            for name, p, t in items:
                acc.add(case if len(items) == 1 else f"{case}/{name}", p, t)
    return acc, [c[2] for c in candidates]
