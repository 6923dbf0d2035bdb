"""CycleGAN between a labeled source domain (e.g. CT) and an unlabeled target domain (e.g. MR), optionally with
a jointly trained segmenter of the target modality (SynSeg-Net, Huo et al. 2018).

Streams: ``source`` (labeled source images, ``data``) and ``target`` (unlabeled target images, the config's
``target`` section); the trainer evaluates ``predict`` on the target's validation split. Networks:
``g_st`` (source -> target) and ``g_ts`` (target -> source) generators, ``d_t`` / ``d_s`` PatchGANs judging
the target / source domain, and with ``segment: true`` (default) ``seg``, the config's ``model`` + ``loss``.

One iteration (``weakseg.methods.gan_steps.gan_update``), with both discriminators frozen in the G step:

* G step (optimizers ``G`` = both generators, and ``seg``): adversarial terms of both directions
  (``gan_mode``), cycle L1 (``lambda_cycle``), identity L1 (``lambda_cycle * lambda_identity``); with a
  segmenter ``lambda_seg * loss(seg(g_st(source)), source label)``, whose gradient also trains ``g_st``;
  ``seg_on_real_source: true`` adds the same loss on the real source images; ``shape_consistency: w`` adds
  ``w * mean((softmax(seg(x_t)) - softmax(seg(g_ts(x_t))))**2)`` on target images: the segmentation must
  survive the translation (needs ``seg_on_real_source``, so that the segmenter knows source-like images).
* D step (optimizer ``D``): each discriminator on real images vs ``ImagePool(pool_size)`` fakes, detached.

Images: the data's intensity preset gives ``image_range`` (default [0, 1]); generators work in [-1, 1]
(tanh output); ``translate`` maps there and back. Optimizers: Adam(lr, (beta1, 0.999)) for G and D; the
segmenter uses the config's ``optim``. The trainer's ``optim.schedule`` scales every optimizer; CycleGAN's
"constant, then linear decay to 0" is ``optim.schedule: constant_linear``. CycleGAN does not clip gradients:
``optim.grad_clip: null`` to match it.

``segment: false`` is a pure CycleGAN (for the two-stage route: translate the labeled source with
``translate`` and train a segmenter on the result): it has no ``predict`` (``method.predicts`` is False).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from weakseg.keys import Keys
from weakseg.losses.gan import ImagePool
from weakseg.methods.base import BuildContext, StepContext, make_optimizer
from weakseg.methods.common import float_logits, main_output
from weakseg.methods.gan_base import GAN_MODES, GANMethod, image_range_check, picture_samples
from weakseg.methods.gan_steps import GeneratorOutput, Judge, adversarial_loss, gan_update
from weakseg.methods.params import Params, choice, custom, flag, integer, number, param, rule
from weakseg.nets import build_discriminator, build_network, pad_to_divisor
from weakseg.nets.ddp import unwrap

__all__ = ["GENERATORS", "CycleGAN", "CycleGANParams"]

GENERATORS = ("resnet_6", "resnet_9", "unet")
_WHERE = 'method "cyclegan": method.params'


def _beta1(p: Params, key: str, value: Any) -> float:
    value = p.number(key, value)
    p.check(value < 1.0, key, "in [0, 1)", value)
    return value


def _two_names(domains: Any) -> bool:
    ok = isinstance(domains, (list, tuple)) and len(domains) == 2 and all(isinstance(d, str) for d in domains)
    return ok and domains[0] != domains[1] and all(d.isidentifier() for d in domains)


@dataclass
class CycleGANParams:
    """``method.params`` of ``cyclegan``."""

    generator: str = param("resnet_9", choice(*GENERATORS), "generators: resnet_6 | resnet_9 | unet")
    ngf: int = param(64, integer(1, "an int"), "generator width (filters of its first layer)")
    ndf: int = param(64, integer(1, "an int"), "PatchGAN discriminator width")
    n_layers_d: int = param(3, integer(1, "an int"), "PatchGAN stride-2 layers (3: 70x70 patches)")
    unet_downs: int = param(7, integer(1, "an int"), "generator: unet: its depth")
    gan_mode: str = param("lsgan", choice(*GAN_MODES), "GAN loss: lsgan | vanilla")
    lambda_cycle: float = param(10.0, number(), "weight of the cycle L1")
    lambda_identity: float = param(0.5, number(), "identity L1 weight, times lambda_cycle")
    pool_size: int = param(50, integer(0, "an int"), "past fakes each discriminator also judges (0: none)")
    lr: float = param(2e-4, number(1e-12), "Adam learning rate of G and D")
    beta1: float = param(0.5, custom(_beta1, ("abc", -1, 1.0)), "Adam beta1 of G and D")
    segment: bool = param(
        True, flag(), "train a segmenter of the target modality (SynSeg-Net); false: pure CycleGAN"
    )
    lambda_seg: float = param(1.0, number(), "weight of the segmentation terms in the G step")
    seg_on_real_source: bool = param(False, flag(), "the segmenter also learns the real source images")
    shape_consistency: float = param(
        0.0, number(), "weight of seg(target) vs seg(translated target) (needs seg_on_real_source)"
    )
    image_range: list[float] = param(
        [0.0, 1.0], image_range_check(), "[low, high] of the images after the intensity preset"
    )
    domains: list[str] | None = param(
        None,
        rule(
            lambda v: v is None or _two_names(v),
            "two different names, e.g. [ct, mr] (source, target)",
            (["ct", "ct"], ["ct"], "ct2mr"),
        ),
        "names of (source, target) in directions and logs (null: the phantom modalities, or ct, mr)",
    )

    def __post_init__(self) -> None:
        if not self.segment and (self.seg_on_real_source or self.shape_consistency):
            raise ValueError(f"{_WHERE}: seg_on_real_source and shape_consistency need segment: true")
        if self.shape_consistency and not self.seg_on_real_source:
            raise ValueError(
                f"{_WHERE}.shape_consistency compares the segmenter on target images and on their translation "
                "to the source domain, so the segmenter must also learn source images: set seg_on_real_source: "
                "true (or shape_consistency: 0)"
            )


def _domains(ctx: BuildContext, domains: list[str] | None) -> tuple[str, str]:
    """Names of (source, target) for directions and logs: given, or the phantom modalities, or ct / mr."""
    if domains is None:
        if ctx.data.source == "phantom" and ctx.target.source == "phantom":
            names = (ctx.data.phantom_modality, ctx.target.phantom_modality)
            return names if names[0] != names[1] else ("source", "target")
        return ("ct", "mr")
    return domains[0], domains[1]


class CycleGAN(GANMethod):
    streams = ("source", "target")
    picture_stem = "translation"
    # the image pools go into checkpoints, so a resumed run draws the same past fakes
    get_extra_state = GANMethod.pool_state
    set_extra_state = GANMethod.load_pool_state
    params_class = CycleGANParams

    def __init__(self, ctx: BuildContext, params: CycleGANParams) -> None:
        super().__init__()
        if ctx.target is None:
            raise ValueError(
                'method "cyclegan" adapts from data (the labeled source domain) to a target domain: add a '
                "target: section to the config (e.g. target: {phantom_modality: mr}, or target: {root: <MR "
                "folder>}); keys not given there are taken from data"
            )
        if ctx.spatial_dims != 2:
            raise ValueError(
                'method "cyclegan" is 2D: set data.slice_axis (and target.slice_axis) to slice volumes'
            )
        self.init_gan(params.gan_mode, params.lr, (params.beta1, 0.999), params.image_range)
        self.lambda_cycle = params.lambda_cycle
        self.lambda_identity = params.lambda_identity
        self.lambda_seg = params.lambda_seg
        self.shape_consistency = params.shape_consistency
        self.source_name, self.target_name = _domains(ctx, params.domains)
        channels, ngf, ndf, n_layers_d = ctx.in_channels, params.ngf, params.ndf, params.n_layers_d
        if params.generator == "unet":
            name, kwargs = "unet_generator", {"num_downs": params.unet_downs}
        else:
            name, kwargs = "resnet_generator", {"n_blocks": int(params.generator.split("_")[1])}
        self.g_st = build_network(name, 2, channels, channels, ngf=ngf, **kwargs)
        self.g_ts = build_network(name, 2, channels, channels, ngf=ngf, **kwargs)
        self.d_t = build_discriminator("patchgan", channels, ndf=ndf, n_layers=n_layers_d)
        self.d_s = build_discriminator("patchgan", channels, ndf=ndf, n_layers=n_layers_d)
        self.pool_t, self.pool_s = ImagePool(params.pool_size), ImagePool(params.pool_size)
        self.predicts = params.segment
        self.seg_on_real_source = params.seg_on_real_source
        self.optim_cfg = ctx.optim
        if params.segment:
            self.seg = ctx.segmenter()
            self.seg_loss = ctx.make_loss()

    # ------------------------------------------------------------------ the contract
    def configure_optimizers(self) -> dict[str, Optimizer]:
        opts = {"G": self.adam(self.g_st, self.g_ts), "D": self.adam(self.d_t, self.d_s)}
        if self.predicts:
            opts["seg"] = make_optimizer(self.seg.parameters(), self.optim_cfg)
        return opts

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        s, t = self.source_name, self.target_name
        image_s, image_t = batch["source"][Keys.IMAGE], batch["target"][Keys.IMAGE]
        real_s, real_t = self.to_gan(image_s), self.to_gan(image_t)
        if self.predicts and hasattr(self.seg_loss, "update"):
            self.seg_loss.update(step, ctx.max_steps)

        def generator_loss() -> GeneratorOutput:
            fake_t, fake_s = self.g_st(real_s), self.g_ts(real_t)
            terms = {
                f"adv_{t}": adversarial_loss(self.d_t, fake_t, self.gan_loss),
                f"adv_{s}": adversarial_loss(self.d_s, fake_s, self.gan_loss),
                f"cycle_{s}": self.lambda_cycle * _l1(self.g_ts(fake_t), real_s),
                f"cycle_{t}": self.lambda_cycle * _l1(self.g_st(fake_s), real_t),
            }
            if self.lambda_identity:
                w = self.lambda_cycle * self.lambda_identity
                terms[f"idt_{s}"] = w * _l1(self.g_ts(real_s), real_s)
                terms[f"idt_{t}"] = w * _l1(self.g_st(real_t), real_t)
            if self.predicts:
                terms.update(self._seg_terms(batch, fake_t, fake_s))
            loss = torch.stack(list(terms.values())).sum()
            return GeneratorOutput(loss, terms, {t: fake_t, s: fake_s})

        judges = {t: Judge(self.d_t, self.pool_t), s: Judge(self.d_s, self.pool_s)}
        g_opt = ("G", "seg") if self.predicts else "G"
        return gan_update(ctx, judges, {t: real_t, s: real_s}, generator_loss, self.gan_loss, g_opt, "D")

    def _seg_terms(self, batch: dict[str, dict], fake_t: Tensor, fake_s: Tensor) -> dict[str, Tensor]:
        """Segmentation terms of the G step (the segmenter sees images in the data range)."""
        label = batch["source"][Keys.LABEL]
        terms = {
            "seg_fake": self.lambda_seg * self.seg_loss(float_logits(self.seg(self.from_gan(fake_t))), label)
        }
        if self.seg_on_real_source:
            logits = float_logits(self.seg(batch["source"][Keys.IMAGE]))
            terms["seg_real"] = self.lambda_seg * self.seg_loss(logits, label)
        if self.shape_consistency:
            p_t = main_output(self.seg(batch["target"][Keys.IMAGE])).float().softmax(1)
            p_ts = main_output(self.seg(self.from_gan(fake_s))).float().softmax(1)
            terms["shape"] = self.shape_consistency * F.mse_loss(p_t, p_ts)
        return terms

    def predict(self, image: Tensor) -> Tensor:
        """Segmenter logits (B, num_classes, H, W) for target-domain images in the data range."""
        if not self.predicts:
            raise RuntimeError(
                'method "cyclegan" with segment: false is a pure CycleGAN and has no segmenter, so it cannot '
                "predict labels or be evaluated: translate the labeled source with method.translate(image, "
                f'"{self.source_name}2{self.target_name}") and train a segmenter on the result, or set '
                "method.params.segment: true"
            )
        return self.seg(image)

    @torch.no_grad()
    def translate(self, image: Tensor, direction: str | None = None) -> Tensor:
        """Translate (B, C, H, W) images in the data range to the other domain, same shape and range.

        ``direction``: ``"<source>2<target>"`` (default, e.g. ``"ct2mr"``) or ``"<target>2<source>"``;
        ``"source2target"`` / ``"target2source"`` always work. Any H, W (padded to the generator's divisor
        by edge replication, then cropped back). Call ``method.eval()`` first when the generator uses dropout.
        """
        s, t = self.source_name, self.target_name
        forward = {f"{s}2{t}", "source2target"}
        valid = sorted(forward | {f"{t}2{s}", "target2source"})
        direction = direction or f"{s}2{t}"
        if direction not in valid:
            raise ValueError(f'translate: direction must be one of {", ".join(valid)}, got "{direction}"')
        generator = self.g_st if direction in forward else self.g_ts
        if image.ndim != 4:
            raise ValueError(
                f"translate expects a batch (B, C, H, W) of 2D images, got shape {tuple(image.shape)}"
            )
        padded, crop = pad_to_divisor(image, unwrap(generator).size_divisor, mode="replicate")
        return self.from_gan(generator(self.to_gan(padded)))[crop].clamp(self.lo, self.hi)

    def picture_caption(self) -> str:
        return f"{self.source_name} <-> {self.target_name}"

    def picture_rows(self, datasets: dict, n: int = 3) -> list[list[tuple[str, Any]]]:
        """Rows real source -> fake target -> reconstructed source (-> the segmenter on the fake target), then
        real target -> fake source -> reconstructed target (-> the segmenter on the real target, what is
        evaluated), for ``n`` fixed slices of each domain (source validation, target validation when
        present); saved as ``translation_step<N>.png``."""
        from weakseg.methods.infer import predict_logits
        from weakseg.methods.pictures import label_overlay

        s, t = self.source_name, self.target_name
        rows = []
        device = next(self.g_st.parameters()).device
        for a, b, names in ((s, t, ("source_val", "source")), (t, s, ("val", "target"))):
            for sample in picture_samples(datasets, names, n):
                real = sample[Keys.IMAGE][None].to(device)
                fake = self.translate(real, f"{a}2{b}")
                rec = self.translate(fake, f"{b}2{a}")
                panels = [(f"real {a}", real), (f"fake {b}", fake), (f"reconstructed {a}", rec)]
                row = [(name, self.rgb(x[0].float().cpu().numpy())) for name, x in panels]
                if self.predicts:
                    shown = fake if a == s else real  # the segmenter works on target-modality images
                    label = predict_logits(self, shown).argmax(1)[0].cpu().numpy()
                    row.append(
                        (
                            f"segmenter on {'fake' if a == s else 'real'} {t}",
                            label_overlay(shown[0].float().cpu().numpy(), label),
                        )
                    )
                rows.append(row)
        return rows

    @property
    def size_divisor(self) -> int:
        div = unwrap(self.g_st).size_divisor
        return math.lcm(div, int(getattr(unwrap(self.seg), "size_divisor", 1))) if self.predicts else div


def _l1(a: Tensor, b: Tensor) -> Tensor:
    return F.l1_loss(a.float(), b.float())
