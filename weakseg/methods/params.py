"""One way to check ``method.params`` values, shared by every method (supervised, semi-supervised, GANs,
domain adaptation, interactive), so their errors read alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["Params"]


class Params:
    """Checks of ``method.params`` for every method: errors say ``method "NAME": method.params.KEY must be
    EXPECTED, got VALUE``."""

    def __init__(self, method: str) -> None:
        self.method = method

    def fail(self, key: str, expected: str, value: Any) -> None:
        raise ValueError(f'method "{self.method}": method.params.{key} must be {expected}, got {value!r}')

    def check(self, ok: bool, key: str, expected: str, value: Any) -> None:
        if not ok:
            self.fail(key, expected, value)

    def number(self, key: str, value: Any, low: float = 0.0, high: float = math.inf) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not (ok and low <= value <= high):
            self.fail(
                key, f"a number >= {low:g}" if high == math.inf else f"a number in [{low:g}, {high:g}]", value
            )
        return float(value)

    def integer(self, key: str, value: Any, low: int, word: str = "an integer") -> int:
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            self.fail(key, f"{word} >= {low}", value)
        return value

    def flag(self, key: str, value: Any) -> bool:
        self.check(isinstance(value, bool), key, "true or false", value)
        return value

    def choice(self, key: str, value: Any, options: Sequence[str]) -> str:
        if value not in options:
            self.fail(key, " | ".join(options), value)
        return value

    def image_range(self, value: Any) -> tuple[float, float]:
        ok = (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        )
        if not ok or value[0] >= value[1]:
            self.fail(
                "image_range",
                "[low, high] with low < high (the data range after the intensity preset)",
                value,
            )
        return float(value[0]), float(value[1])
