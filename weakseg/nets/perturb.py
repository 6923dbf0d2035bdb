"""Feature perturbation of a segmentation network's encoder, as UniMatch's feature-perturbation stream does.

    with feature_dropout(net, 0.5):
        logits_fp = net(x)      # the encoder's features pass through channel dropout (Dropout2d/3d) on the way

Hand-written: no library perturbs the features of an arbitrary segmenter without rewriting its forward. We do
it with forward hooks, so every network keeps its own ``forward`` and checkpoints keep their keys:

* networks with a pretrained ``encoder`` (``encoder_unet``, smp models): the encoder's list of feature maps,
  all but the first (the input itself), before the decoder reads them (exactly UniMatch's stream);
* MONAI's ``UNet`` / ``AttentionUnet``-style networks built from ``SkipConnection`` blocks: the input of every
  skip connection, i.e. the encoder's output at each level, which feeds both the skip and the deeper levels
  (so deeper features see the perturbation of the shallower ones too).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["feature_dropout", "perturbation_sites"]


def _dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    fn = F.dropout3d if x.ndim == 5 else F.dropout2d
    return fn(x, p, training=True) if x.ndim in (4, 5) else F.dropout(x, p, training=True)


def perturbation_sites(net: nn.Module) -> tuple[str, list[nn.Module]]:
    """("encoder", [encoder]) or ("skip", [SkipConnection blocks]); ValueError for other networks."""
    net = getattr(net, "module", net)  # DDP
    encoder = getattr(net, "encoder", None)
    if isinstance(encoder, nn.Module):
        return "encoder", [encoder]
    from monai.networks.layers import SkipConnection

    skips = [m for m in net.modules() if isinstance(m, SkipConnection)]
    if skips:
        return "skip", skips
    raise ValueError(
        f"feature perturbation needs a network with an `encoder` (e.g. model.network: encoder_unet) or MONAI "
        f"SkipConnection blocks (model.network: unet), got {type(net).__name__}: choose one of those networks, "
        "or a method without a feature-perturbation stream (fixmatch)"
    )


@contextlib.contextmanager
def feature_dropout(net: nn.Module, p: float) -> Iterator[None]:
    """Inside the block, forward passes of ``net`` drop encoder feature channels with probability ``p``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"feature dropout p must be in [0, 1), got {p!r}")
    kind, modules = perturbation_sites(net)
    handles = []
    if kind == "encoder":

        def hook(_m, _args, out):
            if isinstance(out, (list, tuple)):
                return type(out)([out[0], *(_dropout(f, p) for f in out[1:])])
            return _dropout(out, p)

        handles = [m.register_forward_hook(hook) for m in modules]
    else:

        def pre_hook(_m, args):
            return (_dropout(args[0], p), *args[1:])

        handles = [m.register_forward_pre_hook(pre_hook) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
