"""Logits of a method for a batch of images of any size: padding to the network's size divisor, or MONAI's
sliding-window inference with stitching on the CPU for large outputs. Used by evaluation, ``weakseg predict``,
the interactive tools and the methods' own pictures."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import torch

from weakseg.config import Config, InferConfig
from weakseg.nets import pad_to_divisor

__all__ = ["infer_window", "predict_logits", "stitch_device"]


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
