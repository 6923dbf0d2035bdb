"""Shared helpers of the losses: target normalisation, class-frequency weights, keyword checks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from weakseg.registry import check_params

__all__ = ["channel_target", "check_kwargs", "index_target", "inverse_frequency_weights"]


def index_target(input: Tensor, target: Tensor) -> Tensor:
    """Return ``target`` as a LongTensor ``(B, *spatial)``; accepts ``(B, *spatial)`` or ``(B, 1, *spatial)``.

    ``input`` is the logits ``(B, C, *spatial)`` the target must match.
    """
    if target.ndim == input.ndim and target.shape[1] == 1:
        target = target[:, 0]
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target has shape {tuple(target.shape)} but the logits are {tuple(input.shape)} (B, C, *spatial): "
            f"expected a label map of shape {expected} or {(input.shape[0], 1, *input.shape[2:])}"
        )
    if target.is_floating_point():
        target = target.round()
    return target.long()


def channel_target(input: Tensor, target: Tensor) -> Tensor:
    """Return ``target`` as a LongTensor ``(B, 1, *spatial)`` (the form MONAI's ``to_onehot_y`` expects)."""
    return index_target(input, target).unsqueeze(1)


def inverse_frequency_weights(target: Tensor, num_classes: int) -> Tensor:
    """Per-class weights ``w_c = (1 / f_c) / mean_k(1 / f_k)`` over the classes present in ``target``.

    ``f_c`` is the fraction of pixels of class ``c`` (values outside ``[0, num_classes)`` are ignored).
    Present classes' weights average 1; absent classes get 0 (they have no pixels to weight).
    """
    flat = target.flatten()
    flat = flat[(flat >= 0) & (flat < num_classes)]
    counts = torch.bincount(flat, minlength=num_classes).to(torch.float32)
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float32, device=target.device)
    if not bool(present.any()):
        return weights
    inverse = counts.sum() / counts[present]
    weights[present] = inverse / inverse.mean()
    return weights


def check_kwargs(owner: str, func: Callable, kwargs: dict, fixed: tuple[str, ...] = ()) -> None:
    """Raise ValueError for keys ``func`` does not take, or that ``owner`` fixes itself, naming the valid keys."""
    for key in kwargs:
        if key in fixed:
            raise ValueError(
                f'{owner}: "{key}" is fixed by weakseg (targets are label maps, logits get a softmax); '
                f"remove it from loss.params"
            )
    check_params(f'loss "{owner}"', func, kwargs, fixed, where="loss.params")
