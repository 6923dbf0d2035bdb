"""Name -> constructor registries for every pluggable part (networks, losses, methods, ...).

Contract: ``REG.register("name")`` decorates a class or factory; ``REG.register_lazy("name", "pkg.mod:Attr")``
defers the import until the name is built (so optional dependencies and the ``gans``/``adapt`` packages are
only imported when used). ``REG.build("name", **kwargs)`` constructs; an unknown name raises ``KeyError``
with a "did you mean" suggestion and the full list of valid names.

    >>> NETWORKS.build("unet", spatial_dims=2, in_channels=1, out_channels=5)
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "suggest"]


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ' Did you mean "x"?' for the closest valid choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f' Did you mean "{close[0]}"?' if close else ""


class Registry(Generic[T]):
    """A named collection of constructors of one kind (``what`` is used in error messages)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, Callable[..., T]] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(obj: Callable[..., T]) -> Callable[..., T]:
            if name in self._items or name in self._lazy:
                raise KeyError(f'{self.what} "{name}" is registered twice')
            self._items[name] = obj
            return obj

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:Attribute"``, imported on first use."""
        if ":" not in target:
            raise ValueError(f'lazy target for {self.what} "{name}" must look like "pkg.mod:Attr", got "{target}"')
        if name in self._items or name in self._lazy:
            raise KeyError(f'{self.what} "{name}" is registered twice')
        self._lazy[name] = target

    def names(self) -> list[str]:
        return sorted({*self._items, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def get(self, name: str) -> Callable[..., T]:
        if name in self._items:
            return self._items[name]
        if name in self._lazy:
            module, attr = self._lazy[name].split(":", 1)
            self._items[name] = getattr(importlib.import_module(module), attr)
            return self._items[name]
        raise KeyError(
            f'unknown {self.what} "{name}".{suggest(name, self.names())} Valid names: {", ".join(self.names())}'
        )

    def build(self, name: str, /, **kwargs) -> T:
        return self.get(name)(**dict(kwargs))
