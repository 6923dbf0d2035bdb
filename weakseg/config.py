"""YAML -> typed dataclasses. Unknown keys and wrongly typed values are errors that name the key.

    cfg = load_config("configs/demo.yaml", overrides=["train.max_steps=10", "optim.lr=3e-4"])

Sections: ``data``, ``model``, ``loss``, ``method``, ``optim``, ``train``, and the optional ``target`` (a second
data domain for domain adaptation, see ``Config.target``). Free-form option dicts
(``model.params``, ``loss.params``, ``method.params``) are passed to the registered constructor, which
validates them itself.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from weakseg.registry import suggest

__all__ = [
    "AUGMENT_STREAMS",
    "TARGET_OWN_KEYS",
    "AugmentConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "IntensityConfig",
    "LossConfig",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "WandbConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "apply_overrides",
    "set_values",
]


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the key and the fix."""


@dataclass
class IntensityConfig:
    """How raw image values become network input. ``preset``: auto | none | scale | ct_window | mr_percentile | rgb."""

    preset: str = "auto"  # auto: phantom ct -> ct_window, phantom mr -> mr_percentile, files -> scale
    window: list[float] = field(default_factory=lambda: [40.0, 400.0])  # CT level, width in HU
    percentiles: list[float] = field(default_factory=lambda: [0.5, 99.5])  # MR clip + rescale to [0, 1]
    scale: float = 255.0  # "scale": value / scale (uint8 PNG -> [0, 1])


@dataclass
class DataConfig:
    """Where samples come from and how cases are split. ``source``: phantom | folder | nifti | decathlon."""

    source: str = "phantom"
    root: str | None = None
    image_dir: str = "images"
    mask_dir: str = "masks"
    case_regex: str = r"p(\d+)"
    num_classes: int = 5
    class_names: list[str] = field(
        default_factory=lambda: ["background", "liver", "right_kidney", "left_kidney", "spleen"]
    )
    in_channels: int = 1
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    labeled_fraction: float = 1.0
    split_seed: int = 0
    slice_axis: int | None = 2  # NIfTI / Decathlon: take 2D slices along this axis; null = whole 3D volumes
    phantom_modality: str = "ct"  # built-in phantoms: ct | mr
    phantom_cases: int = 20
    phantom_slices: int = 8
    phantom_size: int = 128
    phantom_seed: int = 0
    swap_labels: list[list[int]] = field(default_factory=list)  # lateralized pairs a left-right flip swaps
    splits: dict[str, list[str]] | None = None  # explicit case ids per split (labeled/unlabeled/val/test)
    spacing: list[float] | None = (
        None  # physical voxel size (z, y, x) of a case's stacked slices, for HD95/ASSD
    )
    # resample every image/mask to this size at load time: [H, W] for slices, [H, W, D] for volumes
    resize: list[int] | None = None
    # extra image folders without masks (same format as image_dir) whose images join the "unlabeled" split,
    # e.g. a challenge's test images for semi-supervised training; their case ids must not clash with root's
    unlabeled_dirs: list[str] = field(default_factory=list)
    # extra labeled datasets (each <root>/<image_dir> + <root>/<mask_dir>, e.g. a synthetic one) whose samples join
    # the "labeled" split; never used for validation; case ids must not clash with root's
    extra_labeled_roots: list[str] = field(default_factory=list)
    # share of training draws that come from extra_labeled_roots (null: every sample equally often, so a few real
    # cases next to hundreds of synthetic ones are rarely seen); the smaller side is repeated in each epoch
    extra_labeled_share: float | None = None
    # training patches cut from each sample on the CPU (3D volumes: [H, W, D]); a fraction centred on a
    # foreground voxel (nnU-Net's oversampling), the rest anywhere; samples smaller than the patch are padded
    patch_size: list[int] | None = None
    patch_foreground: float = 0.33

    @property
    def spatial_dims(self) -> int:
        """2 for slices (folders, sliced volumes and phantoms), 3 for whole NIfTI/Decathlon volumes and phantom
        volumes (``slice_axis: null``)."""
        return 3 if self.source in ("nifti", "decathlon", "phantom") and self.slice_axis is None else 2


@dataclass
class InferConfig:
    """Sliding-window inference (evaluation, ``weakseg predict``) for inputs larger than ``roi_size``
    (default ``data.patch_size``; none: whole inputs at once), MONAI's ``sliding_window_inference``."""

    roi_size: list[int] | None = None
    overlap: float = 0.5
    sw_batch_size: int = 4
    mode: str = "gaussian"  # gaussian | constant blending of overlapping windows
    stitch_on_cpu_mb: float = 1024.0  # output logits larger than this are stitched in CPU memory


@dataclass
class ModelConfig:
    network: str = "unet"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    name: str = "dice_ce"
    params: dict[str, Any] = field(default_factory=dict)
    deep_supervision_weights: list[float] | None = None  # used when the network returns several outputs


@dataclass
class MethodConfig:
    name: str = "supervised"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "adamw"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.99  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "poly"  # constant | poly | cosine | linear | constant_linear
    decay_start: float = 0.5  # constant_linear: fraction of the run (after warmup) before the linear decay
    warmup_steps: int = 0
    poly_power: float = 0.9
    grad_clip: float | None = 12.0


@dataclass
class WandbConfig:
    enabled: bool = False
    project: str = "weakseg"
    mode: str = "offline"  # offline | online | disabled


@dataclass
class TrainConfig:
    max_steps: int = 1000
    batch_size: int = 8
    eval_every: int = 250
    eval_batch_size: int = 16
    log_every: int = 25
    key_metric: str = "mean_dice"
    key_mode: str = "max"  # max | min
    early_stop_patience: int = 0  # evaluations without improvement before stopping; 0 = never
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | fp16 | off
    seed: int = 0
    num_workers: int = 0
    sync_batchnorm: bool = False  # DDP on CUDA: BatchNorm statistics over all processes (SyncBatchNorm)
    channels_last: bool = False  # 2D: NHWC layout (faster convs: CUDA; depthwise ones on CPU)
    compile: bool = False  # torch.compile every network of the method (in place: checkpoint keys unchanged)
    # batch size per training stream where it differs from batch_size, e.g. {unlabeled: 8} (semi-supervised)
    stream_batch_sizes: dict[str, int] = field(default_factory=dict)
    run_dir: str = "runs/{name}"
    name: str = "run"
    save_pictures: bool = True
    progress: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class AugmentConfig:
    """Training-time augmentation (weakseg/augment/spec.py lists the transforms and their parameters)."""

    backend: str = (
        "torch"  # torch (batched, on the training device) | albumentations | monai (per sample, CPU)
    )
    transforms: list[dict[str, Any]] = field(default_factory=list)
    streams: list[str] = field(default_factory=lambda: ["labeled"])  # which training streams are augmented


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    # Domain adaptation: the unlabeled target domain (its training cases lose their labels; its validation
    # cases are what the run is evaluated on); ``data`` is then the labeled source domain. Keys not given here
    # are taken from ``data`` except the per-domain ones (TARGET_OWN_KEYS), which keep their defaults.
    target: DataConfig | None = None


SCHEDULES = ("constant", "poly", "cosine", "linear", "constant_linear")
# never inherited by ``target`` from ``data`` (extra folders belong to the source domain)
TARGET_OWN_KEYS = ("root", "intensity", "splits", "unlabeled_dirs", "extra_labeled_roots")
AUGMENT_STREAMS = ("labeled", "unlabeled", "source", "target")


def _inherit_target(values: dict) -> dict:
    """``target`` keys not given are copied from ``data`` (except TARGET_OWN_KEYS); returns a new dict."""
    target = values.get("target")
    if not isinstance(target, dict):
        return values
    data = values.get("data") or {}
    if not isinstance(data, dict):
        return values  # _build reports the bad "data" section
    inherited = {k: v for k, v in data.items() if k not in TARGET_OWN_KEYS}
    return {**values, "target": {**inherited, **target}}


# --------------------------------------------------------------------------- typed construction
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to float). Raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} keys, got {value!r}")
        return _build(tp, value, where)
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r} ({type(value).__name__})")
        (item,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r} ({type(value).__name__})")
        return dict(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r} ({type(value).__name__})")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r} ({type(value).__name__})")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r} ({type(value).__name__})")
        return value
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")


def _build(cls: type, values: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(
                f'unknown key "{where}.{key}".{suggest(key, names)} Valid keys of "{where}": {", ".join(names)}'
            )
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def config_from_dict(values: dict | None, source: str = "config") -> Config:
    values = values or {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections, got {type(values).__name__}"
        )
    try:
        cfg = _build(Config, _inherit_target(values), "config")
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    _validate(cfg, source)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def _validate(cfg: Config, source: str) -> None:
    d, t = cfg.data, cfg.train
    checks = [
        (
            d.num_classes >= 2,
            f"data.num_classes must be >= 2 (background + at least one class), got {d.num_classes}",
        ),
        (
            len(d.class_names) == d.num_classes,
            f"data.class_names has {len(d.class_names)} names but data.num_classes is {d.num_classes}",
        ),
        (
            0.0 < d.labeled_fraction <= 1.0,
            f"data.labeled_fraction must be in (0, 1], got {d.labeled_fraction}",
        ),
        (
            0.0 <= d.val_fraction < 1.0
            and 0.0 <= d.test_fraction < 1.0
            and d.val_fraction + d.test_fraction < 1.0,
            f"data.val_fraction + data.test_fraction must be < 1, got {d.val_fraction} + {d.test_fraction}",
        ),
        (t.max_steps >= 1, f"train.max_steps must be >= 1, got {t.max_steps}"),
        (t.batch_size >= 1, f"train.batch_size must be >= 1, got {t.batch_size}"),
        (t.eval_every >= 1, f"train.eval_every must be >= 1, got {t.eval_every}"),
        (t.log_every >= 1, f"train.log_every must be >= 1 (steps between log lines), got {t.log_every}"),
        (t.eval_batch_size >= 1, f"train.eval_batch_size must be >= 1, got {t.eval_batch_size}"),
        (t.num_workers >= 0, f"train.num_workers must be >= 0, got {t.num_workers}"),
        (t.early_stop_patience >= 0, f"train.early_stop_patience must be >= 0, got {t.early_stop_patience}"),
        (
            math.isfinite(cfg.optim.lr) and cfg.optim.lr > 0,
            f"optim.lr must be a number > 0, got {cfg.optim.lr}",
        ),
        (cfg.optim.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {cfg.optim.weight_decay}"),
        (
            len(cfg.optim.betas) == 2 and all(0 <= b < 1 for b in cfg.optim.betas),
            f"optim.betas must be two numbers in [0, 1) such as [0.9, 0.999], got {cfg.optim.betas}",
        ),
        (0 <= cfg.optim.momentum < 1, f"optim.momentum must be in [0, 1), got {cfg.optim.momentum}"),
        (cfg.optim.poly_power > 0, f"optim.poly_power must be > 0, got {cfg.optim.poly_power}"),
        (cfg.optim.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {cfg.optim.warmup_steps}"),
        (
            cfg.optim.grad_clip is None or cfg.optim.grad_clip > 0,
            f"optim.grad_clip must be > 0 or null (no clipping), got {cfg.optim.grad_clip}",
        ),
        (t.key_mode in ("max", "min"), f'train.key_mode must be "max" or "min", got "{t.key_mode}"'),
        (t.amp in ("auto", "bf16", "fp16", "off"), f'train.amp must be auto|bf16|fp16|off, got "{t.amp}"'),
        (
            cfg.optim.schedule in SCHEDULES,
            f'optim.schedule must be one of {"|".join(SCHEDULES)}, got "{cfg.optim.schedule}"',
        ),
        (
            0.0 <= cfg.optim.decay_start < 1.0,
            f"optim.decay_start must be in [0, 1) (a fraction of the run), got {cfg.optim.decay_start}",
        ),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"{source}: {msg}")
    if d.resize is not None and (len(d.resize) != d.spatial_dims or min(d.resize) < 8):
        raise ConfigError(
            f"{source}: data.resize must be {d.spatial_dims} sizes >= 8 ({'[H, W]' if d.spatial_dims == 2 else '[H, W, D]'}) "
            f"for this {d.spatial_dims}D data, got {d.resize}; or null to keep the stored size"
        )
    for pair in d.swap_labels:
        if len(pair) != 2 or not all(0 < v < d.num_classes for v in pair):
            raise ConfigError(
                f"{source}: data.swap_labels entries must be pairs of foreground labels, got {pair}"
            )
    from weakseg.augment.spec import validate_pipeline  # light module: names and checks only

    try:
        validate_pipeline(cfg.augment.transforms, cfg.augment.backend, d.spatial_dims, d.in_channels)
    except ValueError as e:
        raise ConfigError(f"{source}: {e}") from None
    for name, size in t.stream_batch_sizes.items():
        if name not in AUGMENT_STREAMS or not isinstance(size, int) or size < 1:
            raise ConfigError(
                f"{source}: train.stream_batch_sizes.{name} = {size!r}: keys are training streams "
                f"({', '.join(AUGMENT_STREAMS)}) and values batch sizes >= 1"
            )
    for key, size in (("data.patch_size", d.patch_size), ("infer.roi_size", cfg.infer.roi_size)):
        if size is not None and (len(size) != d.spatial_dims or min(size) < 4):
            raise ConfigError(
                f"{source}: {key} must be {d.spatial_dims} sizes >= 4 for this {d.spatial_dims}D data, got {size}"
            )
    i = cfg.infer
    if not (0.0 <= i.overlap < 1.0 and i.sw_batch_size >= 1 and i.mode in ("gaussian", "constant")):
        raise ConfigError(
            f"{source}: infer needs 0 <= overlap < 1, sw_batch_size >= 1 and mode gaussian|constant, got "
            f"overlap {i.overlap}, sw_batch_size {i.sw_batch_size}, mode {i.mode!r}"
        )
    if not 0.0 <= d.patch_foreground <= 1.0:
        raise ConfigError(f"{source}: data.patch_foreground must be in [0, 1], got {d.patch_foreground}")
    share = d.extra_labeled_share
    if share is not None and not (isinstance(share, (int, float)) and 0.0 < share < 1.0):
        raise ConfigError(
            f"{source}: data.extra_labeled_share must be a number in (0, 1) (the share of training draws from "
            f"data.extra_labeled_roots) or null, got {share!r}"
        )
    for key in ("unlabeled_dirs", "extra_labeled_roots"):
        if getattr(d, key) and d.source not in ("folder", "nifti"):
            raise ConfigError(f'{source}: data.{key} needs data.source folder or nifti, not "{d.source}"')
    for name in cfg.augment.streams:
        if name not in AUGMENT_STREAMS:
            raise ConfigError(
                f'{source}: augment.streams lists "{name}"; valid streams: {", ".join(AUGMENT_STREAMS)}'
            )
    if cfg.target is not None:
        _validate_target(cfg.data, cfg.target, source)


def _validate_target(d: DataConfig, t: DataConfig, source: str) -> None:
    """The target domain must share the source's label set, channels and dimensionality, and differ from it."""
    for key in ("num_classes", "class_names", "in_channels"):
        if getattr(t, key) != getattr(d, key):
            raise ConfigError(
                f"{source}: target.{key} is {getattr(t, key)!r} but data.{key} is {getattr(d, key)!r}: both "
                f"domains must share it (the segmenter is trained on one and evaluated on the other); remove "
                f"target.{key} to inherit data.{key}"
            )
    if t.spatial_dims != d.spatial_dims:
        raise ConfigError(
            f"{source}: the target domain is {t.spatial_dims}D but data is {d.spatial_dims}D; set "
            "target.slice_axis like data.slice_axis"
        )
    if t == d:
        hint = (
            "set target.phantom_modality (e.g. mr)"
            if d.source == "phantom"
            else "set target.root to its folder"
        )
        raise ConfigError(f"{source}: target describes the same data as data (source domain): {hint}")


# --------------------------------------------------------------------------- overrides and loading
def set_values(values: dict, updates: dict[str, Any]) -> dict:
    """Set dotted keys (``{"data.root": path}``) in a raw config dict, in place, without parsing the values."""
    for path, value in updates.items():
        keys = path.strip().split(".")
        if not all(keys):
            raise ConfigError(f'override "{path}": empty key')
        node = values
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f'override "{path}": "{k}" is not a section')
        node[keys[-1]] = value
    return values


def apply_overrides(values: dict, overrides: list[str] | None) -> dict:
    """Apply ``section.key=value`` strings (value parsed as YAML) to a raw config dict, in place."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f'override "{item}" must look like section.key=value, e.g. train.max_steps=10')
        path, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f'override "{item}": value "{raw}" is not valid YAML ({e})') from None
        set_values(values, {path: value})
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (``None`` = all defaults: the built-in phantom demo) and apply overrides."""
    values: dict = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; see configs/ for examples")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    values = apply_overrides(values, overrides)
    return config_from_dict(values, source)
