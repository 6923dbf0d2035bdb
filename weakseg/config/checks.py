"""Checks of a whole config across keys (ranges, sizes, the target domain), then those that other packages
register as entry points of group ``weakseg.config_checks`` (the augmentation schema, the methods' params):
each takes the Config and raises ``ValueError`` naming the key."""

from __future__ import annotations

import math

from weakseg.config.schema import AUGMENT_STREAMS, SCHEDULES, Config, ConfigError, DataConfig
from weakseg.registry import plugin_entry_points

__all__ = ["validate"]

_REGISTERED: list = []


def registered_checks() -> list:
    """The loaded ``weakseg.config_checks`` functions (read once)."""
    if not _REGISTERED:
        _REGISTERED.extend(ep.load() for ep in plugin_entry_points("weakseg.config_checks"))
    return _REGISTERED


def validate(cfg: Config, source: str) -> None:
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
    if d.target_spacing is not None:
        if d.source not in ("nifti", "decathlon", "nnunet"):
            raise ConfigError(
                f"{source}: data.target_spacing resamples volumes by their header spacing: it needs data.source "
                f"nifti, decathlon or nnunet, got {d.source} (use data.resize for image files)"
            )
        if len(d.target_spacing) != 3 or min(d.target_spacing) <= 0:
            raise ConfigError(
                f"{source}: data.target_spacing must be 3 voxel sizes > 0 in mm (X, Y, Z as read in RAS), got "
                f"{d.target_spacing}"
            )
        if d.resize is not None:
            raise ConfigError(f"{source}: set data.target_spacing or data.resize, not both")
    for pair in d.swap_labels:
        if len(pair) != 2 or not all(0 < v < d.num_classes for v in pair):
            raise ConfigError(
                f"{source}: data.swap_labels entries must be pairs of foreground labels, got {pair}"
            )
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
    for check in registered_checks():
        try:
            check(cfg)
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from None


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
