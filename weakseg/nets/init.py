"""Weight initialisation as in pytorch-CycleGAN-and-pix2pix (``networks.init_weights``), for GAN parts.

Conv and linear weights: ``normal`` N(0, gain), ``xavier`` (xavier_normal, gain), ``kaiming`` (kaiming_normal,
fan_in), ``orthogonal`` (gain); their biases 0. Affine norm layers (batch, instance, group): weight N(1, gain),
bias 0.
"""

from __future__ import annotations

from torch import nn
from torch.nn import init
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

__all__ = ["INIT_KINDS", "init_weights"]

INIT_KINDS = ("normal", "xavier", "kaiming", "orthogonal")


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise ``net`` in place and return it."""
    if kind not in INIT_KINDS:
        raise ValueError(f'unknown init kind "{kind}": expected one of {", ".join(INIT_KINDS)}')
    for m in net.modules():
        if isinstance(m, (_ConvNd, nn.Linear)):
            if kind == "normal":
                init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif (
            isinstance(m, (_BatchNorm, _InstanceNorm, nn.GroupNorm))
            and getattr(m, "weight", None) is not None
        ):
            init.normal_(m.weight, 1.0, gain)
            init.zeros_(m.bias)
    return net
