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
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.optim import Optimizer

from weakseg.config import Config
from weakseg.keys import Keys
from weakseg.losses import build_loss
from weakseg.losses.gan import ImagePool
from weakseg.methods.base import StepContext, make_optimizer
from weakseg.methods.common import float_logits, main_output
from weakseg.methods.gan_base import GANMethod, picture_samples
from weakseg.methods.gan_steps import GeneratorOutput, Judge, adversarial_loss, gan_update
from weakseg.methods.params import Params
from weakseg.methods.supervised import build_segmenter
from weakseg.nets import build_discriminator, build_network, pad_to_divisor
from weakseg.nets.ddp import unwrap

__all__ = ["GENERATORS", "CycleGAN"]

GENERATORS = ("resnet_6", "resnet_9", "unet")
_WHERE = 'method "cyclegan": method.params'


_P = Params("cyclegan")


def _domains(cfg: Config, domains: Sequence[str] | None) -> tuple[str, str]:
    """Names of (source, target) for directions and logs: given, or the phantom modalities, or ct / mr."""
    if domains is None:
        if cfg.data.source == "phantom" and cfg.target.source == "phantom":
            names = (cfg.data.phantom_modality, cfg.target.phantom_modality)
            return names if names[0] != names[1] else ("source", "target")
        return ("ct", "mr")
    ok = isinstance(domains, (list, tuple)) and len(domains) == 2 and all(isinstance(d, str) for d in domains)
    _P.check(
        ok and domains[0] != domains[1] and all(d.isidentifier() for d in domains),
        "domains",
        "two different names, e.g. [ct, mr] (source, target)",
        domains,
    )
    return domains[0], domains[1]


class CycleGAN(GANMethod):
    streams = ("source", "target")
    picture_stem = "translation"
    # the image pools go into checkpoints, so a resumed run draws the same past fakes
    get_extra_state = GANMethod.pool_state
    set_extra_state = GANMethod.load_pool_state

    def __init__(
        self,
        cfg: Config,
        generator: str = "resnet_9",
        ngf: int = 64,
        ndf: int = 64,
        n_layers_d: int = 3,
        unet_downs: int = 7,
        gan_mode: str = "lsgan",
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        segment: bool = True,
        lambda_seg: float = 1.0,
        seg_on_real_source: bool = False,
        shape_consistency: float = 0.0,
        image_range: Sequence[float] = (0.0, 1.0),
        domains: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if cfg.target is None:
            raise ValueError(
                'method "cyclegan" adapts from data (the labeled source domain) to a target domain: add a '
                "target: section to the config (e.g. target: {phantom_modality: mr}, or target: {root: <MR "
                "folder>}); keys not given there are taken from data"
            )
        if cfg.data.spatial_dims != 2:
            raise ValueError(
                'method "cyclegan" is 2D: set data.slice_axis (and target.slice_axis) to slice volumes'
            )
        _P.check(generator in GENERATORS, "generator", " | ".join(GENERATORS), generator)
        beta1 = _P.number("beta1", beta1)
        _P.check(beta1 < 1.0, "beta1", "in [0, 1)", beta1)
        self.init_gan(_P, gan_mode, lr, (beta1, 0.999), image_range)
        for key, value in dict(ngf=ngf, ndf=ndf, n_layers_d=n_layers_d, unet_downs=unet_downs).items():
            _P.integer(key, value, 1, "an int")
        _P.integer("pool_size", pool_size, 0, "an int")
        for key, value in {"segment": segment, "seg_on_real_source": seg_on_real_source}.items():
            _P.check(isinstance(value, bool), key, "true or false", value)
        self.lambda_cycle = _P.number("lambda_cycle", lambda_cycle)
        self.lambda_identity = _P.number("lambda_identity", lambda_identity)
        self.lambda_seg = _P.number("lambda_seg", lambda_seg)
        self.shape_consistency = _P.number("shape_consistency", shape_consistency)
        if not segment and (seg_on_real_source or self.shape_consistency):
            raise ValueError(f"{_WHERE}: seg_on_real_source and shape_consistency need segment: true")
        if self.shape_consistency and not seg_on_real_source:
            raise ValueError(
                f"{_WHERE}.shape_consistency compares the segmenter on target images and on their translation "
                "to the source domain, so the segmenter must also learn source images: set seg_on_real_source: "
                "true (or shape_consistency: 0)"
            )
        self.source_name, self.target_name = _domains(cfg, domains)
        channels = cfg.data.in_channels
        if generator == "unet":
            name, params = "unet_generator", {"num_downs": unet_downs}
        else:
            name, params = "resnet_generator", {"n_blocks": int(generator.split("_")[1])}
        self.g_st = build_network(name, 2, channels, channels, ngf=ngf, **params)
        self.g_ts = build_network(name, 2, channels, channels, ngf=ngf, **params)
        self.d_t = build_discriminator("patchgan", channels, ndf=ndf, n_layers=n_layers_d)
        self.d_s = build_discriminator("patchgan", channels, ndf=ndf, n_layers=n_layers_d)
        self.pool_t, self.pool_s = ImagePool(pool_size), ImagePool(pool_size)
        self.predicts = segment
        self.seg_on_real_source = seg_on_real_source
        self.optim_cfg = cfg.optim
        if segment:
            self.seg = build_segmenter(cfg)
            self.seg_loss = build_loss(cfg.loss, cfg.data.num_classes)

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
