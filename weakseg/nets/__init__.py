"""Segmentation networks: the NETWORKS registry and ``build_network``.

Extension contract (every entry of ``NETWORKS``)
------------------------------------------------
* Constructor ``ctor(spatial_dims, in_channels, out_channels, **params) -> nn.Module``; ``params`` come from
  the config's ``model.params``. Keyword arguments with defaults are the valid params: ``build_network``
  rejects any other name with a ``ValueError`` naming the network, the key and the valid keys.
* ``net.size_divisor: int``: every spatial size of the input must be a multiple of it (checked on every
  call with a clear error); pad with ``pad_to_divisor`` and crop the logits back. Optional
  ``net.axis_divisors: tuple[int, ...]`` (one per axis, each dividing ``size_divisor``) relaxes the check
  per axis for anisotropic strides, e.g. DynUNet strides (1, (1, 2, 2), 2) -> (2, 4, 4), size_divisor 4.
* ``net.deep_supervision: bool`` (``build_network`` sets False when the constructor does not).
* Optional ``ctor.supported_dims`` (default ``(2, 3)``): e.g. ``(2,)`` for ImageNet encoders; the constructor
  itself raises a clear error for other dims, and the registry-generated tests skip them.
* ``forward(x)`` with ``x`` float (B, in_channels, *spatial) returns raw logits, no softmax:
    - eval mode, or train mode without deep supervision: one tensor (B, out_channels, *spatial);
    - train mode with deep supervision: ``list[Tensor]``, most refined / highest resolution first, each
      (B, out_channels, *own_spatial). Full size first; lower heads at their own resolution unless the
      backbone upsamples them (MONAI's DynUNet and UNet++ heads are all full size).

    >>> net = build_network("unet", 2, in_channels=1, out_channels=5)
    >>> net.size_divisor
    16
    >>> net.eval()(torch.zeros(2, 1, 64, 64)).shape
    torch.Size([2, 5, 64, 64])
    >>> net = build_network("dynunet", 3, 1, 5, deep_supervision=True, deep_supr_num=2).train()
    >>> [tuple(o.shape) for o in net(torch.zeros(1, 1, 32, 32, 32))]  # output, then 2 heads upsampled by MONAI
    [(1, 5, 32, 32, 32), (1, 5, 32, 32, 32), (1, 5, 32, 32, 32)]

Registered (MONAI backbones, 2D and 3D; defaults in ``network_params(name)``): unet, attention_unet, unetpp,
vnet, dynunet, segresnet; and ``encoder_unet`` (2D, a pretrained ``ENCODERS`` backbone under smp's U-Net
decoder: vgg11, vgg16, resnet18/34/50, efficientnet_lite0; see docs/transfer.md). ``init_weights``
initialises GAN parts as pytorch-CycleGAN does. GAN parts (``weakseg.nets.gan``, 2D): ``resnet_generator`` and
``unet_generator`` in NETWORKS (image -> image, tanh output by default), the ``patchgan`` discriminator in
``DISCRIMINATORS`` (``build_discriminator``), shared by gans/ and adapt/.
"""

from __future__ import annotations

from weakseg.nets import monai_nets  # noqa: F401  (registers the MONAI backbones)
from weakseg.nets.base import (
    NETWORKS,
    axis_divisors,
    build_network,
    network_params,
    pad_to_divisor,
    stride_divisor,
)
from weakseg.nets.encoders import (
    ENCODERS,
    EncoderSpec,
    find_imagenet_weights,
    pretrained_weights_disabled,
    pretrained_weights_skipped,
)
from weakseg.nets.gan import DISCRIMINATORS, build_discriminator  # also registers the GAN generators
from weakseg.nets.init import INIT_KINDS, init_weights
from weakseg.nets.init_from import load_initial_weights

# smp and timm are imported only when an encoder_unet is built
NETWORKS.register_lazy("encoder_unet", "weakseg.nets.encoder_unet:build_encoder_unet")

__all__ = [
    "DISCRIMINATORS",
    "ENCODERS",
    "INIT_KINDS",
    "NETWORKS",
    "EncoderSpec",
    "axis_divisors",
    "build_discriminator",
    "build_network",
    "find_imagenet_weights",
    "init_weights",
    "network_params",
    "pad_to_divisor",
    "pretrained_weights_disabled",
    "pretrained_weights_skipped",
    "load_initial_weights",
    "stride_divisor",
]
