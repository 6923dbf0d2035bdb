"""U-Net border-weighted cross-entropy (Ronneberger et al. 2015; survey eqs. 4-5).

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

``w_c`` balances the classes, ``d1``/``d2`` are the distances to the nearest and second-nearest object.
The map is computed from the target on the CPU (SciPy) and only multiplies the per-pixel CE:

    >>> BorderWeightedCrossEntropyLoss(w0=10, sigma=5)(logits_B_C_H_W, labels_B_H_W)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from weakseg.losses._utils import index_target, inverse_frequency_weights

__all__ = ["BorderWeightedCrossEntropyLoss", "unet_border_weight_map"]


def _check_flags(w0: float, sigma: float) -> None:
    if w0 < 0:
        raise ValueError(f"w0 must be >= 0, got {w0}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0 (pixels), got {sigma}")


# Hand-written: MONAI has no U-Net border weight map.
def unet_border_weight_map(
    label: np.ndarray,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: Sequence[float] | None = None,
    background_only: bool = True,
) -> np.ndarray:
    """U-Net weight map of one 2D or 3D label map (ints, 0 = background); returns float32, same shape.

    Objects are the connected components (face connectivity) of each foreground class, so touching organs
    of different classes are separate objects. ``d1``/``d2`` are Euclidean distances in pixels to the
    nearest/second-nearest object; with fewer than two objects the border term is 0.
    ``class_weights`` (one per class) gives ``w_c``; ``None`` = inverse class frequency of this label,
    present classes averaging 1. ``background_only`` adds the border term on background pixels only
    (inside an object ``d1 = 0``), as common implementations do; False applies it everywhere.
    """
    _check_flags(w0, sigma)
    label = np.asarray(label)
    integer = np.issubdtype(label.dtype, np.integer) or label.dtype == bool
    if label.ndim not in (2, 3) or not integer:
        raise ValueError(
            f"label must be a 2D or 3D integer array, got shape {label.shape} dtype {label.dtype}"
        )
    label = label.astype(np.int64)
    if label.size and label.min() < 0:
        raise ValueError(f"label values must be >= 0, got {label.min()}")
    if class_weights is None:
        wc = inverse_frequency_weights(torch.from_numpy(label), int(label.max()) + 1).numpy()
    else:
        wc = np.asarray(class_weights, dtype=np.float64)
        if label.max() >= len(wc):
            raise ValueError(
                f"label contains class {label.max()} but class_weights has only {len(wc)} entries: "
                "give one weight per class, background first"
            )
    weight = wc[label].astype(np.float64)
    if w0 == 0:
        return weight.astype(np.float32)
    d1 = np.full(label.shape, np.inf)
    d2 = np.full(label.shape, np.inf)
    for c in np.unique(label[label > 0]):
        components, n = ndimage.label(label == c)
        for k in range(1, n + 1):
            dist = ndimage.distance_transform_edt(components != k)
            d2 = np.minimum(d2, np.maximum(d1, dist))  # running two smallest distances over objects
            d1 = np.minimum(d1, dist)
    if np.isfinite(d2).any():
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))
        if background_only:
            border = border * (label == 0)
        weight = weight + border
    return weight.astype(np.float32)


class BorderWeightedCrossEntropyLoss(nn.Module):
    """Mean over pixels of ``unet_border_weight_map(target) * CE(logits, target)``.

    The map is recomputed per sample under ``torch.no_grad`` on the CPU; ``class_weights=None`` uses each
    sample's inverse class frequencies.
    """

    def __init__(
        self,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_weights: Sequence[float] | None = None,
        num_classes: int | None = None,
        background_only: bool = True,
    ) -> None:
        super().__init__()
        _check_flags(w0, sigma)
        if class_weights is not None:
            if isinstance(class_weights, str):
                raise ValueError(
                    f"class_weights must be a list of floats or null, got the string {class_weights!r}"
                )
            class_weights = [float(w) for w in class_weights]
            if num_classes is not None and len(class_weights) != num_classes:
                raise ValueError(
                    f"class_weights has {len(class_weights)} entries but there are {num_classes} classes: "
                    "give one weight per class, background first"
                )
        self.w0, self.sigma = w0, sigma
        self.class_weights, self.background_only = class_weights, background_only

    @torch.no_grad()
    def weight_map(self, target: Tensor) -> Tensor:
        """Weight maps ``(B, *spatial)`` for a label batch ``(B, *spatial)``, on the target's device."""
        labels = target.detach().cpu().numpy()
        maps = [
            unet_border_weight_map(lab, self.w0, self.sigma, self.class_weights, self.background_only)
            for lab in labels
        ]
        return torch.from_numpy(np.stack(maps)).to(target.device)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        target = index_target(input, target)
        weights = self.weight_map(target).to(input.dtype)
        return (weights * F.cross_entropy(input, target, reduction="none")).mean()
