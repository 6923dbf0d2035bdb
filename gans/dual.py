"""Dual GAN (Guibas et al. 2017): noise -> label map -> image, both stages in one method and one checkpoint.

Method ``dual_gan``: stage 1 is an unconditional GAN of label maps, stage 2 the ``cgan`` of
``gans/cgan.py`` (all its ``method.params`` apply). Both train at every step on the same labeled batch with
their own optimizers (``G_label``/``D_label`` and ``G``/``D``), so stage 2 learns from real label maps and
``generate`` chains them: ``sample_labels`` -> ``generate``.

Stage 1 (hand-written: no library has a label-map GAN): ``LabelMapGenerator`` turns a spatial noise map
(``z_dim`` channels at ``label_noise_size`` squared) into class logits at ``label_size`` by nearest-neighbour
upsampling + 3x3 convolutions (no transposed convolutions: their checkerboard is an easy tell for the critic).
Sampling takes the argmax. The critic judges the generator's softmax against the real one-hot maps blurred by
a Gaussian of ``label_smooth`` pixels (soft mode, after Guibas et al., whose stage 1 made grey-level vessel
images), or, with ``label_smooth: 0``, a straight-through one-hot map (argmax forward, softmax gradient at
temperature ``tau`` backward). The critic (``label_critic``) is the ``patchgan`` (default) with
``label_d_layers`` stride-2 layers: 3 sees 70x70 patches (vessel trees, with ``label_noise_size`` = size / 16,
after the spatial GAN of Jetchev et al. 2016), 4 sees 142x142, a whole 128 px organ layout (with a 4x4 code so
that the generator's receptive field spans the map too); or the image-level ``evaluation`` net (convs + global
pooling; it let speckle pass). It is spectrally normalised and trained with the hinge loss by default
(``label_spectral_norm``, ``label_gan_mode``). ``label_epsilon`` mixes the real maps with the uniform
distribution (label smoothing): in CT runs with either patch critic, the generator saturated its softmax on
maps without organs (most real patches are background) and, its gradients vanishing, stayed there. What the
defaults replaced, measured on DRIVE and CT label maps at 128 px (stage 1 alone): LSGAN without normalisation
told one-hot maps apart within a few hundred steps (loss ~1e-3) and the generator collapsed to blobs and
speckle; the straight-through one-hot maps still showed speckle and streaks after 750 steps, the soft mode
smooth organs and thin vessel segments. Adam(``label_lr``, (0.5, 0.999)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from gans.cgan import CGAN, CGANParams, policy_check, reseed_judges
from weakseg.keys import Keys
from weakseg.losses.gan import GANLoss, ImagePool
from weakseg.methods.base import BuildContext, StepContext
from weakseg.methods.common import ema_update, frozen_copy, one_hot, rank_slice
from weakseg.methods.gan_steps import GeneratorOutput, Judge, adversarial_loss, gan_update
from weakseg.methods.params import Params, choice, flag, integer, number, param
from weakseg.nets import build_discriminator
from weakseg.nets.ddp import unwrap
from weakseg.nets.diffaug import DiffAugmented
from weakseg.nets.gan import spectral_normalize
from weakseg.nets.init import init_weights

__all__ = ["SAMPLE_BLOCK", "DualGAN", "DualGANParams", "LabelMapGenerator"]

SAMPLE_BLOCK = 8
LABEL_BETAS = (0.5, 0.999)  # Adam of the label-map GAN


class LabelMapGenerator(nn.Module):
    """Spatial noise z (B, z_dim, noise_size, noise_size) -> class logits (B, num_classes, size, size);
    ``size / noise_size`` = 2**k, k >= 1: a 3x3 conv to ``ngf * 2**min(k - 1, 3)`` channels, then k times
    nearest 2x upsampling + 3x3 conv (widths halve down to ``ngf``), each with batch norm and ReLU. Convs pad
    by replicating the border: zero padding marks the border, and the maps then put classes along it. Batch norm
    always normalises with the batch's statistics (no running averages, the DCGAN reference samples in training
    mode too): running averages lag the fast-moving generator, and maps sampled with them were visibly denser
    or sparser than the ones the critic judged. So sample in batches (``DualGAN.sample_labels`` uses blocks of
    ``SAMPLE_BLOCK``)."""

    def __init__(self, z_dim: int, num_classes: int, size: int, ngf: int = 64, noise_size: int = 4) -> None:
        super().__init__()
        k = self.upsamplings(size, noise_size)
        width = ngf * 2 ** min(k - 1, 3)
        self.z_dim, self.size, self.noise_size = z_dim, size, noise_size
        layers: list[nn.Module] = [
            nn.Conv2d(z_dim, width, 3, padding=1, padding_mode="replicate", bias=False),
            nn.BatchNorm2d(width, track_running_stats=False),
            nn.ReLU(True),
        ]
        for _ in range(k):
            out = max(ngf, width // 2)
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(width, out, 3, padding=1, padding_mode="replicate", bias=False),
                nn.BatchNorm2d(out, track_running_stats=False),
                nn.ReLU(True),
            ]
            width = out
        layers.append(nn.Conv2d(width, num_classes, 3, padding=1, padding_mode="replicate"))
        self.body = nn.Sequential(*layers)

    @staticmethod
    def upsamplings(size: int, noise_size: int) -> int:
        """k with ``size == noise_size * 2**k``, k >= 1; else ``ValueError``."""
        k = (size // max(1, noise_size)).bit_length() - 1
        if noise_size < 1 or k < 1 or noise_size * 2**k != size:
            raise ValueError(
                f"label map size must be noise size {noise_size} times a power of two >= 2, got {size}"
            )
        return k

    def noise(self, n: int, generator: torch.Generator) -> Tensor:
        """n noise maps (n, z_dim, noise_size, noise_size) drawn with ``generator`` (on the CPU)."""
        return torch.randn(n, self.z_dim, self.noise_size, self.noise_size, generator=generator)

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)


@dataclass
class DualGANParams(CGANParams):
    """``method.params`` of ``dual_gan``: the stage-2 ``cgan`` keys, then the label-map GAN's."""

    label_size: int = param(128, integer(8), "side of the label maps (the training data's size)")
    z_dim: int = param(128, integer(1), "channels of the label generator's noise map")
    label_ngf: int = param(64, integer(1), "label generator width (channels of its last layer)")
    label_ndf: int = param(32, integer(1), "label critic width")
    label_noise_size: int = param(4, integer(1), "side of the noise map; label_size / this is a power of 2")
    label_critic: str = param(
        "patch", choice("image", "patch"), "label critic: patch (PatchGAN) | image (global)"
    )
    label_d_layers: int = param(3, integer(1), "stride-2 layers of the patch critic (3: 70x70, 4: 142x142)")
    label_gan_mode: str = param(
        "hinge", choice("hinge", "lsgan", "vanilla"), "GAN loss of the label-map GAN: hinge | lsgan | vanilla"
    )
    label_spectral_norm: bool = param(True, flag(), "spectrally normalise the label critic")
    label_lr: float = param(2e-4, number(1e-12), "Adam learning rate of the label-map GAN")
    label_smooth: float = param(
        1.0, number(0.0, 10.0), "Gaussian blur (pixels) of the real maps; 0: straight-through one-hot fakes"
    )
    label_epsilon: float = param(0.0, number(0.0, 0.5), "mix of the real maps with the uniform distribution")
    tau: float = param(1.0, number(1e-3), "softmax temperature of the generated label maps")
    label_diffaugment: list[str] = param(
        [],
        policy_check(("translation", "cutout")),
        "DiffAugment policies of the label critic: translation, cutout",
    )
    label_ema_decay: float = param(
        0.0, number(0.0, 0.9999), "decay of an EMA label generator that samples (0: none)"
    )

    def __post_init__(self) -> None:
        p = Params("dual_gan")
        if self.condition != "label":
            p.fail(
                "condition",
                '"label" (sampled label maps have no context image to paint into)',
                self.condition,
            )
        try:
            LabelMapGenerator.upsamplings(self.label_size, self.label_noise_size)
        except ValueError as e:
            raise ValueError(f'method "{p.method}": method.params.label_size: {e}') from None


class DualGAN(CGAN):
    method_name = "dual_gan"
    params_class = DualGANParams

    def __init__(self, ctx: BuildContext, params: DualGANParams) -> None:
        super().__init__(ctx, params)
        p = Params(self.method_name)
        self.label_size = params.label_size
        self.z_dim = params.z_dim
        self.tau = params.tau
        self.label_lr = params.label_lr
        self.label_smooth = params.label_smooth
        self.label_epsilon = params.label_epsilon
        self.label_g = init_weights(
            LabelMapGenerator(
                self.z_dim, self.num_classes, self.label_size, params.label_ngf, params.label_noise_size
            ),
            "normal",
            0.02,
        )
        ndf = params.label_ndf
        if params.label_critic == "image":
            n_layers = max(1, min(6, (self.label_size // 4).bit_length() - 1))  # down to about 4x4
            self.label_d = build_discriminator("evaluation", self.num_classes, ndf=ndf, n_layers=n_layers)
        else:
            layers = params.label_d_layers
            self.label_d = build_discriminator("patchgan", self.num_classes, ndf=ndf, n_layers=layers)
            if self.label_size < self.label_d.min_size:  # the critic's size, known once it is built
                p.fail("label_size", f">= {self.label_d.min_size} with label_critic: patch", self.label_size)
        if params.label_spectral_norm:
            spectral_normalize(self.label_d)
        policy = tuple(params.label_diffaugment)  # no colour on label maps
        if policy:
            self.label_d = DiffAugmented(self.label_d, policy, seed=ctx.seed + 1)
        self.label_ema_decay = params.label_ema_decay
        self.label_g_ema = frozen_copy(self.label_g) if self.label_ema_decay else None
        self.label_loss = GANLoss(params.label_gan_mode)
        self.label_pool = ImagePool(0)
        self.noise_seed = ctx.seed

    @property
    def label_judges(self) -> dict[str, Judge]:
        return {"label": Judge(self.label_d, self.label_pool)}

    def configure_optimizers(self) -> dict[str, Optimizer]:
        opts = super().configure_optimizers()
        opts["G_label"] = self.adam(self.label_g, lr=self.label_lr, betas=LABEL_BETAS)
        opts["D_label"] = self.adam(self.label_d, lr=self.label_lr, betas=LABEL_BETAS)
        return opts

    def _fake_labels(self, z: Tensor) -> Tensor:
        """What the critic judges of the label generator: its tempered softmax (soft mode, ``label_smooth`` > 0),
        or a straight-through one-hot map (the argmax forward, the softmax's gradient backward). The randomness
        is z: per-pixel noise would only make speckle."""
        soft = (self.label_g(z).float() / self.tau).softmax(1)
        if self.label_smooth > 0:
            return soft
        hard = one_hot(soft.argmax(1), self.num_classes)
        return hard - soft.detach() + soft

    def _real_labels(self, label: Tensor) -> Tensor:
        """The real maps as the critic sees them: one-hot, Gaussian-blurred by ``label_smooth`` pixels in soft
        mode so that softness itself does not tell fake from real (with exact one-hot maps on both sides, the
        straight-through gradient was too coarse: speckle and streaks after 750 steps), then mixed with the
        uniform distribution by ``label_epsilon``."""
        real = one_hot(label, self.num_classes)
        if self.label_smooth == 0:
            return real
        from kornia.filters import gaussian_blur2d

        k = 2 * math.ceil(3 * self.label_smooth) + 1
        real = gaussian_blur2d(real, (k, k), (self.label_smooth, self.label_smooth), border_type="replicate")
        # label smoothing: real probabilities stay inside (0, 1), so the generator need not saturate its softmax
        # to match them; saturated (all-background) maps had vanishing gradients and never recovered (CT)
        return (1 - self.label_epsilon) * real + self.label_epsilon / self.num_classes

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        data = batch["labeled"]
        label = data[Keys.LABEL]
        if tuple(label.shape[-2:]) != (self.label_size, self.label_size):
            raise ValueError(
                f'method "dual_gan": the label maps are {tuple(label.shape[-2:])} but method.params.label_size is '
                f"{self.label_size}: crop or resize the training data to {self.label_size}x{self.label_size} or set "
                "label_size to the data's size"
            )
        logs = self.cgan_step(data, ctx)
        g = torch.Generator().manual_seed(self.noise_seed * 1_000_003 + step)  # exact on resume
        rank, world = rank_slice(ctx)  # DDP: noise for the global batch, this rank's block
        b = label.shape[0]
        z = unwrap(self.label_g).noise(b * world, g)[rank * b : (rank + 1) * b].to(label.device)

        def generator_loss() -> GeneratorOutput:
            fake = self._fake_labels(z)
            adv = adversarial_loss(self.label_d, fake, self.label_loss)
            return GeneratorOutput(adv, {"label_adv": adv}, {"label": fake})

        reseed_judges(self.label_d, step=step)
        label_logs = gan_update(
            ctx,
            self.label_judges,
            {"label": self._real_labels(label)},
            generator_loss,
            self.label_loss,
            "G_label",
            "D_label",
        )
        logs.update(
            {k if k.startswith(("label", "D_label")) else f"label_{k}": v for k, v in label_logs.items()}
        )
        if self.label_g_ema is not None:
            ema_update(self.label_g_ema, self.label_g, step, self.label_ema_decay)
        return logs

    self_metrics = ("label_stat_distance",)

    def self_evaluate(self, datasets: dict, n: int = 64) -> dict[str, float]:
        """How far sampled label maps are from the real ones (``gans.labelstats``: class frequencies, pieces
        per map, border share), from a fixed noise seed: ``train.key_metric: label_stat_distance`` with
        ``train.key_mode: min`` keeps the checkpoint whose maps look most like the real ones."""
        from gans.labelstats import label_map_stats, stat_distance

        real_ds = datasets["labeled"]
        size, real = self.label_size, []
        for i in range(min(n, len(real_ds))):
            m = real_ds[i][Keys.LABEL].numpy()
            if min(m.shape) >= size:  # larger maps (DRIVE): their centre crop, as the critic sees crops
                y, x = (m.shape[0] - size) // 2, (m.shape[1] - size) // 2
                real.append(m[y : y + size, x : x + size])
        if not real:
            raise ValueError(
                f'method "dual_gan": no real label map of {self.label_size}x{self.label_size} to compare with; '
                "resize the data to method.params.label_size"
            )
        was = self.training
        self.eval()
        try:
            fake = self.sample_labels(n, torch.Generator().manual_seed(12345)).cpu().numpy()
        finally:
            self.train(was)
        k = self.num_classes
        distance = stat_distance(label_map_stats(fake, k), label_map_stats(np.stack(real), k))
        return {"label_stat_distance": distance}

    @torch.no_grad()
    def sample_labels(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` label maps (n, label_size, label_size) int64 from noise drawn with ``generator``, generated in
        blocks of ``SAMPLE_BLOCK`` (the generator normalises with batch statistics; the last block is filled
        up with noise and cut)."""
        device = next(self.label_g.parameters()).device
        blocks = math.ceil(n / SAMPLE_BLOCK)
        z = unwrap(self.label_g).noise(blocks * SAMPLE_BLOCK, generator).to(device)
        g = self.label_g_ema if self.label_g_ema is not None else self.label_g
        return torch.cat([g(zb).argmax(1) for zb in z.split(SAMPLE_BLOCK)])[:n]

    def picture_rows(self, datasets: dict, n: int = 4) -> list[list[tuple[str, object]]]:
        """The cGAN rows, then sampled label maps -> synthetic images (the full noise -> label -> image chain)."""
        from weakseg.methods.pictures import label_overlay

        rows = super().picture_rows(datasets, n)
        labels = self.sample_labels(n, torch.Generator().manual_seed(0))
        if labels.shape[1] % self.size_divisor == 0:
            fov = None
            if self.fov_channel:  # sampled maps have no field of view: the whole map inside it
                fov = torch.ones_like(labels, dtype=torch.bool)
            images = self.generate(labels, fov=fov).cpu().numpy()
            for label, image in zip(labels.cpu().numpy(), images):
                rows.append(
                    [
                        ("sampled label map", label_overlay(image * 0, label, alpha=1.0)),
                        ("synthetic", self.rgb(image)),
                    ]
                )
        return rows
