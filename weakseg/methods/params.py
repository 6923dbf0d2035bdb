"""The typed ``method.params`` of every method (supervised, semi-supervised, GANs, domain adaptation,
interactive), and one way to check their values, so their errors read alike.

A method declares a dataclass of its parameters and names it ``params_class``; each field is a ``param``
with its default and a check. Config loading (``weakseg.methods.check_config``, an entry point of ``weakseg.config_checks``)
parses ``method.params`` into it, so a wrong key, type or range fails before any run folder exists:

    @dataclass
    class FixMatchParams(FineTuneParams):
        threshold: float = param(0.95, rule(lambda v: 0 < v < 1, "a confidence in (0, 1)"), "pseudo-label cut")

    class FixMatch(SemiMethod):
        params_class = FixMatchParams
        def __init__(self, ctx: BuildContext, params: FixMatchParams): ...
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from collections.abc import Callable, Sequence
from typing import Any

from weakseg.registry import suggest

__all__ = [
    "Params",
    "Check",
    "choice",
    "custom",
    "describe",
    "flag",
    "initial_param",
    "integer",
    "is_number",
    "number",
    "param",
    "parse_params",
    "rule",
]


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


# --------------------------------------------------------------------------- typed params of every method
@dataclasses.dataclass(frozen=True)
class Check:
    """The check of one parameter: ``fn(params_checker, key, value) -> value`` raises ``ValueError`` naming the
    key; ``bad`` are values it must refuse (the tests generated from the METHODS registry use them)."""

    fn: Callable[[Params, str, Any], Any]
    bad: tuple = ()

    def __call__(self, p: Params, key: str, value: Any) -> Any:
        return self.fn(p, key, value)


def number(low: float = 0.0, high: float = math.inf) -> Check:
    """A finite number in [low, high]."""
    bad = ("abc", low - 1, *((high + 1,) if math.isfinite(high) else ()))
    return Check(lambda p, key, value: p.number(key, value, low, high), bad)


def integer(low: int, word: str = "an integer") -> Check:
    return Check(lambda p, key, value: p.integer(key, value, low, word), ("abc", 1.5, low - 1))


def choice(*options: str) -> Check:
    return Check(lambda p, key, value: p.choice(key, value, options), ("no-such-option",))


def flag() -> Check:
    return Check(lambda p, key, value: p.flag(key, value), ("yes", 1))


def rule(ok: Callable[[Any], bool], expected: str, bad: tuple = ()) -> Check:
    """Any other condition: ``ok(value)`` or the error "KEY must be EXPECTED, got VALUE"."""

    def check(p: Params, key: str, value: Any) -> Any:
        p.check(_safe(ok, value), key, expected, value)
        return value

    return Check(check, bad)


def custom(fn: Callable[[Params, str, Any], Any], bad: tuple = ()) -> Check:
    """A check with its own messages: ``fn(params_checker, key, value)`` returns the value or raises."""
    return Check(fn, bad)


def _safe(ok: Callable[[Any], bool], value: Any) -> bool:
    try:
        return bool(ok(value))
    except (TypeError, ValueError):
        return False


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def param(default: Any = dataclasses.MISSING, check: Check | None = None, doc: str = "") -> Any:
    """A field of a method's params dataclass: its default, the check config loading runs on a given value
    (``number(0, 1)``, ``integer(1)``, ``choice("a", "b")``, ``flag()``, ``rule(fn, "expected")``,
    ``custom(fn)``), and one line
    for ``weakseg list methods``. Mutable defaults are copied for every instance."""
    meta = {"check": check, "doc": doc}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def initial_param(doc: str) -> Any:
    """The ``initial`` field of a method that runs a trained segmenter frozen (refine, self_train): a
    checkpoint path, or the config the method recorded in its place (``weakseg.api.frozen_initial``)."""
    ok = rule(
        lambda v: v is None or isinstance(v, (str, dict)), "a checkpoint path (or its recorded config)", (5,)
    )
    return param(None, ok, doc)


def parse_params(cls: type, values: dict, method: str) -> Any:
    """``method.params`` as the method's ``params_class`` instance: unknown keys (with "did you mean"), wrong
    types and values out of range raise ``ValueError`` naming ``method.params.KEY``. Runs at config load
    (``weakseg.methods.check_config``) and again when the method is built."""
    from weakseg.config.coerce import coerce

    pc = cls.params_class
    fields = {f.name: f for f in dataclasses.fields(pc)}
    for key in values:
        if key not in fields:
            raise ValueError(
                f'method "{method}" has no parameter "{key}" in method.params.{suggest(key, list(fields))} '
                f"Valid parameters: {', '.join(fields) or '(none)'}"
            )
    hints = typing.get_type_hints(pc)
    p = Params(method)
    given = {}
    for key, value in values.items():
        check = fields[key].metadata.get("check")
        if check is not None:
            value = check(p, key, value)
        given[key] = coerce(value, hints[key], f"method.params.{key}")
    return pc(**given)  # a __post_init__ of the dataclass checks keys together


def describe(cls: type) -> list[tuple[str, str, str]]:
    """(name, default, doc) of each parameter of a method with a ``params_class``."""
    out = []
    for f in dataclasses.fields(cls.params_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append((f.name, repr(default), f.metadata.get("doc", "")))
    return out
