"""GAN networks (2D), as in pytorch-CycleGAN-and-pix2pix: ResNet and U-Net generators, PatchGAN discriminator.

Generators are image-to-image networks registered in ``NETWORKS`` (so they follow its contract: input
``(B, in_channels, H, W)`` with H, W multiples of ``net.size_divisor``, output ``(B, out_channels, H, W)``):

* ``resnet_generator``: c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` residual blocks (6 for 128 px, 9
  for 256 px in CycleGAN), two transposed-conv upsamplings, c7s1-out; reflection padding; size_divisor 4.
* ``unet_generator``: pix2pix U-Net with ``num_downs`` stride-2 levels (7 = "unet_128", 8 = "unet_256");
  size_divisor 2**num_downs.
* ``spade_generator`` (Park et al. 2019): the label map, downsampled ``n_ups`` times, is upsampled back by
  residual blocks whose normalisation is modulated by the label map at every scale (SPADE), MONAI's
  ``SPADEDecoder`` (non-VAE mode); size_divisor 2**n_ups.

``output: tanh`` (default) bounds the output to [-1, 1]: GAN methods map images from their documented data
range (e.g. [0, 1] after the intensity preset) to [-1, 1] and back (``weakseg.methods.gan_steps.to_gan_range``).
``output: linear`` leaves it unbounded. Weights are initialised by ``init_weights`` (N(0, 0.02) by default).

Discriminators output logits, not a dense image, so they have their own registry: ``patchgan`` (a map of
patch logits), ``fcn`` (Hung et al.: a per-pixel logit map at the input size) and ``evaluation`` (DAN: one
logit per image):

    >>> d = build_discriminator("patchgan", in_channels=1)           # 70x70 PatchGAN (n_layers=3)
    >>> d(torch.zeros(2, 1, 64, 64)).shape                            # one logit per overlapping patch
    torch.Size([2, 1, 6, 6])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from weakseg.nets.base import NETWORKS
from weakseg.nets.init import init_weights
from weakseg.registry import Registry, check_params

__all__ = [
    "DISCRIMINATORS",
    "EvaluationNet",
    "FCDiscriminator",
    "PatchDiscriminator",
    "ResnetGenerator",
    "SpadeGenerator",
    "UnetGenerator",
    "build_discriminator",
    "spectral_normalize",
]

NORMS = ("instance", "batch")
OUTPUTS = ("tanh", "linear")


def _norm(kind: str, name: str) -> type[nn.Module]:
    """Instance norm without affine or running statistics (CycleGAN's default), or batch norm."""
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d
    raise ValueError(f'{name}: norm must be one of {", ".join(NORMS)}, got "{kind}"')


def _output(kind: str, name: str) -> nn.Module:
    if kind not in OUTPUTS:
        raise ValueError(f'{name}: output must be one of {", ".join(OUTPUTS)}, got "{kind}"')
    return nn.Tanh() if kind == "tanh" else nn.Identity()


def _check_2d(spatial_dims: int, name: str) -> None:
    if spatial_dims != 2:
        raise ValueError(
            f"{name} is 2D only, got spatial_dims={spatial_dims}; use 2D slices (data.slice_axis)"
        )


class _ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: Any, dropout: float, bias: bool) -> None:
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm(dim)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s ResNet generator as used by CycleGAN (``networks.ResnetGenerator``)."""

    size_divisor = 4

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        output: str = "tanh",
    ) -> None:
        super().__init__()
        if n_blocks < 0 or ngf < 1:
            raise ValueError(f"resnet_generator: need n_blocks >= 0 and ngf >= 1, got {n_blocks}, {ngf}")
        norm_layer, bias = _norm(norm, "resnet_generator"), norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # downsample
            c = ngf * 2**i
            layers += [
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias),
                norm_layer(2 * c),
                nn.ReLU(True),
            ]
        layers += [_ResnetBlock(ngf * 4, norm_layer, dropout, bias) for _ in range(n_blocks)]
        for i in range(2):  # upsample
            c = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                norm_layer(c // 2),
                nn.ReLU(True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, 7),
            _output(output, "resnet_generator"),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _UnetBlock(nn.Module):
    """One level of the pix2pix U-Net: down, ``inner`` level, up; the level's input is concatenated back."""

    def __init__(self, outer: int, inner: int, sub: nn.Module | None, norm: Any, bias: bool, dropout: float):
        super().__init__()
        down = [nn.LeakyReLU(0.2), nn.Conv2d(outer, inner, 4, stride=2, padding=1, bias=bias)]
        if sub is None:  # innermost: no norm on the 1-pixel-scale bottleneck
            up = [nn.ReLU(), nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias), norm(outer)]
            layers = [*down, *up]
        else:
            up = [
                nn.ReLU(),
                nn.ConvTranspose2d(2 * inner, outer, 4, stride=2, padding=1, bias=bias),
                norm(outer),
            ]
            layers = [*down, norm(inner), sub, *up] + ([nn.Dropout(dropout)] if dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """The pix2pix U-Net generator (``networks.UnetGenerator``), widths ngf, 2ngf, 4ngf, then 8ngf."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: int = 7,
        ngf: int = 64,
        norm: str = "instance",
        dropout: float = 0.0,
        output: str = "tanh",
    ) -> None:
        super().__init__()
        if num_downs < 5 or ngf < 1:
            raise ValueError(f"unet_generator: need num_downs >= 5 and ngf >= 1, got {num_downs}, {ngf}")
        norm_layer, bias = _norm(norm, "unet_generator"), norm == "instance"
        block = _UnetBlock(ngf * 8, ngf * 8, None, norm_layer, bias, 0.0)
        for _ in range(num_downs - 5):
            block = _UnetBlock(ngf * 8, ngf * 8, block, norm_layer, bias, dropout)
        for mult in (4, 2, 1):
            block = _UnetBlock(ngf * mult, ngf * mult * 2, block, norm_layer, bias, 0.0)
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ngf, 4, stride=2, padding=1),
            block,
            nn.ReLU(),
            nn.ConvTranspose2d(ngf * 2, out_channels, 4, stride=2, padding=1),
            _output(output, "unet_generator"),
        )
        self.size_divisor = 2**num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@NETWORKS.register("resnet_generator")
def build_resnet_generator(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    ngf: int = 64,
    n_blocks: int = 9,
    norm: str = "instance",
    dropout: float = 0.0,
    output: str = "tanh",
    init: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """CycleGAN's ResNet generator (``n_blocks`` 9 or 6); tanh output in [-1, 1] unless ``output: linear``."""
    _check_2d(spatial_dims, "resnet_generator")
    net = ResnetGenerator(in_channels, out_channels, ngf, n_blocks, norm, dropout, output)
    return init_weights(net, init, init_gain)


@NETWORKS.register("unet_generator")
def build_unet_generator(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    num_downs: int = 7,
    ngf: int = 64,
    norm: str = "instance",
    dropout: float = 0.0,
    output: str = "tanh",
    init: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """pix2pix U-Net generator; inputs must be multiples of 2**num_downs (128 by default)."""
    _check_2d(spatial_dims, "unet_generator")
    net = UnetGenerator(in_channels, out_channels, num_downs, ngf, norm, dropout, output)
    return init_weights(net, init, init_gain)


class SpadeGenerator(nn.Module):
    """SPADE generator: MONAI's ``SPADEDecoder`` (non-VAE: the label map downsampled to the first block's size,
    one SPADE residual block per upsampling) and the output activation. Widths ``ngf * 2**k`` from the finest
    block up, capped at ``ngf * 8``. MONAI fixes the first block's size at construction; it is set here from
    each input's size, so any multiple of ``size_divisor`` works."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_ups: int = 5,
        ngf: int = 64,
        spade_channels: int = 128,
        output: str = "tanh",
    ) -> None:
        from monai.networks.nets.spade_network import SPADEDecoder

        super().__init__()
        if n_ups < 1 or ngf < 1 or spade_channels < 1:
            raise ValueError(
                f"spade_generator: need n_ups, ngf and spade_channels >= 1, got {n_ups}, {ngf}, {spade_channels}"
            )
        widths = [min(ngf * 2**k, ngf * 8) for k in reversed(range(n_ups))]  # coarse -> fine
        self.n_ups = n_ups
        self.decoder = SPADEDecoder(
            spatial_dims=2, out_channels=out_channels, label_nc=in_channels, input_shape=[2**n_ups] * 2,
            channels=widths, z_dim=None, is_vae=False, spade_intermediate_channels=spade_channels,
            norm="INSTANCE", last_act=None,
        )  # fmt: skip
        self.out = _output(output, "spade_generator")
        self.size_divisor = 2**n_ups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        latent = [s // self.size_divisor for s in x.shape[2:]]
        if min(latent) < 2:  # instance norm needs more than one pixel
            raise ValueError(
                f"spade_generator: input {tuple(x.shape[2:])} is too small for {self.n_ups} upsamplings: sides "
                f"must be at least {2 * self.size_divisor} (lower n_ups)"
            )
        self.decoder.latent_spatial_shape = latent
        return self.out(self.decoder(x))


@NETWORKS.register("spade_generator")
def build_spade_generator(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    n_ups: int = 5,
    ngf: int = 64,
    spade_channels: int = 128,
    output: str = "tanh",
    init: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """SPADE generator (label map in, image out); inputs must be multiples of 2**n_ups (32 by default)."""
    _check_2d(spatial_dims, "spade_generator")
    net = SpadeGenerator(in_channels, out_channels, n_ups, ngf, spade_channels, output)
    return init_weights(net, init, init_gain)


build_resnet_generator.supported_dims = (2,)
build_unet_generator.supported_dims = (2,)
build_spade_generator.supported_dims = (2,)


class PatchDiscriminator(nn.Module):
    """PatchGAN (``networks.NLayerDiscriminator``): ``n_layers`` stride-2 convs, one stride-1, a 1-channel head.

    n_layers=3 sees 70x70 patches; inputs need at least ``min_size = 3 * 2**n_layers`` pixels per side (24).
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1 or ndf < 1:
            raise ValueError(f"patchgan: need n_layers >= 1 and ndf >= 1, got {n_layers}, {ndf}")
        norm_layer, bias = _norm(norm, "patchgan"), norm == "instance"
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        self.min_size = 3 * 2**n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"patchgan expects (B, C, H, W) with H, W >= {self.min_size}, got {tuple(x.shape)}: use larger "
                "images or fewer discriminator layers (n_layers)"
            )
        return self.model(x)


DISCRIMINATORS: Registry[nn.Module] = Registry("discriminator")


@DISCRIMINATORS.register("patchgan")
def build_patchgan(
    in_channels: int,
    ndf: int = 64,
    n_layers: int = 3,
    norm: str = "instance",
    init: str = "normal",
    init_gain: float = 0.02,
) -> nn.Module:
    """70x70 PatchGAN with n_layers=3 (pix2pix / CycleGAN default)."""
    return init_weights(PatchDiscriminator(in_channels, ndf, n_layers, norm), init, init_gain)


class FCDiscriminator(nn.Module):
    """Hung et al. 2018's fully convolutional discriminator on class-probability maps: five 4x4 stride-2 convs
    (ndf, 2ndf, 4ndf, 8ndf, 1) with LeakyReLU(0.2), no normalisation; the logit map is upsampled bilinearly to
    the input size, so it scores every pixel ("confidence map"). Inputs need H, W >= 32."""

    def __init__(self, in_channels: int, ndf: int = 64) -> None:
        super().__init__()
        if ndf < 1:
            raise ValueError(f"fcn discriminator: ndf must be >= 1, got {ndf}")
        widths = [in_channels, ndf, ndf * 2, ndf * 4, ndf * 8]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(widths[-1], 1, 4, stride=2, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or min(x.shape[2:]) < 32:
            raise ValueError(f"fcn discriminator expects (B, C, H, W) with H, W >= 32, got {tuple(x.shape)}")
        return nn.functional.interpolate(
            self.model(x), size=x.shape[2:], mode="bilinear", align_corners=False
        )


class EvaluationNet(nn.Module):
    """DAN's evaluation network (Zhang et al. 2017), as an image-level critic: the image and a segmentation
    (class probabilities) concatenated on channels, ``n_layers`` 4x4 stride-2 convs (ndf doubling, capped at
    8 ndf) with instance norm and LeakyReLU(0.2), global average pooling and a linear layer: one score logit
    per (image, segmentation) pair, shape (B, 1). The paper fuses two branches; one early-fused branch keeps
    the same role with fewer parameters."""

    def __init__(self, in_channels: int, ndf: int = 32, n_layers: int = 4) -> None:
        super().__init__()
        if ndf < 1 or n_layers < 1:
            raise ValueError(f"evaluation net: need ndf >= 1 and n_layers >= 1, got {ndf}, {n_layers}")
        layers: list[nn.Module] = []
        width = in_channels
        for n in range(n_layers):
            out = ndf * min(2**n, 8)
            layers += [nn.Conv2d(width, out, 4, stride=2, padding=1)]
            if n:
                layers.append(nn.InstanceNorm2d(out, affine=True))
            layers.append(nn.LeakyReLU(0.2, True))
            width = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, 1)
        self.min_size = 2**n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"evaluation net expects (B, C, H, W) with H, W >= {self.min_size}, got {tuple(x.shape)}"
            )
        return self.head(self.features(x))


@DISCRIMINATORS.register("fcn")
def build_fcn(in_channels: int, ndf: int = 64, init: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Per-pixel discriminator of class-probability maps (Hung et al. 2018)."""
    return init_weights(FCDiscriminator(in_channels, ndf), init, init_gain)


@DISCRIMINATORS.register("evaluation")
def build_evaluation(
    in_channels: int, ndf: int = 32, n_layers: int = 4, init: str = "normal", init_gain: float = 0.02
) -> nn.Module:
    """Image-level critic of (image, segmentation) pairs (DAN, Zhang et al. 2017)."""
    return init_weights(EvaluationNet(in_channels, ndf, n_layers), init, init_gain)


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018, torch's ``parametrizations.spectral_norm``) of every conv and
    linear layer of ``module``, in place: a Lipschitz-bounded critic that keeps giving the generator useful
    gradients when it tells real from fake easily (one-hot label maps: a few hundred steps)."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


def build_discriminator(name: str, in_channels: int, **params: Any) -> nn.Module:
    """Build a registered discriminator; unknown names and parameters name the valid ones."""
    ctor = DISCRIMINATORS.get(name)
    check_params(f'discriminator "{name}"', ctor, params, ("in_channels",), where="discriminator params")
    return ctor(in_channels=in_channels, **params)
