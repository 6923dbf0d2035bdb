"""The contract between a training method and the one Trainer.

A method owns its networks, optimizers and the order of its updates; the trainer owns everything else
(device, AMP, loaders, LR schedules, evaluation, checkpoints, logging). A new method only subclasses
``Method`` and registers itself in ``METHODS``:

    class Supervised(Method):
        streams = ("labeled",)                       # loaders the trainer must provide
        def configure_optimizers(self):  return {"net": make_optimizer(self.net.parameters(), self.optim_cfg)}
        def train_step(self, batch, step, ctx):      # batch["labeled"][Keys.IMAGE]: B,C,H,W on ctx.device
            with ctx.autocast():
                loss = self.loss(self.net(batch["labeled"][Keys.IMAGE]), batch["labeled"][Keys.LABEL])
            ctx.backward(loss, "net", terms={"seg": loss})
            return {"loss": loss.item()}
        def predict(self, image):  return self.net(image)   # logits B,num_classes,H,W
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from weakseg.config import Config, DataConfig, LossConfig, OptimConfig
from weakseg.losses import build_loss
from weakseg.nets import build_network, load_initial_weights, pretrained_weights_skipped

__all__ = ["BuildContext", "Method", "NonFiniteLossError", "StepContext", "make_optimizer"]


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or inf; the message names the step and the loss term."""

    def __init__(self, step: int, term: str, value: float) -> None:
        super().__init__(
            f"loss term '{term}' is {value} at step {step}; stopping. The last good checkpoint is kept. "
            "Lower optim.lr, check the input intensities (data.intensity) or enable optim.grad_clip."
        )
        self.step, self.term, self.value = step, term, value


def make_optimizer(params: Iterable, cfg: OptimConfig, lr: float | None = None) -> Optimizer:
    """Build the optimizer named in ``cfg`` (adam | adamw | sgd) over ``params``."""
    lr = cfg.lr if lr is None else lr
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
        )
    raise ValueError(f'optim.name must be adam, adamw or sgd, got "{cfg.name}"')


@dataclass
class BuildContext:
    """What a method is built from (instead of the whole Config): the data's classes, channels and
    dimensions, a segmenter and a loss factory, the optimizer section, the run's seed and length, and the data
    sections of the domains (GAN and adaptation methods read their sizes and names)."""

    method: str
    num_classes: int
    in_channels: int
    spatial_dims: int
    class_names: list[str]
    network: str
    network_params: dict
    loss: LossConfig
    optim: OptimConfig
    seed: int
    max_steps: int
    run_name: str
    data: DataConfig
    target: DataConfig | None = None
    init_from: str | None = None  # model.init_from: trained weights every segmenter() starts from
    init_strict: bool = True
    # records a resolved parameter in the run's config (e.g. the config of a checkpoint named by
    # method.params.initial), so the run's checkpoints rebuild without that file
    record: Callable[[str, Any], None] = lambda key, value: None

    @classmethod
    def from_config(cls, cfg: Config) -> BuildContext:
        def record(key: str, value: Any) -> None:
            cfg.method.params = {**cfg.method.params, key: value}

        d = cfg.data
        return cls(
            method=cfg.method.name,
            num_classes=d.num_classes,
            in_channels=d.in_channels,
            spatial_dims=d.spatial_dims,
            class_names=list(d.class_names),
            network=cfg.model.network,
            network_params=dict(cfg.model.params),
            loss=cfg.loss,
            optim=cfg.optim,
            seed=cfg.train.seed,
            max_steps=cfg.train.max_steps,
            run_name=cfg.train.name,
            data=d,
            target=cfg.target,
            init_from=cfg.model.init_from,
            init_strict=cfg.model.init_strict,
            record=record,
        )

    def segmenter(self) -> nn.Module:
        """A new segmentation network of ``model.network`` / ``model.params`` for this data, with the weights of
        ``model.init_from`` when set (not when the run is rebuilt from its own checkpoint)."""
        net = build_network(
            self.network,
            spatial_dims=self.spatial_dims,
            in_channels=self.in_channels,
            out_channels=self.num_classes,
            **self.network_params,
        )
        if self.init_from and not pretrained_weights_skipped():
            load_initial_weights(net, self.init_from, self.init_strict)
        return net

    def make_loss(self) -> nn.Module:
        """The config's segmentation loss (``loss.name`` / ``loss.params``) for this number of classes."""
        return build_loss(self.loss, self.num_classes)


@dataclass
class StepContext:
    """What a method needs from the trainer inside ``train_step``: AMP, scaled backward, optimizer steps."""

    device: torch.device
    optimizers: dict[str, Optimizer]
    step: int = 0
    max_steps: int = 1
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    grad_clip: float | None = None
    dist: Any = None  # weakseg.engine.distributed.DistEnv under torchrun: NaN checks agree across ranks
    _params: dict[str, list[torch.nn.Parameter]] = field(default_factory=dict)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def check_finite(self, terms: dict[str, torch.Tensor]) -> None:
        bad = None
        for name, value in terms.items():
            v = float(value.detach())
            if not math.isfinite(v):
                bad = (name, v)
                break
        if self.dist is not None and self.dist.any(bad is not None, self.device) and bad is None:
            bad = ("(a loss term on another process)", float("nan"))  # every rank stops at the same step
        if bad is not None:
            raise NonFiniteLossError(self.step, *bad)

    def backward(
        self,
        loss: torch.Tensor,
        opt_name: str | Sequence[str],
        terms: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Zero grads, (scaled) backward, clip, step optimizer ``opt_name``. ``terms`` are checked for NaN/inf.

        Several names (e.g. ``("G", "seg")``): one backward of ``loss``, then each optimizer is clipped and
        stepped on its own, as if the loss had been split between them (a segmenter trained jointly with a
        generator keeps its own optimizer settings)."""
        names = [opt_name] if isinstance(opt_name, str) else list(opt_name)
        unknown = [n for n in names if n not in self.optimizers]
        if unknown or not names:
            raise KeyError(
                f"ctx.backward: no optimizer named {unknown or names}; configure_optimizers returned "
                f"{', '.join(self.optimizers) or 'none'}"
            )
        self.check_finite(terms if terms else {names[0]: loss})
        opts = [self.optimizers[n] for n in names]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        for opt in opts:
            if self.scaler is not None:
                self.scaler.unscale_(opt)
            if self.grad_clip:
                params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            if self.scaler is not None:
                self.scaler.step(opt)  # the trainer calls scaler.update() once per iteration
            else:
                opt.step()

    @staticmethod
    @contextlib.contextmanager
    def requires_grad(nets: nn.Module | Iterable[nn.Module], flag: bool) -> Iterator[None]:
        """Temporarily set ``requires_grad`` on every parameter of ``nets`` (e.g. freeze D while stepping G)."""
        nets = [nets] if isinstance(nets, nn.Module) else list(nets)
        params = [p for n in nets for p in n.parameters()]
        before = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(flag)
        try:
            yield
        finally:
            for p, b in zip(params, before):
                p.requires_grad_(b)


class Method(nn.Module):
    """Base class of every training method. Subclasses set ``streams`` and implement the three hooks."""

    streams: tuple[str, ...] = ("labeled",)
    # False for a method without a segmenter (e.g. a pure CycleGAN): its ``predict`` raises, so it cannot be
    # evaluated and evaluation must be skipped.
    predicts: bool = True

    def configure_optimizers(self) -> dict[str, Optimizer]:
        raise NotImplementedError

    def train_step(self, batch: dict[str, dict], step: int, ctx: StepContext) -> dict[str, float]:
        raise NotImplementedError

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes, *spatial) for a batch of images; used by evaluation and ``predict``."""
        raise NotImplementedError

    @property
    def size_divisor(self) -> int:
        """Input sizes must be multiples of this for ``predict``; the trainer pads to it."""
        return 1

    # DDP: True when some trained parameters get no gradient in some steps (e.g. an encoder frozen at first)
    ddp_find_unused: bool = False
    # metrics a method without predictions measures of itself at every evaluation (``self_evaluate``); naming
    # one as ``train.key_metric`` selects best.pt by it (e.g. the label-map GAN's label_stat_distance, min)
    self_metrics: tuple[str, ...] = ()

    def self_evaluate(self, datasets: dict) -> dict[str, float]:
        """The ``self_metrics`` now (called on rank 0 at every evaluation when one is the key metric)."""
        return {}

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> list[str]:
        """Multi-process training: replace every direct child network with trainable parameters by
        ``wrap(child)`` (its own ``DistributedDataParallel``); children without them (an EMA teacher, losses)
        stay as they are. Code that reads a network's attributes (``size_divisor``, ``encoder``) goes through
        ``weakseg.nets.ddp.unwrap``. Returns the wrapped names."""
        names = []
        for name, child in list(self.named_children()):
            if any(p.requires_grad for p in child.parameters()):
                setattr(self, name, wrap(child))
                names.append(name)
        return names

    def plain_state_dict(self) -> dict:
        """``state_dict`` with DDP wrappers left out of the keys, so checkpoints load with or without DDP."""
        wrapped = {n for n, m in self.named_children() if isinstance(m, nn.parallel.DistributedDataParallel)}
        return {_strip_module(k, wrapped): v for k, v in self.state_dict().items()}

    def save_pictures(self, datasets: dict, run_dir: Path, step: int) -> list[Path]:
        """Pictures of this method's own state, saved by the trainer at each evaluation when
        ``train.save_pictures`` (e.g. CycleGAN's translation grid); returns the files written. The trainer saves
        prediction overlays and curves for every method itself, so the base method adds nothing."""
        return []


def _strip_module(key: str, wrapped: set[str]) -> str:
    head, _, rest = key.partition(".")
    return f"{head}.{rest[len('module.') :]}" if head in wrapped and rest.startswith("module.") else key
