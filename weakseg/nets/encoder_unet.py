"""``encoder_unet``: a pretrained ENCODERS backbone under smp's U-Net decoder, for 2D inputs in [0, 1].

    >>> net = build_network("encoder_unet", 2, in_channels=1, out_channels=5, encoder="resnet34",
    ...                     weights="none", decoder_channels=(64, 32, 32, 16, 16))
    >>> net.size_divisor, tuple(net.eval()(torch.zeros(2, 1, 64, 64)).shape)
    (32, (2, 5, 64, 64))

The network normalises its own input the way the encoder was trained (``InputNormalize``: x in [0, 1] ->
(x - mean) / std, ImageNet statistics; 1 channel uses the mean of the RGB means and of the RGB stds,
N channels reuse R, G, B, R, ... as the folded first convolution does). ``normalize=False`` turns it off.
For fine-tuning it exposes ``net.encoder`` and ``net.encoder_parameters()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from weakseg.nets.encoders import ENCODERS, EncoderSpec

__all__ = ["EncoderUNet", "InputNormalize", "build_encoder_unet", "input_stats"]

DEFAULT_DECODER = (256, 128, 64, 32, 16)


def input_stats(spec: EncoderSpec, in_channels: int) -> tuple[list[float], list[float]]:
    """Per-channel (mean, std) matching the folded first conv: 1 channel -> RGB averages, N -> cyclic RGB."""
    if in_channels == 1:
        return [sum(spec.mean) / len(spec.mean)], [sum(spec.std) / len(spec.std)]
    n = len(spec.mean)
    return [spec.mean[i % n] for i in range(in_channels)], [spec.std[i % n] for i in range(in_channels)]


class InputNormalize(nn.Module):
    """Fixed (x - mean) / std per channel; the constants are buffers, not saved in checkpoints."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        shape = (1, len(mean), 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class EncoderUNet(nn.Module):
    """Input normalisation, then an smp ``Unet`` whose encoder came from ``ENCODERS``."""

    def __init__(self, unet: nn.Module, normalize: nn.Module, encoder_name: str, depth: int) -> None:
        super().__init__()
        self.normalize = normalize
        self.unet = unet
        self.encoder_name = encoder_name
        self.size_divisor = 2**depth
        self.deep_supervision = False

    @property
    def encoder(self) -> nn.Module:
        """The pretrained part (frozen / given its own learning rate by the fine-tuning options)."""
        return self.unet.encoder

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        return self.unet.encoder.parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(self.normalize(x))


def build_encoder_unet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    encoder: str = "efficientnet_lite0",
    weights: str | None = "imagenet",
    encoder_depth: int = 5,
    decoder_channels: Sequence[int] | None = None,
    decoder_attention_type: str | None = None,
    normalize: bool = True,
) -> nn.Module:
    """smp-style U-Net on a pretrained encoder (``encoder`` one of ENCODERS.names()).

    ``weights``: imagenet | none | path to a state dict (see weakseg/nets/encoders.py for where ImageNet
    files are looked for). ``decoder_channels``: one width per decoder block, ``encoder_depth`` of them,
    deepest first (default the last ``encoder_depth`` of 256, 128, 64, 32, 16). ``decoder_attention_type``:
    None or "scse". Input sizes must be multiples of 2**encoder_depth (32 by default)."""
    if spatial_dims != 2:
        raise ValueError(
            f'network "encoder_unet" is 2D only (ImageNet encoders), got spatial_dims={spatial_dims}: '
            "train on slices (data.slice_axis) or use a 3D network such as unet or dynunet"
        )
    spec: EncoderSpec = ENCODERS.get(encoder)
    if not 1 <= encoder_depth <= 5:
        raise ValueError(f'network "encoder_unet": encoder_depth must be in 1..5, got {encoder_depth}')
    decoder_channels = list(decoder_channels or DEFAULT_DECODER[5 - encoder_depth :])
    if len(decoder_channels) != encoder_depth:
        raise ValueError(
            f'network "encoder_unet": decoder_channels needs encoder_depth = {encoder_depth} widths '
            f"(deepest first), got {decoder_channels}"
        )
    import segmentation_models_pytorch as smp

    unet = smp.Unet(
        encoder_name=spec.smp_name,
        encoder_depth=encoder_depth,
        encoder_weights=None,  # never let smp download: weights are found and loaded by spec.prepare
        decoder_channels=decoder_channels,
        decoder_attention_type=decoder_attention_type,
        in_channels=3,
        classes=out_channels,
    )
    spec.prepare(unet.encoder, in_channels, weights)
    norm = InputNormalize(*input_stats(spec, in_channels)) if normalize else nn.Identity()
    return EncoderUNet(unet, norm, encoder, encoder_depth)


build_encoder_unet.supported_dims = (2,)
