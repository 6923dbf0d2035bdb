"""``build_datasets(cfg.data)``: source -> records -> case-wise split -> labeled / unlabeled / val / test datasets.

    sets = build_datasets(cfg.data)
    sets["labeled"][0]            # {Keys.IMAGE: (C,H,W) float32, Keys.LABEL: (H,W) int64, Keys.CASE_ID, Keys.NAME}
    sets["unlabeled"][0]          # the same without Keys.LABEL (training cases beyond data.labeled_fraction)

Sources (``data.source``): ``phantom`` (built-in, ``weakseg.data.phantoms``); ``folder`` (2D files in
``root/image_dir`` + ``root/mask_dir``, see ``weakseg.data.readers``); ``nifti`` (volumes in the same two
folders); ``decathlon`` (``root/dataset.json``; its "test" entries have no labels and are not used here, read
them with ``read_decathlon_records(..., which="test")``). The case id comes from ``data.case_regex``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from weakseg.config import DataConfig
from weakseg.data.dataset import SegDataset
from weakseg.data.nifti import (
    load_decathlon_json,
    load_nnunet_json,
    nnunet_class_names,
    read_decathlon_records,
    read_nifti_records,
    read_nnunet_records,
)
from weakseg.data.phantoms import phantom_records
from weakseg.data.readers import read_folder_records
from weakseg.data.records import DataError, Record
from weakseg.data.splits import labeled_cases, split_cases
from weakseg.registry import suggest

__all__ = ["SOURCES", "SPLITS", "build_datasets", "read_records"]

SOURCES = ("phantom", "folder", "nifti", "decathlon", "nnunet")
SPLITS = ("labeled", "unlabeled", "val", "test")


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise DataError(
            f'data.root must be set when data.source is "{cfg.source}" (the folder holding the data)'
        )
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"data.root {root} does not exist or is not a folder")
    return root


def _check_decathlon(cfg: DataConfig, root: Path) -> None:
    """dataset.json's labels and modalities must agree with data.num_classes and data.in_channels."""
    info = load_decathlon_json(root)
    labels, modality = info.get("labels") or {}, info.get("modality") or {}
    if labels and len(labels) != cfg.num_classes:
        raise DataError(
            f"{root / 'dataset.json'} lists {len(labels)} labels {dict(labels)}, but data.num_classes is "
            f"{cfg.num_classes}: set data.num_classes: {len(labels)} and data.class_names to match"
        )
    if modality and len(modality) != cfg.in_channels:
        raise DataError(
            f"{root / 'dataset.json'} lists {len(modality)} modalities {dict(modality)}, but data.in_channels is "
            f"{cfg.in_channels}: set data.in_channels: {len(modality)}"
        )


def _check_nnunet(cfg: DataConfig, root: Path) -> None:
    """dataset.json's channels and classes must be data.in_channels / data.num_classes / data.class_names (named
    in the message to copy)."""
    info = load_nnunet_json(root)
    channels = info["channel_names"]
    if len(channels) != cfg.in_channels:
        raise DataError(
            f"{root / 'dataset.json'} lists {len(channels)} channel(s) {dict(channels)}, but data.in_channels is "
            f"{cfg.in_channels}: set data.in_channels: {len(channels)}"
        )
    names = nnunet_class_names(info)
    if len(names) != cfg.num_classes or list(cfg.class_names) != names:
        raise DataError(
            f"{root / 'dataset.json'} lists the classes {names}, but data has num_classes {cfg.num_classes} and "
            f"class_names {list(cfg.class_names)}: set data.num_classes: {len(names)} and data.class_names: "
            f"{names}"
        )


def read_records(cfg: DataConfig) -> list[Record]:
    """All records of ``cfg.source`` (cheap: listings and headers only, no pixel data)."""
    if cfg.source == "phantom":
        return phantom_records(cfg)
    if cfg.source not in SOURCES:
        raise DataError(
            f'unknown data.source "{cfg.source}".{suggest(cfg.source, SOURCES)} Valid sources: {", ".join(SOURCES)}'
        )
    root = _root(cfg)
    if cfg.source == "folder":
        records = read_folder_records(root / cfg.image_dir, root / cfg.mask_dir, cfg.case_regex)
    elif cfg.source == "nifti":
        records = read_nifti_records(
            root / cfg.image_dir, root / cfg.mask_dir, cfg.case_regex, cfg.slice_axis
        )
    elif cfg.source == "nnunet":
        _check_nnunet(cfg, root)
        records = read_nnunet_records(root, cfg.case_regex, cfg.slice_axis)
    else:
        _check_decathlon(cfg, root)
        records = read_decathlon_records(root, cfg.case_regex, cfg.slice_axis, "training")
    _warn_unmatched(records, cfg.case_regex)
    return records


def _warn_unmatched(records: Sequence[Record], case_regex: str) -> None:
    """2D files the case regex does not match become their own case: say so, since slices of one patient
    could then land in different splits."""
    stems = sorted(r.name for r in records if r.kind == "file")  # a volume file is a case by itself anyway
    unmatched = [s for s in stems if re.search(case_regex, s) is None]
    if unmatched:
        warnings.warn(
            f'data.case_regex "{case_regex}" matches no case id in {len(unmatched)} file name(s) (e.g. '
            f'"{unmatched[0]}"); each of them is its own case. Set data.case_regex so that all slices of a '
            "patient share one case id, or splits may separate them.",
            stacklevel=2,
        )


def _of_cases(records: Sequence[Record], cases: Sequence[str]) -> list[Record]:
    keep = set(cases)
    return [r for r in records if r.case_id in keep]


def build_datasets(cfg: DataConfig) -> dict[str, SegDataset]:
    """``{"labeled", "unlabeled", "val", "test"}`` datasets; a split may be empty; no case spans two splits.

    Cases are split by ``data.split_seed`` (``val_fraction`` / ``test_fraction`` of the cases), then
    ``labeled_fraction`` of the remaining training cases keep their labels (at least one case); the other
    training cases form "unlabeled", whose samples carry no label, together with the images of
    ``data.unlabeled_dirs``; ``data.extra_labeled_roots`` (e.g. synthetic data) join "labeled", and with
    ``data.extra_labeled_share`` the labeled set gets ``draw_indices`` (``mixed_draws``), the epoch order its
    training stream draws from. See ``weakseg.data.splits``.
    """
    records = read_records(cfg)
    if cfg.splits is not None:
        cases = _explicit_splits(cfg.splits, sorted({r.case_id for r in records}))
    else:
        split = split_cases([r.case_id for r in records], cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
        labeled, unlabeled = labeled_cases(split["train"], cfg.labeled_fraction, cfg.split_seed)
        cases = {"labeled": labeled, "unlabeled": unlabeled, "val": split["val"], "test": split["test"]}
    out = {name: _of_cases(records, cases[name]) for name in SPLITS}
    known = {r.case_id for r in records}
    n_main = len(out["labeled"])
    out["labeled"] += _extra(cfg, "extra_labeled_roots", known)
    out["unlabeled"] += _extra(cfg, "unlabeled_dirs", known)
    sets = {name: SegDataset(out[name], cfg, labeled=name != "unlabeled") for name in SPLITS}
    if cfg.extra_labeled_share is not None:
        sets["labeled"].draw_indices = mixed_draws(
            n_main, len(out["labeled"]) - n_main, cfg.extra_labeled_share
        )
    return sets


def mixed_draws(n_main: int, n_extra: int, share: float) -> list[int] | None:
    """Dataset indices of one epoch in which about ``share`` of the draws are extra samples (indices from
    ``n_main`` on): the smaller side is repeated a whole number of times. None when either side is empty."""
    if not n_main or not n_extra:
        return None
    main, extra = list(range(n_main)), list(range(n_main, n_main + n_extra))
    repeat_main = max(1, round((1 - share) * n_extra / (share * n_main)))
    repeat_extra = max(1, round(share * n_main / ((1 - share) * n_extra)))
    return main * repeat_main + extra * repeat_extra


def _extra(cfg: DataConfig, key: str, known: set[str]) -> list[Record]:
    """Records of ``data.unlabeled_dirs`` (image folders) or ``data.extra_labeled_roots`` (roots with images and
    masks), checked not to share a case id with the main data or each other (``known`` grows)."""
    extra: list[Record] = []
    for folder in getattr(cfg, key):
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise DataError(f"data.{key}: {path} does not exist or is not a folder")
        images, masks = (
            (path, None) if key == "unlabeled_dirs" else (path / cfg.image_dir, path / cfg.mask_dir)
        )
        if cfg.source == "nifti":
            records = read_nifti_records(images, masks, cfg.case_regex, cfg.slice_axis)
        else:
            records = read_folder_records(images, masks, cfg.case_regex)
        clash = sorted({r.case_id for r in records} & known)
        if clash:
            raise DataError(
                f"data.{key}: {path} has case ids that other data also uses ({', '.join(clash[:5])}); case ids "
                "must be unique across folders: rename the files or set data.case_regex"
            )
        known |= {r.case_id for r in records}
        extra += records
    return extra


def _explicit_splits(splits: dict, known: list[str]) -> dict[str, list[str]]:
    """``data.splits`` checked: known split names, known case ids, no case in two splits."""
    out: dict[str, list[str]] = {name: [] for name in SPLITS}
    seen: dict[str, str] = {}
    for name, ids in splits.items():
        if name not in out:
            raise DataError(
                f'data.splits has an unknown split "{name}".{suggest(name, list(SPLITS))} '
                f"Valid: {', '.join(SPLITS)}"
            )
        if not isinstance(ids, list):
            raise DataError(f"data.splits.{name} must be a list of case ids, got {ids!r}")
        for case in map(str, ids):
            if case not in known:
                raise DataError(
                    f'data.splits.{name}: case "{case}" is not in the data.{suggest(case, known)} '
                    f"Known case ids: {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}"
                )
            if case in seen:
                raise DataError(f'data.splits: case "{case}" is in both "{seen[case]}" and "{name}"')
            seen[case] = name
            out[name].append(case)
    return out
