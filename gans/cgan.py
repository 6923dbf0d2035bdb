"""Conditional GAN (pix2pix, Isola et al. 2017): a label map becomes an image (survey section III-A).

Method ``cgan`` (stream ``labeled``): the pix2pix U-Net generator ``G`` (or, ``generator: spade``, a SPADE
generator: the label map modulates the normalisation at every scale, Park et al. 2019) maps a condition to an
image; a 70x70 PatchGAN ``D`` judges (condition, image) pairs; G minimises the adversarial loss plus ``lambda_l1`` x L1 to
the real image. Conditions (``condition``):

* ``label``: the one-hot label map (num_classes channels), Guibas et al.'s second stage.
* ``label_and_context`` (Mahapatra et al. 2018): the one-hot label map, the image with the labeled structures
  erased (foreground dilated by ``erase_dilation`` pixels, set to mid-grey) and that erase mask. Trained to
  repaint the erased structures; at generation an *edited* label map is painted into a real image's context
  (``generate(label, image, old_label)`` erases the union of the old and the new structures).

Data-efficient training (few real images): ``diffaugment: [translation, cutout, color]`` makes D judge
DiffAugment-ed pairs (``weakseg.nets.diffaug``; the same draws for the real and the fake batch of a step), and
``ema_decay: 0.999`` keeps an EMA copy of G that ``generate`` samples with.

Images go through G in [-1, 1] (``image_range`` maps the data range there and back); 1-channel (CT/MR) and
3-channel (fundus) images alike. ``method.predicts`` is False (no segmenter): the trainer does not evaluate,
it saves ``synthesis_step<N>.png`` (label -> synthetic -> real) at every ``train.eval_every``. Optimizers
``G`` and ``D``: Adam(lr, (beta1, 0.999)); the trainer's ``optim.schedule`` scales them (pix2pix:
``constant_linear``); no gradient clipping in pix2pix (``optim.grad_clip: null``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from weakseg.keys import Keys
from weakseg.losses.gan import ImagePool
from weakseg.methods.base import BuildContext, StepContext
from weakseg.methods.common import ema_update, frozen_copy, one_hot
from weakseg.methods.gan_base import GAN_MODES, GANMethod, image_range_check, picture_samples
from weakseg.methods.gan_steps import GeneratorOutput, Judge, adversarial_loss, gan_update
from weakseg.methods.params import Check, Params, choice, custom, flag, integer, number, param
from weakseg.nets import build_discriminator, build_network
from weakseg.nets.ddp import unwrap
from weakseg.nets.diffaug import POLICIES, DiffAugmented, check_policy

__all__ = ["CGAN", "CGANParams", "CONDITIONS", "check_label_values", "policy_check", "reseed_judges"]

CONDITIONS = ("label", "label_and_context")


def policy_check(allowed: Sequence[str] = POLICIES) -> Check:
    """The check of a DiffAugment policy param (``diffaugment``, ``label_diffaugment``): a list of ``allowed``
    names (``weakseg.nets.diffaug.check_policy``'s messages)."""

    def check(p: Params, key: str, value: Any) -> list[str]:
        where = f'method "{p.method}": method.params.{key}'
        if not isinstance(value, (list, tuple)):  # check_policy iterates it
            raise ValueError(f"{where} must be a list of {', '.join(allowed)}, got {value!r}")
        return list(check_policy(value, where, allowed))

    return custom(check, ("translation", ["rotate"], [1]))


@dataclass
class CGANParams:
    """``method.params`` of ``cgan`` (and the stage-2 keys of ``dual_gan``)."""

    condition: str = param(
        "label",
        choice(*CONDITIONS),
        "generator input: label (one-hot map) | label_and_context (+ erased image)",
    )
    generator: str = param(
        "pix2pix", choice("pix2pix", "spade"), "generator: pix2pix (U-Net) | spade (SPADE residual decoder)"
    )
    num_downs: int = param(
        7,
        integer(5),
        "generator depth (U-Net levels; SPADE upsamplings): image sides are multiples of 2**num_downs",
    )
    ngf: int = param(64, integer(1), "generator width (filters of its first layer)")
    ndf: int = param(64, integer(1), "PatchGAN discriminator width")
    n_layers_d: int = param(3, integer(1), "PatchGAN stride-2 layers (3: 70x70 patches)")
    dropout: float = param(0.5, number(0.0, 0.99), "dropout of the U-Net generator's inner layers")
    spade_channels: int = param(128, integer(1), "spade: hidden channels of each SPADE modulation")
    gan_mode: str = param("vanilla", choice(*GAN_MODES), "GAN loss: lsgan | vanilla")
    lambda_l1: float = param(100.0, number(), "weight of the L1 distance to the real image")
    lr: float = param(2e-4, number(1e-12), "Adam learning rate of G and D")
    beta1: float = param(0.5, number(0.0, 0.999), "Adam beta1 of G and D")
    erase_dilation: int = param(
        5, integer(0), "label_and_context: pixels the erased foreground is dilated by"
    )
    image_range: list[float] = param(
        [0.0, 1.0], image_range_check(), "[low, high] of the images after the intensity preset"
    )
    diffaugment: list[str] = param(
        [], policy_check(), "DiffAugment policies of D's pairs: translation, cutout, color (data-efficient)"
    )
    ema_decay: float = param(0.0, number(0.0, 0.9999), "decay of an EMA copy of G that samples (0: none)")
    fov_channel: bool = param(
        False,
        flag(),
        "the field of view (fundus: pixels brighter than fov_threshold) as an extra generator input",
    )
    fov_threshold: float = param(
        0.08, number(0.0, 1.0), "fov_channel: channel-mean brightness inside the view"
    )


def reseed_judges(*discs: torch.nn.Module, step: int = 0) -> None:
    """Reseed the DiffAugment draws of these discriminators for ``step`` (no-op for plain ones)."""
    for d in discs:
        if isinstance(unwrap(d), DiffAugmented):
            unwrap(d).reseed(step)


def check_label_values(label: Tensor, num_classes: int, where: str) -> None:
    """Label maps for a synthesis model must hold classes 0..num_classes-1."""
    bad = label[(label < 0) | (label >= num_classes)]
    if bad.numel():
        found = sorted(int(v) for v in torch.unique(bad)[:10])
        raise ValueError(
            f"{where}: label values {found} are outside 0..{num_classes - 1}, the classes this synthesis model "
            f"was trained on (data.num_classes = {num_classes}); remap the label maps or train on these classes"
        )


class CGAN(GANMethod):
    streams = ("labeled",)
    predicts = False
    method_name = "cgan"
    picture_stem = "synthesis"
    params_class = CGANParams

    def __init__(self, ctx: BuildContext, params: CGANParams) -> None:
        super().__init__()
        if ctx.spatial_dims != 2:
            raise ValueError(f'method "{self.method_name}" is 2D: set data.slice_axis to synthesise slices')
        self.condition_kind = params.condition
        self.init_gan(params.gan_mode, params.lr, (params.beta1, 0.999), params.image_range)
        self.erase_dilation = params.erase_dilation
        self.lambda_l1 = params.lambda_l1
        self.num_classes, self.channels = ctx.num_classes, ctx.in_channels
        self.fov_channel, self.fov_threshold = params.fov_channel, params.fov_threshold
        g_in = self.num_classes + (self.channels + 1 if self.condition_kind == "label_and_context" else 0)
        g_in += int(self.fov_channel)
        if params.generator == "spade":  # Park et al. 2019, with pix2pix's PatchGAN + L1 objective
            # num_downs - 2 upsamplings: a 4x4 start map at the U-Net's 2**num_downs (SPADE starts at 4x8)
            self.g = build_network(
                "spade_generator", 2, g_in, self.channels, n_ups=params.num_downs - 2, ngf=params.ngf,
                spade_channels=params.spade_channels,
            )  # fmt: skip
        else:
            self.g = build_network(
                "unet_generator", 2, g_in, self.channels, num_downs=params.num_downs, ngf=params.ngf,
                dropout=params.dropout,
            )  # fmt: skip
        self.d = build_discriminator(
            "patchgan", g_in + self.channels, ndf=params.ndf, n_layers=params.n_layers_d
        )
        policy = tuple(params.diffaugment)
        if (
            policy
        ):  # data-efficient training: D judges DiffAugment-ed pairs (colour on the image channels only)
            self.d = DiffAugmented(self.d, policy, color=(g_in, g_in + self.channels), seed=ctx.seed)
        # an EMA copy of G samples (ema_decay > 0), as in data-efficient GANs; G itself keeps training
        self.ema_decay = params.ema_decay
        self.g_ema = frozen_copy(self.g) if self.ema_decay else None
        self.pool = ImagePool(0)  # pix2pix: no image pool

    @property
    def judges(self) -> dict[str, Judge]:
        return {"D": Judge(self.d, self.pool)}  # built on use: self.d may be DDP-wrapped

    # ------------------------------------------------------------------ conditioning
    def condition(
        self,
        label: Tensor,
        image: Tensor | None = None,
        erase: Tensor | None = None,
        fov: Tensor | None = None,
    ) -> Tensor:
        """The generator's input for ``label`` (B, H, W): its one-hot map; with ``fov_channel`` the field of
        view (``fov`` (B, H, W), else that of ``image``); with context, ``image`` (data range) outside the erase
        mask (default: ``label``'s dilated foreground)."""
        parts = [one_hot(label, self.num_classes)]
        if self.fov_channel:
            if fov is None and image is None:
                raise ValueError(
                    "this model was trained with fov_channel: give the field of view of each label map (weakseg "
                    "synth generate --fov DIR: masks of real fields of view) or the image to take it from"
                )
            parts.append((self.fov_of(image) if fov is None else fov.bool()).float()[:, None])
        if self.condition_kind == "label":
            return torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        if image is None:
            raise ValueError('condition "label_and_context" needs the context image as well as the label map')
        mask = self.erase_mask(label > 0 if erase is None else erase)
        context = self.to_gan(image.float()) * (1.0 - mask)  # erased -> 0 (mid-grey)
        return torch.cat([*parts, context, mask], 1)

    def fov_of(self, image: Tensor) -> Tensor:
        """(B, C, H, W) images in the data range -> (B, H, W) bool field of view: the channel mean above
        ``fov_threshold`` (a fundus camera's dark surround is near 0), holes of dark vessels closed (5x5)."""
        inside = (
            image.float().mean(1, keepdim=True) > self.lo + self.fov_threshold * (self.hi - self.lo)
        ).float()
        closed = -F.max_pool2d(-F.max_pool2d(inside, 5, stride=1, padding=2), 5, stride=1, padding=2)
        return closed[:, 0] > 0.5

    def erase_mask(self, foreground: Tensor) -> Tensor:
        """(B, H, W) bool -> (B, 1, H, W) float, dilated by ``erase_dilation`` pixels."""
        mask = foreground.float()[:, None]
        if self.erase_dilation:
            k = 2 * self.erase_dilation + 1
            mask = F.max_pool2d(mask, k, stride=1, padding=self.erase_dilation)
        return mask

    @torch.no_grad()
    def generate(
        self,
        label: Tensor,
        image: Tensor | None = None,
        old_label: Tensor | None = None,
        fov: Tensor | None = None,
    ) -> Tensor:
        """Images (B, C, H, W) in the data range for label maps (B, H, W); H, W multiples of the generator's
        ``size_divisor``. With context, ``image`` is the real image to paint into and ``old_label`` its own
        label map (the union of old and new structures is erased). ``fov`` (B, H, W): the field of view of a
        ``fov_channel`` model (else taken from ``image``)."""
        check_label_values(label, self.num_classes, "generate")
        div = self.size_divisor
        if label.ndim != 3 or label.shape[1] % div or label.shape[2] % div:
            raise ValueError(
                f"generate expects label maps (B, H, W) with H, W multiples of {div} (the generator's "
                f"2**num_downs), got shape {tuple(label.shape)}"
            )
        erase = None if old_label is None else (label > 0) | (old_label > 0)
        fake = (self.g_ema if self.g_ema is not None else self.g)(self.condition(label, image, erase, fov))
        return self.from_gan(fake.float()).clamp(self.lo, self.hi)

    # ------------------------------------------------------------------ the contract
    def configure_optimizers(self) -> dict[str, Optimizer]:
        return {"G": self.adam(self.g), "D": self.adam(self.d)}

    def cgan_step(self, data: dict, ctx: StepContext, g_opt: str = "G", d_opt: str = "D") -> dict[str, float]:
        label, image = data[Keys.LABEL], data[Keys.IMAGE]
        real = self.to_gan(image.float())
        cond = self.condition(label, image)

        def generator_loss() -> GeneratorOutput:
            fake = self.g(cond)
            pair = torch.cat([cond, fake], 1)
            adv = adversarial_loss(self.d, pair, self.gan_loss)
            l1 = self.lambda_l1 * F.l1_loss(fake.float(), real)
            return GeneratorOutput(adv + l1, {"adv": adv, "l1": l1}, {"D": pair})

        reseed_judges(self.d, step=ctx.step)
        logs = gan_update(
            ctx, self.judges, {"D": torch.cat([cond, real], 1)}, generator_loss, self.gan_loss, g_opt, d_opt
        )
        if self.g_ema is not None:
            ema_update(self.g_ema, self.g, ctx.step, self.ema_decay)
        return logs

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        self.check_size(batch["labeled"][Keys.LABEL])
        return self.cgan_step(batch["labeled"], ctx)

    def check_size(self, label: Tensor) -> None:
        h, w = label.shape[-2:]
        if h % self.size_divisor or w % self.size_divisor:
            raise ValueError(
                f'method "{self.method_name}": training images are {h}x{w}, but the generator needs '
                f"multiples of {self.size_divisor} (2**num_downs): crop (augment crop) or resize (data.resize) "
                "to such a size, or lower method.params.num_downs"
            )

    def predict(self, image: Tensor) -> Tensor:
        raise RuntimeError(
            f'method "{self.method_name}" synthesises images and has no segmenter: write a dataset with '
            "`weakseg synth generate CKPT --n N --out DIR` and train a segmenter on it"
        )

    @property
    def size_divisor(self) -> int:
        return int(unwrap(self.g).size_divisor)

    # ------------------------------------------------------------------ pictures
    def picture_caption(self) -> str:
        return "label map -> synthetic image"

    def picture_rows(self, datasets: dict, n: int = 4) -> list[list[tuple[str, Any]]]:
        """Rows label -> synthetic -> real for ``n`` fixed training samples (validation when present)."""
        from weakseg.methods.pictures import label_overlay

        rows = []
        device = next(self.g.parameters()).device
        for sample in picture_samples(datasets, ("val", "labeled"), n):
            label, image = sample[Keys.LABEL][None].to(device), sample[Keys.IMAGE][None].to(device)
            # the generator needs multiples of its size divisor: show the largest such centre crop
            h, w = (s - s % self.size_divisor for s in label.shape[1:])
            if not h or not w:
                continue
            y, x = (label.shape[1] - h) // 2, (label.shape[2] - w) // 2
            label, image = label[:, y : y + h, x : x + w], image[..., y : y + h, x : x + w]
            fake = self.generate(label, image)[0].cpu().numpy()
            real = image[0].float().cpu().numpy()
            rows.append(
                [
                    ("label map", label_overlay(real * 0, label[0].cpu().numpy(), alpha=1.0)),
                    ("synthetic", self.rgb(fake)),
                    ("real", self.rgb(real)),
                ]
            )
        return rows
