"""The base of every adversarial method (``cgan``, ``dual_gan``, ``cyclegan``, ``dan``, ``hung``): what they
share around the update itself (``weakseg.methods.gan_steps.gan_update``).

    @dataclass
    class Pix2PixParams:
        gan_mode: str = param("vanilla", choice(*GAN_MODES), "GAN loss")
        lr: float = param(2e-4, number(1e-12), "Adam learning rate of G and D")
        beta1: float = param(0.5, number(0.0, 0.999), "Adam beta1 of G and D")
        image_range: list[float] = param([0.0, 1.0], image_range_check(), "the data range")

    class Pix2Pix(GANMethod):
        params_class = Pix2PixParams
        picture_stem = "synthesis"                                  # saves synthesis_step<N>.png

        def __init__(self, ctx: BuildContext, params: Pix2PixParams):
            super().__init__()
            self.g, self.d = build_network("unet_generator", ...), build_discriminator("patchgan", ...)
            self.init_gan(params.gan_mode, params.lr, (params.beta1, 0.999), params.image_range)
            self.pool = ImagePool(0)

        def configure_optimizers(self):
            return {"G": self.adam(self.g), "D": self.adam(self.d)}

        def train_step(self, batch, step, ctx):
            real = self.to_gan(batch["labeled"][Keys.IMAGE])         # data range -> the generator's [-1, 1]
            ...
            return gan_update(ctx, {"D": Judge(self.d, self.pool)}, {"D": real}, generator_loss, self.gan_loss)

        def picture_rows(self, datasets):                            # [[(title, HxWx3 picture), ...], ...]
            return [[("synthetic", self.rgb(self.generate(s["label"][None])[0].numpy()))]
                    for s in picture_samples(datasets, ("val", "labeled"), 4)]

* ``image_range_check()``: the check of an ``image_range`` param (``[low, high]``, low < high), for the typed
  params of a method (``weakseg.methods.params``); ``GAN_MODES`` the choices of its ``gan_mode``.
* ``init_gan``: stores the GAN loss mode and the Adam learning rate and betas of the generator and
  discriminator optimizers (``gan_lr``, ``gan_betas``; checked by the typed params), builds ``gan_loss``; with
  ``image_range``, stores the data range as ``lo``, ``hi``.
* ``adam(*nets)``: one Adam over the nets' parameters, at ``gan_lr`` and ``gan_betas`` unless given others.
* ``to_gan`` / ``from_gan``: the data range <-> the [-1, 1] of tanh generators; ``rgb``: a picture of an image
  in the data range.
* ``pool_state`` / ``load_pool_state``: the past fakes of every ``ImagePool`` attribute. A method whose pools
  keep fakes (size > 0) sets ``get_extra_state = GANMethod.pool_state`` and ``set_extra_state =
  GANMethod.load_pool_state``: checkpoints then hold them and a resumed run draws the same past fakes. The
  others opt out, so their state dicts have no ``_extra_state`` entry.
* ``save_pictures``: with ``picture_stem`` set, the rows of ``picture_rows`` (built in eval mode) as one grid
  ``<picture_stem>_step<N>.png`` titled ``step <N>: <picture_caption()>``; ``picture_samples`` picks them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Adam

from weakseg.losses.gan import GANLoss, ImagePool
from weakseg.methods.base import Method
from weakseg.methods.gan_steps import from_gan_range, to_gan_range
from weakseg.methods.params import Check, custom

__all__ = ["GAN_MODES", "GANMethod", "image_range_check", "picture_samples"]

GAN_MODES = ("lsgan", "vanilla")  # pix2pix / CycleGAN's choices of GAN loss


def image_range_check() -> Check:
    """The check of a typed ``image_range`` param: ``[low, high]`` with low < high (``Params.image_range``'s
    message), returned as a list of two floats."""
    return custom(lambda p, key, value: list(p.image_range(value)), ([1.0, 0.0], [0.0], "abc"))


def picture_samples(datasets: dict, names: Sequence[str], n: int) -> Iterator[dict]:
    """``n`` samples spread evenly over the first non-empty dataset of ``names`` (e.g. ``("val", "labeled")``);
    none when every one is absent or empty."""
    data = next((datasets[k] for k in names if k in datasets and len(datasets[k])), None)
    if data is None:
        return
    for i in sorted({round(k * (len(data) - 1) / max(1, n - 1)) for k in range(n)}):
        yield data[i]


class GANMethod(Method):
    """A method trained with one or more generator / discriminator pairs (see the module docstring)."""

    picture_stem = ""  # file stem of the method's own picture grid; "" = none (the trainer's overlays only)

    def init_gan(
        self,
        gan_mode: str,
        lr: float,
        betas: tuple[float, float],
        image_range: Sequence[float] | None = None,
    ) -> None:
        """Store the shared hyperparameters (checked by the method's typed params at config load) and build
        ``gan_loss`` (a module without parameters or state: where it is registered changes no state dict)."""
        self.gan_mode = gan_mode
        self.gan_lr, self.gan_betas = float(lr), betas
        if image_range is not None:
            self.lo, self.hi = (float(v) for v in image_range)
        self.gan_loss = GANLoss(self.gan_mode)

    def adam(
        self, *nets: nn.Module, lr: float | None = None, betas: tuple[float, float] | None = None
    ) -> Adam:
        """One Adam over the parameters of ``nets`` (a single param group, in their order)."""
        lr = self.gan_lr if lr is None else lr
        return Adam(chain.from_iterable(n.parameters() for n in nets), lr, betas=betas or self.gan_betas)

    # ------------------------------------------------------------------ image range
    def to_gan(self, x: Tensor) -> Tensor:
        """Images from the data range [lo, hi] to the generators' [-1, 1]."""
        return to_gan_range(x, self.lo, self.hi)

    def from_gan(self, x: Tensor) -> Tensor:
        """Generator outputs from [-1, 1] back to the data range [lo, hi] (not clamped)."""
        return from_gan_range(x, self.lo, self.hi)

    def rgb(self, image: np.ndarray) -> np.ndarray:
        """(C, H, W) image in the data range -> (H, W, 3) picture, the range's ends black and white."""
        from weakseg.methods.pictures import scaled_rgb

        return scaled_rgb(image, self.lo, self.hi)

    # ------------------------------------------------------------------ checkpoint state
    def pool_state(self) -> dict[str, list[Tensor]]:
        """The past fakes of every ``ImagePool`` attribute, by attribute name."""
        return {name: list(pool.images) for name, pool in vars(self).items() if isinstance(pool, ImagePool)}

    def load_pool_state(self, state: dict[str, list[Tensor]]) -> None:
        """Refill every pool from ``pool_state()`` (a pool missing there is emptied), on the method's device."""
        device = next(self.parameters()).device
        for name, pool in vars(self).items():
            if isinstance(pool, ImagePool):
                pool.images = [x.to(device) for x in state.get(name, [])]

    # ------------------------------------------------------------------ pictures
    def picture_rows(self, datasets: dict) -> list[list[tuple[str, Any]]]:
        """Rows of (title, (H, W, 3) picture) panels for the method's grid."""
        return []

    def picture_caption(self) -> str:
        """What the grid shows, after "step <N>: " in its title."""
        return ""

    @torch.no_grad()
    def save_pictures(self, datasets: dict, run_dir: Path, step: int) -> list[Path]:
        if not self.picture_stem:
            return []
        from weakseg.methods.pictures import save_image_grid

        was_training = self.training
        self.eval()
        try:
            rows = self.picture_rows(datasets)
        finally:
            self.train(was_training)
        if not rows:
            return []
        path = run_dir / f"{self.picture_stem}_step{step:06d}.png"
        save_image_grid(rows, path, f"step {step}: {self.picture_caption()}")
        return [path]
