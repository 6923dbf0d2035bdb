"""Keys of the sample dictionaries that flow from readers through transforms to methods."""

from __future__ import annotations

from enum import Enum

__all__ = ["Keys"]


class Keys(str, Enum):
    """Sample keys. ``IMAGE`` float32 (C,H,W[,D]); ``LABEL`` int64 (H,W[,D]), 0 = background."""

    IMAGE = "image"
    LABEL = "label"
    PRED = "pred"
    DOMAIN = "domain"
    CASE_ID = "case_id"
    NAME = "name"
    WEIGHT = "weight"  # optional per-pixel loss weight map (H,W[,D]) float32

    def __str__(self) -> str:  # so f-strings and dict keys print "image", not "Keys.IMAGE"
        return self.value
