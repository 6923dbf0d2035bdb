"""Shared GAN parts: the adversarial loss and the pool of past fakes (pytorch-CycleGAN-and-pix2pix).

>>> gan = GANLoss("lsgan"); pool = ImagePool(50)
>>> loss_d = gan(D(real), True) + gan(D(pool(fake.detach())), False)
>>> loss_g = gan(D(fake), True, for_discriminator=False)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GANLoss", "ImagePool"]

_MODES = ("lsgan", "vanilla", "hinge")


# Hand-written: MONAI's PatchAdversarialLoss puts LeakyReLU/tanh/sigmoid before the criterion, unlike
# pytorch-CycleGAN's GANLoss (raw logits) that the survey's GAN methods use.
class GANLoss(nn.Module):
    """Adversarial loss of discriminator outputs (logits, any shape; a list = multi-scale, averaged).

    ``lsgan``: MSE to 1 (real) / 0 (fake); ``vanilla``: BCE with logits; ``hinge``: for the discriminator
    ``relu(1 - D)`` on real and ``relu(1 + D)`` on fake, for the generator ``-D`` (``target_is_real=True``).
    """

    def __init__(self, mode: str = "lsgan", real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f'GAN loss mode must be one of {", ".join(_MODES)}, got "{mode}"')
        self.mode, self.real_label, self.fake_label = mode, real_label, fake_label

    def _single(self, prediction: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        if self.mode == "hinge":
            if not for_discriminator:
                if not target_is_real:
                    raise ValueError("hinge GAN loss for the generator needs target_is_real=True")
                return -prediction.mean()
            return F.relu(1.0 - prediction).mean() if target_is_real else F.relu(1.0 + prediction).mean()
        label = torch.full_like(prediction, self.real_label if target_is_real else self.fake_label)
        if self.mode == "lsgan":
            return F.mse_loss(prediction, label)
        return F.binary_cross_entropy_with_logits(prediction, label)

    def forward(
        self, prediction: Tensor | Sequence[Tensor], target_is_real: bool, for_discriminator: bool = True
    ) -> Tensor:
        if isinstance(prediction, Tensor):
            return self._single(prediction, target_is_real, for_discriminator)
        losses = [self._single(p, target_is_real, for_discriminator) for p in prediction]
        if not losses:
            raise ValueError("GANLoss got an empty list of predictions")
        return torch.stack(losses).mean()


# Hand-written: MONAI has no image pool.
class ImagePool:
    """Buffer of past generated images (Shrivastava et al.), as in pytorch-CycleGAN's ``util/image_pool.py``.

    ``pool(images)`` returns a batch of the same shape: each image is stored while the pool fills; once
    full, with probability 0.5 a random stored image is returned (and replaced by the new one), else
    the new image. ``size=0`` returns the input unchanged. Returned images are detached.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None) -> None:
        if size < 0:
            raise ValueError(f"ImagePool size must be >= 0, got {size}")
        self.size = size
        self.generator = generator
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach().unbind(0):
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                idx = int(torch.randint(self.size, (), generator=self.generator).item())
                out.append(self.images[idx])
                self.images[idx] = image
            else:
                out.append(image)
        return torch.stack(out)
