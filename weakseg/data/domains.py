"""Two data domains for domain adaptation: a labeled source (e.g. CT) and an unlabeled target (e.g. MR).

    sets = build_domain_datasets(cfg.data, cfg.target)
    sets["source"]       # source training cases (data.labeled_fraction of them), with labels
    sets["target"]       # every target training case, WITHOUT labels (the method never sees target labels)
    sets["val"]          # target validation cases, with labels: what the trainer evaluates
    sets["test"]         # target test cases, with labels (may be empty)
    sets["source_val"]   # source validation cases, with labels (to see what adaptation costs on the source)

Each domain is split by its own config (fractions, ``split_seed``, explicit ``splits``); the target's
``labeled_fraction`` does not matter: all its training cases are used, unlabeled. ``datasets_for(cfg)`` picks
one domain (``build_datasets(cfg.data)``) or two (``cfg.target`` set).
"""

from __future__ import annotations

import warnings

from weakseg.config import Config, DataConfig
from weakseg.data.build import build_datasets
from weakseg.data.dataset import SegDataset
from weakseg.data.records import DataError

__all__ = ["DOMAIN_SPLITS", "build_domain_datasets", "datasets_for"]

DOMAIN_SPLITS = ("source", "target", "val", "test", "source_val")


def _check_compatible(source: DataConfig, target: DataConfig) -> None:
    if source.in_channels != target.in_channels:
        raise DataError(
            f"the source domain has {source.in_channels} image channel(s) (data.in_channels) but the target "
            f"domain has {target.in_channels} (target.in_channels): translation and a shared segmenter need "
            "the same number of channels; select matching channels/sequences in both domains"
        )
    if source.num_classes != target.num_classes or source.class_names != target.class_names:
        raise DataError(
            f"the domains label different classes: data has {source.class_names}, target has "
            f"{target.class_names}; the target's validation labels must use the source's label set"
        )
    if source.spatial_dims != target.spatial_dims:
        raise DataError(
            f"the source domain is {source.spatial_dims}D but the target domain is {target.spatial_dims}D; "
            "set target.slice_axis like data.slice_axis"
        )


def build_domain_datasets(source_cfg: DataConfig, target_cfg: DataConfig) -> dict[str, SegDataset]:
    """``{"source", "target", "val", "test", "source_val"}``; see the module docstring. The target's training
    split must not be empty; an empty target validation split only warns (nothing can be evaluated)."""
    _check_compatible(source_cfg, target_cfg)
    src = build_datasets(source_cfg)
    try:
        tgt = build_datasets(target_cfg)
    except DataError as e:
        raise DataError(
            f"target domain (the config's target section; data.* means target.* here): {e}"
        ) from e
    train = [*tgt["labeled"].records, *tgt["unlabeled"].records]
    if not train:
        raise DataError(
            f"the target domain has no training samples ({len(tgt['val'])} validation, {len(tgt['test'])} "
            f"test): check target.root and lower target.val_fraction / target.test_fraction "
            f"(now {target_cfg.val_fraction} / {target_cfg.test_fraction}) or target.splits"
        )
    if len(src["labeled"]) == 0:
        raise DataError("the source domain has no labeled training samples; check data.root and data.splits")
    if len(tgt["val"]) == 0:
        warnings.warn(
            "the target domain has no validation cases (target.val_fraction / target.splits): the run cannot "
            "be evaluated on the target domain",
            stacklevel=2,
        )
    return {
        "source": src["labeled"],
        "target": SegDataset(train, target_cfg, labeled=False),
        "val": tgt["val"],
        "test": tgt["test"],
        "source_val": src["val"],
    }


def datasets_for(cfg: Config) -> dict[str, SegDataset]:
    """The run's datasets: ``build_domain_datasets(cfg.data, cfg.target)`` when ``cfg.target`` is set, else
    ``build_datasets(cfg.data)``."""
    if cfg.target is None:
        return build_datasets(cfg.data)
    return build_domain_datasets(cfg.data, cfg.target)
