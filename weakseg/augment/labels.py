"""Lateralized label pairs: the one check and the one swap every backend uses after a left-right flip."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["check_swap_pairs", "swap_label_pairs"]


def check_swap_pairs(swap_labels: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """``data.swap_labels`` as (a, b) tuples; each pair must be two different foreground labels."""
    pairs = []
    for pair in swap_labels:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2
        if not ok or not all(isinstance(v, int) and v > 0 for v in pair) or pair[0] == pair[1]:
            raise ValueError(
                f"swap_labels pairs are two different foreground labels, e.g. [[2, 3]]; got {pair!r}"
            )
        pairs.append((int(pair[0]), int(pair[1])))
    return pairs


def swap_label_pairs(
    label: torch.Tensor, pairs: Sequence[Sequence[int]], select: torch.Tensor | None = None
) -> torch.Tensor:
    """``label`` with the values of each pair exchanged, where ``select`` (broadcastable bool) is true."""
    out = label
    for a, b in pairs:
        hit_a, hit_b = label == a, label == b
        if select is not None:
            hit_a, hit_b = hit_a & select, hit_b & select
        out = torch.where(hit_a, b, torch.where(hit_b, a, out))
    return out
