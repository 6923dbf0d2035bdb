"""Boundary loss (Kervadec et al. 2019) combined with generalized Dice (survey eq. 10).

    L = alpha * L_GD + (1 - alpha) * L_B,   L_B = mean over pixels of p_c(x) * phi_c(x)

``phi_c`` is the signed distance map of class ``c`` (negative inside, positive outside), foreground
classes only. ``alpha`` starts at 1 and drops by ``alpha_step`` every ``alpha_every`` steps down to
``alpha_min``; the training method drives it with ``update(step, max_steps)``:

    >>> loss = BoundaryLoss(alpha_step=0.01, alpha_every=100); loss.update(250, 1000); loss.alpha  # 0.98
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor, nn

from weakseg.losses._utils import index_target
from weakseg.losses.region import GeneralizedDiceLoss

__all__ = ["BoundaryLoss", "boundary_alpha", "boundary_loss", "signed_distance_map"]


# Hand-written: monai.losses.BoundaryLoss only exists in recent MONAI (pyproject allows >=1.3) and has no
# alpha schedule; tests/losses/test_boundary.py checks both agree where MONAI has it.
def signed_distance_map(label_onehot: np.ndarray) -> np.ndarray:
    """Signed distance maps ``(C, *spatial)`` float32 of a one-hot (or boolean) ``(C, *spatial)`` mask.

    As Kervadec et al.'s reference code: outside a class, the Euclidean distance (pixels) to its nearest
    pixel; inside, ``-(distance to the nearest outside pixel - 1)``, so the class's own edge pixels are 0.
    A class that is absent, or fills the whole image, has no boundary: its map is all zeros (it adds
    nothing to the boundary term; the generalized Dice term still penalises it).
    """
    masks = np.asarray(label_onehot).astype(bool)
    if masks.ndim < 2:
        raise ValueError(f"label_onehot must be (C, *spatial), got shape {masks.shape}")
    sdm = np.zeros(masks.shape, dtype=np.float32)
    for c, pos in enumerate(masks):
        if pos.any() and not pos.all():
            neg = ~pos
            sdm[c] = (
                ndimage.distance_transform_edt(neg) * neg - (ndimage.distance_transform_edt(pos) - 1) * pos
            )
    return sdm


def boundary_loss(probs: Tensor, sdm: Tensor) -> Tensor:
    """Kervadec's boundary loss: mean over every element of ``probs * sdm`` (both ``(B, K, *spatial)``)."""
    if probs.shape != sdm.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and sdm {tuple(sdm.shape)} must have the same shape")
    return (probs * sdm.to(probs.dtype)).mean()


def boundary_alpha(
    step: int, alpha_step: float = 0.01, alpha_every: int = 100, alpha_min: float = 0.01
) -> float:
    """``max(alpha_min, 1 - alpha_step * (step // alpha_every))``: the GD weight at a training step."""
    return max(alpha_min, 1.0 - alpha_step * (step // alpha_every))


class BoundaryLoss(nn.Module):
    """``alpha * GeneralizedDice + (1 - alpha) * boundary_loss`` with the scheduled ``alpha`` (eq. 10).

    The boundary term covers the foreground classes (1 .. C-1); signed distance maps come from the target
    on the CPU without gradients. ``include_background`` is passed to the generalized Dice term.
    While ``alpha == 1`` the boundary term is skipped (its weight is 0).
    """

    def __init__(
        self,
        alpha_step: float = 0.01,
        alpha_every: int = 100,
        alpha_min: float = 0.01,
        include_background: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha_min <= 1.0:
            raise ValueError(f"alpha_min must be in [0, 1], got {alpha_min}")
        if alpha_step < 0:
            raise ValueError(f"alpha_step must be >= 0, got {alpha_step}")
        if alpha_every < 1:
            raise ValueError(f"alpha_every must be >= 1 step, got {alpha_every}")
        self.alpha_step, self.alpha_every, self.alpha_min = alpha_step, alpha_every, alpha_min
        self.alpha = 1.0
        self.gd = GeneralizedDiceLoss(include_background=include_background)

    def update(self, step: int, max_steps: int) -> None:
        """Set ``alpha`` for ``step`` (``max_steps`` is unused: the schedule counts steps)."""
        self.alpha = boundary_alpha(step, self.alpha_step, self.alpha_every, self.alpha_min)

    @torch.no_grad()
    def distance_maps(self, target: Tensor, num_classes: int) -> Tensor:
        """Signed distance maps ``(B, C, *spatial)`` of a label batch ``(B, *spatial)``."""
        onehot = F.one_hot(target, num_classes).movedim(-1, 1).cpu().numpy()
        return torch.from_numpy(np.stack([signed_distance_map(o) for o in onehot])).to(target.device)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        target = index_target(input, target)
        gd = self.gd(input, target)
        if self.alpha >= 1.0:
            return gd
        sdm = self.distance_maps(target, input.shape[1])[:, 1:]
        lb = boundary_loss(torch.softmax(input, dim=1)[:, 1:], sdm)
        return self.alpha * gd + (1.0 - self.alpha) * lb
