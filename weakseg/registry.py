"""Name -> constructor registries for every pluggable part (networks, losses, methods, ...).

Contract: ``REG.register("name")`` decorates a class or factory; ``REG.register_lazy("name", "pkg.mod:Attr")``
defers the import until the name is built (so optional dependencies are only imported when used).
``REG.build("name", **kwargs)`` constructs; an unknown name raises ``KeyError`` with a "did you mean"
suggestion and the full list of valid names.

Plug-ins (``gans``, ``adapt``, ``weakseg.interactive``, or another installed package) add entries without
the core naming them: a registry made with ``plugins="weakseg.methods"`` also holds every entry point of that
group (pyproject ``[project.entry-points."weakseg.methods"] cgan = "gans.cgan:CGAN"``), registered lazily
the first time a name is looked up or listed.

    >>> NETWORKS.build("unet", spatial_dims=2, in_channels=1, out_channels=5)
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = [
    "Registry",
    "accepted_params",
    "check_params",
    "import_attr",
    "is_import_path",
    "plugin_entry_points",
    "suggest",
]


def is_import_path(name: str) -> bool:
    """``"package.module:Attr"``: a component named by where it lives, not by a registered name."""
    return isinstance(name, str) and name.count(":") == 1 and all(name.split(":"))


def import_attr(target: str, what: str = "component") -> Callable:
    """The object at ``"package.module:Attr"`` (dots allowed in Attr); errors name what could not be found."""
    module_name, attr = target.split(":", 1)
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise KeyError(
            f'{what} "{target}": cannot import module "{module_name}" ({e}); install the package that provides '
            "it, or check the spelling"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise KeyError(
                f'{what} "{target}": "{module_name}" has no attribute "{part}".{suggest(part, names)}'
            ) from None
        obj = getattr(obj, part)
    if not callable(obj):
        raise KeyError(f'{what} "{target}" is not a class or function')
    return obj


def plugin_entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of ``group`` (e.g. ``weakseg.methods``), sorted by name. Empty when weakseg
    runs from a source tree that was never installed (``pip install -e .`` declares them)."""
    return sorted(importlib.metadata.entry_points(group=group), key=lambda ep: ep.name)


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ' Did you mean "x"?' for the closest valid choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f' Did you mean "{close[0]}"?' if close else ""


def accepted_params(func: Callable, exclude: tuple[str, ...] = ()) -> tuple[list[str], bool]:
    """(names of the keyword parameters ``func`` takes minus ``exclude``, whether it also takes ``**kwargs``).

    A class whose ``__init__`` takes ``**kwargs`` is taken to pass them on to its base class: the bases'
    parameters are added, up the MRO, until a base that takes no ``**kwargs`` or one that declares what they
    stand for in a class attribute ``accepts`` (e.g. the fine-tuning keys of every segmentation method)."""
    params, var_kw = [], False
    for p in inspect.signature(func).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is not p.VAR_POSITIONAL and p.name not in ("self", *exclude):
            params.append(p.name)
    if var_kw and inspect.isclass(func):
        for base in func.__mro__:
            if "accepts" in vars(base):  # the keys a class's **kwargs stand for, declared by the class
                params += [m for m in base.accepts if m not in params]
                return params, False
            if base is func or base is object or "__init__" not in vars(base):
                continue
            more, var_kw = accepted_params(base.__init__, exclude)
            params += [m for m in more if m not in params]
            if not var_kw:
                break
    return params, var_kw


def check_params(
    owner: str, func: Callable, params: dict, exclude: tuple[str, ...] = (), where: str = "params"
) -> None:
    """Raise ``ValueError`` naming the first key of ``params`` that ``func`` does not take, with "did you mean"
    and the valid names (``where`` says which config section they come from, e.g. "loss.params")."""
    valid, var_kw = accepted_params(func, exclude)
    if var_kw:
        return
    for key in params:
        if key not in valid:
            raise ValueError(
                f'{owner} has no parameter "{key}" in {where}.{suggest(key, valid)} '
                f"Valid parameters: {', '.join(valid) or '(none)'}"
            )


class Registry(Generic[T]):
    """A named collection of constructors of one kind (``what`` is used in error messages)."""

    def __init__(self, what: str, plugins: str | None = None) -> None:
        self.what = what
        self.plugins = plugins  # the entry-point group of installed plug-ins, read on first lookup
        self._items: dict[str, Callable[..., T]] = {}
        self._lazy: dict[str, str] = {}
        self._plugins_read = plugins is None

    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True
        for ep in plugin_entry_points(self.plugins):
            self.register_lazy(ep.name, ep.value)

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
            raise ValueError(
                f'lazy target for {self.what} "{name}" must look like "pkg.mod:Attr", got "{target}"'
            )
        if name in self._items or name in self._lazy:
            raise KeyError(f'{self.what} "{name}" is registered twice')
        self._lazy[name] = target

    def names(self) -> list[str]:
        self._read_plugins()
        return sorted({*self._items, *self._lazy})

    def __contains__(self, name: object) -> bool:
        self._read_plugins()
        return name in self._items or name in self._lazy

    def get(self, name: str) -> Callable[..., T]:
        self._read_plugins()
        if name not in self._items and name not in self._lazy and is_import_path(name):
            return import_attr(name, self.what)
        if name in self._items:
            return self._items[name]
        if name in self._lazy:  # an ImportError (a plug-in's missing dependency) propagates as it is
            module, attr = self._lazy[name].split(":", 1)
            self._items[name] = getattr(importlib.import_module(module), attr)
            return self._items[name]
        raise KeyError(
            f'unknown {self.what} "{name}".{suggest(name, self.names())} Valid names: {", ".join(self.names())}'
        )

    def build(self, name: str, /, **kwargs) -> T:
        return self.get(name)(**dict(kwargs))
