"""Validation of decoded images and masks. Every error names the file, what was expected and how to fix it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weakseg.config import DataConfig
from weakseg.data.records import DataError

__all__ = ["check_image", "check_label", "size_str"]


def size_str(shape: tuple[int, ...]) -> str:
    """``(255, 256)`` -> ``"255x256"`` (height x width [x depth])."""
    return "x".join(str(int(s)) for s in shape)


def check_image(image: np.ndarray, path: str | Path, cfg: DataConfig) -> None:
    """Channel count matches ``data.in_channels``; values are numbers and finite. ``image`` is ``(C, ...)``."""
    channels = image.shape[0]
    if channels != cfg.in_channels:
        kind = {1: "grey", 3: "colour (RGB)"}.get(channels, f"{channels}-channel")
        raise DataError(
            f"image {path} is {kind} with {channels} channel(s), but data.in_channels is {cfg.in_channels}: "
            f"set data.in_channels: {channels} or convert the images"
        )
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise DataError(f"image {path} has non-numeric dtype {image.dtype}; expected integer or float pixels")
    if np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.complexfloating):
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        if bad:
            raise DataError(
                f"image {path} contains {bad} NaN/inf value(s); expected finite numbers: fix the file "
                "(e.g. re-run the resampling / conversion that produced it) or remove it"
            )


def check_label(
    label: np.ndarray, image_shape: tuple[int, ...], path: str | Path, image_path: str | Path, cfg: DataConfig
) -> np.ndarray:
    """Return the label map as uint8 (int64 when num_classes > 256) after checking size and values.

    A binary mask stored as 0/255 (a common PNG convention) is mapped 255 -> 1 when ``data.num_classes`` is 2.
    """
    kind = "mask" if label.ndim == 2 else "label volume"
    if tuple(label.shape) != tuple(image_shape):
        raise DataError(
            f"{kind} {path} is {size_str(label.shape)}, image {Path(image_path).name} is {size_str(image_shape)}: "
            f"{kind}s must match their image's size"
        )
    if label.size == 0:
        return label.astype(np.uint8)
    if not np.issubdtype(label.dtype, np.integer) and label.dtype != bool:
        if not np.issubdtype(label.dtype, np.floating) or not np.array_equal(label, np.round(label)):
            raise DataError(
                f"{kind} {path} holds non-integer values ({label.dtype}); labels must be integers "
                "0..num_classes-1: was it resampled with linear interpolation? use nearest-neighbour"
            )
    lo, hi = label.min(), label.max()
    if lo < 0:
        raise DataError(f"{kind} {path} holds the negative label value {lo}; labels must be 0..num_classes-1")
    n = cfg.num_classes
    if n == 2 and hi == 255 and np.isin(label, (0, 255)).all():
        label = label == 255
        hi = 1
    if hi >= n:
        raise DataError(
            f"{kind} {path} holds label value {int(hi)}, but data.num_classes is {n} (values must be 0..{n - 1}): "
            f"set data.num_classes to {int(hi) + 1} (and data.class_names) or fix the {kind}"
        )
    return label.astype(np.uint8 if n <= 256 else np.int64)
