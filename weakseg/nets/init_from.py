"""Start a segmenter from trained weights (``model.init_from``): pre-training then fine-tuning, as nnU-Net's
``-pretrained_weights``.

The file is a weakseg checkpoint (its method's segmenter is found among the method's modules: the module
whose weights fit the new network, ``net`` first) or a plain ``state_dict`` (a bare mapping, or one under
``state_dict`` / ``model`` / ``network_weights``, DDP's ``module.`` prefix allowed), read with
``torch.load(weights_only=True)``. ``strict`` (``model.init_strict``, default true): every weight of the new
network must come from the file with its shape; false loads the ones that fit (e.g. all but a segmentation
head with another number of classes) and warns naming the rest.

Only the weights are taken: optimizer state, step and schedule start afresh. A run rebuilt from its own
checkpoint (resume, ``evaluate``, ``predict``) does not read the file again (``pretrained_weights_disabled``).
Hand-written: matching a checkpoint's module prefix to a network is weakseg's checkpoint layout, which no
library knows.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["load_initial_weights"]

_NESTED = ("state_dict", "model", "network_weights", "state")


def _candidates(state: dict) -> list[tuple[str, dict]]:
    """(prefix, weights without it) for every leading dotted prefix of the keys ('' included), ``net`` first."""
    prefixes: list[str] = [""]
    for key in state:
        parts = key.split(".")
        for i in range(1, len(parts)):
            p = ".".join(parts[:i])
            if p not in prefixes:
                prefixes.append(p)
    order = {p: i for i, p in enumerate(prefixes)}
    prefixes.sort(key=lambda p: (p != "net", p.count(".") + bool(p), order[p]))
    out = []
    for p in prefixes:
        cut = len(p) + 1 if p else 0
        sub = {k[cut:]: v for k, v in state.items() if not p or k.startswith(p + ".")}
        out.append((p, sub))
    return out


def _weights(obj, path: Path) -> dict[str, torch.Tensor]:
    """The flat tensor mapping of a loaded file: a weakseg checkpoint's method state, or a state dict (nested
    under a usual key or not)."""
    if isinstance(obj, dict) and obj.get("format") == "weakseg" and isinstance(obj.get("state"), dict):
        return obj["state"]
    for key in _NESTED:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return _weights(obj[key], path)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    raise ValueError(
        f"model.init_from {path} holds no weights: expected a weakseg checkpoint (best.pt / last.pt) or a "
        "state_dict (a mapping of names to tensors)"
    )


def load_initial_weights(net: nn.Module, path: str | Path, strict: bool = True) -> list[str]:
    """Copy ``path``'s weights into ``net`` in place; returns the names of the weights that kept their
    initialisation (non-strict). Errors name the file, the best-fitting module and what does not fit."""
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ("best.pt", "last.pt") if (path / n).is_file()), path)
    if not path.is_file():
        raise FileNotFoundError(
            f"model.init_from {path} does not exist; give a weakseg checkpoint (runs/NAME/best.pt) or a state_dict file"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, truncated, unsafe pickle
        raise ValueError(
            f"model.init_from {path} is not a readable weights file ({type(e).__name__}: {e})"
        ) from None
    own = net.state_dict()
    best: tuple[int, str, dict] | None = None
    for prefix, sub in _candidates(_weights(obj, path)):
        fits = {k for k, v in own.items() if k in sub and tuple(sub[k].shape) == tuple(v.shape)}
        if best is None or len(fits) > best[0]:
            best = (len(fits), prefix, sub)
        if len(fits) == len(own):
            break
    n, prefix, sub = best
    where = f"the module '{prefix}'" if prefix else "the file's top level"
    misfit = [k for k, v in own.items() if k not in sub or tuple(sub[k].shape) != tuple(v.shape)]
    if n == 0:
        raise ValueError(
            f"model.init_from {path}: none of its weights fit the network built from model.network "
            f"(e.g. {list(own)[0]}): was it trained with another network or model.params?"
        )
    if misfit and strict:
        shown = ", ".join(_why(k, own, sub) for k in misfit[:4])
        raise ValueError(
            f"model.init_from {path}: {len(misfit)} of the network's {len(own)} weights do not fit {where}: "
            f"{shown}{' ...' if len(misfit) > 4 else ''}. Use the same network, or set model.init_strict: false "
            "to start those (e.g. a head for another number of classes) from scratch"
        )
    with torch.no_grad():
        for k, v in own.items():
            if k not in misfit:
                v.copy_(sub[k].to(v.dtype))
    if misfit:
        warnings.warn(
            f"model.init_from {path}: {len(misfit)} weight(s) keep their initialisation (no fitting weight in "
            f"{where}): {', '.join(misfit[:6])}{' ...' if len(misfit) > 6 else ''}",
            stacklevel=2,
        )
    return misfit


def _why(key: str, own: dict, sub: dict) -> str:
    if key not in sub:
        return f"{key} (missing)"
    return (
        f"{key} ({'x'.join(map(str, sub[key].shape))} in the file, {'x'.join(map(str, own[key].shape))} here)"
    )
