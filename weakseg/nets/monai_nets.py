"""The survey's segmentation backbones, built from MONAI with small defaults (2D and 3D).

Every builder's keyword arguments are the ``model.params`` a config may set; their defaults are ours
(smaller than MONAI's where MONAI's are large). Each sets ``net.size_divisor``, ``net.axis_divisors`` and
``net.deep_supervision``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.nets import AttentionUnet, BasicUNetPlusPlus, DynUNet, SegResNet, UNet, VNet
from torch import nn

from weakseg.nets.base import NETWORKS, stride_divisor

__all__ = ["DeepSupervisedDynUNet", "UNetPlusPlus"]

Ints = Sequence[int]


def _finish(net: nn.Module, axis_divisors: tuple[int, ...], deep_supervision: bool = False) -> nn.Module:
    net.axis_divisors = tuple(int(d) for d in axis_divisors)
    net.size_divisor = math.lcm(*net.axis_divisors)
    net.deep_supervision = bool(deep_supervision)
    return net


def _check_levels(name: str, channels: Ints, strides: Sequence[Any]) -> None:
    if len(channels) < 2 or len(strides) != len(channels) - 1:
        raise ValueError(
            f'network "{name}": strides needs one entry per downsampling, len(channels) - 1 = '
            f"{len(channels) - 1}, got channels={list(channels)} strides={list(strides)}"
        )


@NETWORKS.register("unet")
def build_unet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: Ints = (16, 32, 64, 128, 256),
    strides: Sequence[int | Ints] = (2, 2, 2, 2),
    kernel_size: int | Ints = 3,
    up_kernel_size: int | Ints = 3,
    num_res_units: int = 2,
    act: str | tuple = "PRELU",
    norm: str | tuple = "instance",
    dropout: float = 0.0,
    bias: bool = True,
    adn_ordering: str = "NDA",
) -> nn.Module:
    """MONAI residual U-Net. Instance norm by default: batches are small in medical segmentation (often 1-4
    volumes), where batch statistics are noisy, and per-image statistics also absorb scanner intensity shifts
    (nnU-Net's choice). Input sizes must be multiples of prod(strides) (16 by default)."""
    _check_levels("unet", channels, strides)
    net = UNet(
        spatial_dims,
        in_channels,
        out_channels,
        channels=channels,
        strides=strides,
        kernel_size=kernel_size,
        up_kernel_size=up_kernel_size,
        num_res_units=num_res_units,
        act=act,
        norm=norm,
        dropout=dropout,
        bias=bias,
        adn_ordering=adn_ordering,
    )
    return _finish(net, stride_divisor(strides, spatial_dims))


@NETWORKS.register("attention_unet")
def build_attention_unet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: Ints = (16, 32, 64, 128, 256),
    strides: Sequence[int | Ints] = (2, 2, 2, 2),
    kernel_size: int | Ints = 3,
    up_kernel_size: int | Ints = 3,
    dropout: float = 0.0,
) -> nn.Module:
    """MONAI Attention U-Net (Oktay et al. 2018); batch norm inside (MONAI fixes it), so train with batch
    size >= 2 or a bottleneck larger than 1 voxel. Input sizes must be multiples of prod(strides)."""
    _check_levels("attention_unet", channels, strides)
    net = AttentionUnet(
        spatial_dims,
        in_channels,
        out_channels,
        channels=channels,
        strides=strides,
        kernel_size=kernel_size,
        up_kernel_size=up_kernel_size,
        dropout=dropout,
    )
    return _finish(net, stride_divisor(strides, spatial_dims))


class UNetPlusPlus(BasicUNetPlusPlus):
    """BasicUNetPlusPlus under the weakseg output contract: a tensor, or in train mode with deep supervision
    the four full-size heads, most refined (X^{0,4}) first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        outs = super().forward(x)  # MONAI: [X01, X02, X03, X04] or [X04]
        if self.training and self.deep_supervision:
            return list(reversed(outs))
        return outs[-1]


@NETWORKS.register("unetpp")
def build_unetpp(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    features: Ints = (16, 16, 32, 64, 128, 16),
    deep_supervision: bool = False,
    act: str | tuple = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True}),
    norm: str | tuple = ("instance", {"affine": True}),
    bias: bool = True,
    dropout: float | tuple = 0.0,
    upsample: str = "deconv",
) -> nn.Module:
    """MONAI UNet++ (Zhou et al. 2018): four downsamplings, so input sizes must be multiples of 16.
    ``features``: six widths, the five encoder levels then the last decoder level."""
    if len(features) != 6:
        raise ValueError(
            f'network "unetpp": features needs 6 widths (5 levels + last decoder), got {list(features)}'
        )
    net = UNetPlusPlus(
        spatial_dims,
        in_channels,
        out_channels,
        features=features,
        deep_supervision=deep_supervision,
        act=act,
        norm=norm,
        bias=bias,
        dropout=dropout,
        upsample=upsample,
    )
    return _finish(net, (16,) * spatial_dims, deep_supervision)


@NETWORKS.register("vnet")
def build_vnet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    act: str | tuple = ("elu", {"inplace": True}),
    dropout_prob_down: float | None = 0.5,
    dropout_prob_up: tuple[float | None, float] = (0.5, 0.5),
    dropout_dim: int | None = None,
    bias: bool = False,
) -> nn.Module:
    """MONAI V-Net (Milletari et al. 2016): fixed widths 16..256, 5x5(x5) kernels, batch norm.

    Constraints: ``in_channels`` must divide 16 (1, 2, 4, 8 or 16: the input is tiled to 16 channels for the
    first residual add); input sizes must be multiples of 16 (four stride-2 downsamplings); with batch norm,
    train with batch size >= 2 when the input is only 16 voxels wide. ``dropout_dim`` defaults to
    ``spatial_dims`` (channel dropout of matching rank)."""
    if 16 % in_channels:
        raise ValueError(
            f'network "vnet" needs in_channels that divide 16 (1, 2, 4, 8 or 16), got {in_channels}: '
            "use another network or map the input to such a channel count first"
        )
    net = VNet(
        spatial_dims,
        in_channels,
        out_channels,
        act=act,
        dropout_prob_down=dropout_prob_down,
        dropout_prob_up=tuple(dropout_prob_up),
        dropout_dim=dropout_dim or spatial_dims,
        bias=bias,
    )
    return _finish(net, (16,) * spatial_dims)


class DeepSupervisedDynUNet(DynUNet):
    """DynUNet under the weakseg output contract: in train mode with deep supervision, a list of full-size
    logits (the output first, then the heads from higher to lower decoder resolution, upsampled by MONAI)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        out = super().forward(x)
        if self.training and self.deep_supervision:
            return list(torch.unbind(out, dim=1))  # MONAI stacks (B, 1 + deep_supr_num, C, *spatial)
        return out


@NETWORKS.register("dynunet")
def build_dynunet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    depth: int | None = None,
    filters: Ints | None = None,
    kernel_size: Sequence[int | Ints] | None = None,
    strides: Sequence[int | Ints] | None = None,
    upsample_kernel_size: Sequence[int | Ints] | None = None,
    deep_supervision: bool = False,
    deep_supr_num: int = 1,
    res_block: bool = False,
    dropout: float | None = None,
    norm_name: str | tuple = ("INSTANCE", {"affine": True}),
    act_name: str | tuple = ("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
    trans_bias: bool = False,
) -> nn.Module:
    """MONAI DynUNet (nnU-Net style). ``depth`` = number of resolution levels (>= 3; default 5, or the length
    of ``filters``/``strides`` when given). Unless given: filters 16, 32, 64, ... (capped at 320), kernels 3,
    strides [1, 2, 2, ...], upsample kernels = strides[1:]. Input sizes must be multiples of prod(strides)."""
    given = {
        k: len(v) for k, v in (("filters", filters), ("strides", strides), ("kernel_size", kernel_size)) if v
    }
    if depth is not None:
        given["depth"] = depth
    if len(set(given.values())) > 1:
        raise ValueError(
            f'network "dynunet": depth and the lengths of filters/strides/kernel_size disagree: {given}'
        )
    n = next(iter(given.values()), 5)
    if n < 3:
        raise ValueError(f'network "dynunet" needs depth >= 3 (input level + 2 downsamplings), got {n}')
    filters = list(filters) if filters else [min(16 * 2**i, 320) for i in range(n)]
    strides = list(strides) if strides else [1] + [2] * (n - 1)
    kernel_size = list(kernel_size) if kernel_size else [3] * n
    upsample_kernel_size = list(upsample_kernel_size) if upsample_kernel_size else strides[1:]
    if deep_supervision and not 1 <= deep_supr_num <= n - 2:
        raise ValueError(
            f'network "dynunet": deep_supr_num must be in 1..{n - 2} for depth {n}, got {deep_supr_num}'
        )
    net = DeepSupervisedDynUNet(
        spatial_dims,
        in_channels,
        out_channels,
        kernel_size=kernel_size,
        strides=strides,
        upsample_kernel_size=upsample_kernel_size,
        filters=filters,
        dropout=dropout,
        norm_name=norm_name,
        act_name=act_name,
        deep_supervision=deep_supervision,
        deep_supr_num=deep_supr_num,
        res_block=res_block,
        trans_bias=trans_bias,
    )
    return _finish(net, stride_divisor(strides, spatial_dims), deep_supervision)


@NETWORKS.register("segresnet")
def build_segresnet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    init_filters: int = 8,
    blocks_down: Ints = (1, 2, 2, 4),
    blocks_up: Ints = (1, 1, 1),
    dropout_prob: float | None = None,
    act: str | tuple = ("RELU", {"inplace": True}),
    norm: str | tuple = ("GROUP", {"num_groups": 8}),
    upsample_mode: str = "nontrainable",
) -> nn.Module:
    """MONAI SegResNet (Myronenko 2018) without the VAE branch. Group norm with 8 groups by default, so
    ``init_filters`` must be a multiple of 8; input sizes must be multiples of 2**(len(blocks_down) - 1)."""
    if len(blocks_up) != len(blocks_down) - 1:
        raise ValueError(
            f'network "segresnet": blocks_up needs len(blocks_down) - 1 = {len(blocks_down) - 1} entries, '
            f"got blocks_down={list(blocks_down)} blocks_up={list(blocks_up)}"
        )
    net = SegResNet(
        spatial_dims,
        init_filters=init_filters,
        in_channels=in_channels,
        out_channels=out_channels,
        dropout_prob=dropout_prob,
        act=act,
        norm=norm,
        blocks_down=tuple(blocks_down),
        blocks_up=tuple(blocks_up),
        upsample_mode=upsample_mode,
    )
    return _finish(net, (2 ** (len(blocks_down) - 1),) * spatial_dims)
