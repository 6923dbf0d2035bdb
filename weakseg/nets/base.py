"""The NETWORKS registry, ``build_network`` and the size-divisor helpers every network shares.

The extension contract is written at the top of ``weakseg/nets/__init__.py``.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from weakseg.registry import Registry, accepted_params, check_params, is_import_path, suggest

__all__ = [
    "NETWORKS",
    "axis_divisors",
    "build_network",
    "network_params",
    "pad_to_divisor",
    "stride_divisor",
]

NETWORKS: Registry[nn.Module] = Registry("network")

_FIXED = ("spatial_dims", "in_channels", "out_channels")


def network_params(name: str) -> dict[str, Any]:
    """The parameters ``model.params`` may set for network ``name``, with their defaults."""
    sig = inspect.signature(NETWORKS.get(name)).parameters
    valid, _ = accepted_params(NETWORKS.get(name), _FIXED)
    return {k: (None if sig[k].default is inspect.Parameter.empty else sig[k].default) for k in valid}


class _InputCheck:
    """Forward pre-hook: the input must be (B, in_channels, *spatial) with spatial multiples of size_divisor."""

    def __init__(self, name: str, spatial_dims: int, in_channels: int) -> None:
        self.name, self.spatial_dims, self.in_channels = name, spatial_dims, in_channels

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return
        expect = f"(B, {self.in_channels}, " + ", ".join("S" * self.spatial_dims) + ")"
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f'network "{self.name}" expects input {expect}, got {tuple(x.shape)}')
        div = axis_divisors(module, self.spatial_dims)
        if any(s % d for s, d in zip(x.shape[2:], div)):
            raise ValueError(
                f'network "{self.name}" needs spatial sizes that are multiples of {div}, got '
                f"{tuple(x.shape[2:])}: pad the input to multiples of net.size_divisor={module.size_divisor} "
                "with weakseg.nets.pad_to_divisor (and crop the logits back), or crop/resize it"
            )


def build_network(
    name: str, spatial_dims: int, in_channels: int, out_channels: int, **params: Any
) -> nn.Module:
    """Build a registered network; unknown names and parameters raise errors that list the valid ones."""
    if spatial_dims not in (2, 3):
        raise ValueError(f'network "{name}": spatial_dims must be 2 or 3, got {spatial_dims}')
    if in_channels < 1 or out_channels < 1:
        raise ValueError(
            f'network "{name}": in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}'
        )
    ctor = NETWORKS.get(name)
    kwargs = copy.deepcopy(params)  # never mutate the caller's config
    outside = is_import_path(name) and name not in NETWORKS
    if outside:  # a network by import path: its own argument names for what weakseg knows
        kwargs.pop("size_divisor", None)
        fixed = _outside_fixed(ctor, kwargs, spatial_dims, in_channels, out_channels)
    else:
        check_params(f'network "{name}"', ctor, params, _FIXED, where="model.params")
        fixed = {"spatial_dims": spatial_dims, "in_channels": in_channels, "out_channels": out_channels}
    try:
        net = ctor(**fixed, **kwargs)
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):  # a value of the wrong type, e.g. channels: abc
            given = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "none"
            raise ValueError(
                f'network "{name}" cannot be built from model.params ({given}): {e}. Check the types of '
                f"these values (see the network's docstring, or `weakseg.nets.network_params('{name}')`)"
            ) from e
        bad = str(e).split("'")[1] if "'" in str(e) else str(e)
        valid, _ = accepted_params(ctor, _FIXED)
        raise ValueError(
            f'network "{name}" has no parameter "{bad}" in model.params.{suggest(bad, valid)} '
            f"Valid parameters: {', '.join(valid)}"
        ) from e
    except (ValueError, AssertionError) as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith(f'network "{name}"') else f'network "{name}": {msg}') from e
    if outside and not isinstance(getattr(net, "size_divisor", None), int):
        net.size_divisor = int(params.get("size_divisor", 32))  # inputs padded to multiples of it
    div = getattr(net, "size_divisor", None)
    if isinstance(div, bool) or not isinstance(div, int) or div < 1:
        raise TypeError(
            f'network "{name}" must set net.size_divisor to a positive int (every spatial size of the input '
            f"must be a multiple of it), found {div!r}"
        )
    axes = axis_divisors(net, spatial_dims)
    if any(div % d for d in axes):
        raise TypeError(
            f'network "{name}": size_divisor {div} must be a multiple of every axis_divisors entry {axes}'
        )
    if not hasattr(net, "deep_supervision"):
        net.deep_supervision = False
    net.register_forward_pre_hook(_InputCheck(name, spatial_dims, in_channels))
    return net


# the argument names outside libraries use for what weakseg knows (MONAI, smp, timm, torchvision)
_ALIASES = {
    "spatial_dims": ("spatial_dims", "dimensions"),
    "in_channels": ("in_channels", "in_chans"),
    "out_channels": ("out_channels", "classes", "num_classes", "out_chans"),
}


def _outside_fixed(ctor, given: dict, spatial_dims: int, in_channels: int, out_channels: int) -> dict:
    """For a network by import path: spatial dimensions, input and output channels under the names its
    constructor takes, where the config leaves them out; ``encoder_weights=None`` (no download) for smp
    architectures unless model.params sets it. ``model.params.size_divisor`` (default 32) is the padding
    multiple of a network that does not declare one."""
    accepted, _ = accepted_params(ctor)
    values = {"spatial_dims": spatial_dims, "in_channels": in_channels, "out_channels": out_channels}
    out = {}
    for key, names in _ALIASES.items():
        if any(n in given for n in names):
            continue
        name = next((n for n in names if n in accepted), None)
        if name is not None:
            out[name] = values[key]
        elif key != "spatial_dims" or spatial_dims != 2:  # a 2D-only network need not be told
            raise ValueError(
                f"network {ctor.__module__}.{getattr(ctor, '__name__', ctor)} takes none of {', '.join(names)}: "
                f"set the argument that gives its {key.replace('_', ' ')} ({values[key]}) in model.params"
            )
    if "encoder_weights" in accepted and "encoder_weights" not in given:
        out["encoder_weights"] = None  # never download at run time; set it in model.params to load weights
    return out


def axis_divisors(net: nn.Module, spatial_dims: int) -> tuple[int, ...]:
    """Per-axis divisors: ``net.axis_divisors`` when set (anisotropic strides), else ``size_divisor`` per axis."""
    axes = getattr(net, "axis_divisors", None)
    if axes is None:
        return (int(net.size_divisor),) * spatial_dims
    if len(axes) != spatial_dims:
        raise TypeError(
            f"net.axis_divisors {tuple(axes)} must have one entry per spatial axis ({spatial_dims})"
        )
    return tuple(int(d) for d in axes)


def stride_divisor(strides: Sequence[int | Sequence[int]], spatial_dims: int) -> tuple[int, ...]:
    """Per-axis product of per-level strides (each an int or one int per axis)."""
    out = [1] * spatial_dims
    for s in strides:
        per_axis = [int(s)] * spatial_dims if isinstance(s, (int, float)) else [int(v) for v in s]
        if len(per_axis) != spatial_dims:
            raise ValueError(f"stride {s!r} has {len(per_axis)} values for {spatial_dims} spatial dims")
        out = [a * b for a, b in zip(out, per_axis)]
    return tuple(out)


def pad_to_divisor(
    x: torch.Tensor, divisor: int | Sequence[int], mode: str = "constant", value: float = 0.0
) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Pad the trailing spatial dims of ``x`` (B,C,*spatial) at their end up to multiples of ``divisor``.

    Returns ``(padded, crop)``; ``logits[crop]`` undoes the padding:
    (1,1,30,33) with divisor 16 -> (1,1,32,48) and crop ``(..., slice(0, 30), slice(0, 33))``.
    """
    spatial = tuple(x.shape[2:])
    div = (divisor,) * len(spatial) if isinstance(divisor, int) else tuple(divisor)
    if len(div) != len(spatial):
        raise ValueError(f"divisor {div} has {len(div)} values but the input has {len(spatial)} spatial dims")
    target = [math.ceil(s / d) * d for s, d in zip(spatial, div)]
    pad: list[int] = []
    for s, t in reversed(list(zip(spatial, target))):  # F.pad lists the last dim first
        pad += [0, t - s]
    crop = (Ellipsis, *(slice(0, s) for s in spatial))
    if not any(pad):
        return x, crop
    kwargs = {"value": value} if mode == "constant" else {}
    return F.pad(x, pad, mode=mode, **kwargs), crop
