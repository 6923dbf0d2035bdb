"""``SegDataset``: records -> sample dicts, decoded lazily on first access and cached in memory.

An item is ``{Keys.IMAGE: float32 (C,H,W) or (C,H,W,D), Keys.LABEL: int64 (H,W[,D]) with 0 = background,
Keys.CASE_ID: str, Keys.NAME: str}``; unlabeled datasets (``labeled=False``) have no ``Keys.LABEL`` and never
read a mask. Images are normalised by the intensity preset (``weakseg.data.intensity``); ``mr_percentile``
works per sample (per 2D slice when volumes are sliced). Decoding one slice of a volume decodes and caches every
slice of that volume in this dataset. Each DataLoader worker holds its own cache; labels are cached as uint8.
Checks at decode time (``weakseg.data.checks``): channels vs ``data.in_channels``, NaN/inf, mask size, label
values < ``data.num_classes``; binary masks stored as 0/255 are read as 0/1 when ``data.num_classes`` is 2.

    ds = SegDataset(records, cfg.data)
    ds[0][Keys.IMAGE].shape   # torch.Size([1, 256, 256])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from weakseg.config import DataConfig
from weakseg.data.checks import check_image, check_label
from weakseg.data.intensity import Preset, resolve_preset, source_kind_of
from weakseg.data.nifti import (
    channels_first,
    decathlon_modality,
    load_decathlon_json,
    load_nifti,
    load_nnunet_json,
    nifti_shape,
    nifti_spacing,
    with_channel_files,
)
from weakseg.data.phantoms import load_phantom_volume
from weakseg.data.readers import read_image_file, read_mask_file, read_mask_stack, read_tiff_stack
from weakseg.data.records import DataError, Record, few
from weakseg.keys import Keys

__all__ = ["SegDataset", "interp_mode", "modality_hint", "preset_for"]


def modality_hint(cfg: DataConfig) -> str | None:
    """``"ct"``/``"mr"`` from a Decathlon or nnU-Net ``dataset.json`` (its "modality" / "channel_names") when
    one is readable, else None."""
    if cfg.source == "decathlon" and cfg.root and (Path(cfg.root) / "dataset.json").is_file():
        return decathlon_modality(load_decathlon_json(cfg.root))
    if cfg.source == "nnunet" and cfg.root and (Path(cfg.root) / "dataset.json").is_file():
        names = load_nnunet_json(cfg.root)["channel_names"].values()  # nnU-Net's "CT" means HU
        return "ct" if all(str(v).strip().lower() == "ct" for v in names) else "mr"
    return None


def preset_for(cfg: DataConfig, array: np.ndarray, path: str | Path, hint: str | None = None) -> Preset:
    """The intensity preset for raw data ``array`` read from ``path`` (``hint``: a known modality)."""
    kind = hint or source_kind_of(array)
    where = (
        f"the values of {path} (range {array.min():g}..{array.max():g}, {array.dtype})"
        if array.size
        else str(path)
    )
    preset = resolve_preset(cfg, kind, where=where)
    _check_range(preset, array, path)
    return preset


def _check_range(preset: Preset, array: np.ndarray, path: str | Path) -> None:
    """Integer pixels above what the preset divides by would enter training far outside [0, 1] (e.g. a 16-bit
    PNG under ``scale: 255`` becomes 0..257): say which value to set instead."""
    if preset.name not in ("scale", "rgb") or not array.size or not np.issubdtype(array.dtype, np.integer):
        return
    top = preset.params[0] if preset.name == "scale" else 255.0
    hi = float(array.max())
    if hi > top:
        bits = 8 * array.dtype.itemsize
        fix = (
            f"set data.intensity.scale: {2**bits - 1 if hi < 2**bits else hi:g}"
            if preset.name == "scale"
            else f"set data.intensity: {{preset: scale, scale: {2**bits - 1}}}"
        )
        raise DataError(
            f"image {path} holds values up to {hi:g} ({array.dtype}, {bits}-bit), but data.intensity.preset "
            f"{preset.name} divides by {top:g}, so its pixels would reach {hi / top:.3g} instead of <= 1: {fix} "
            "(or convert the images to 8 bits)"
        )


def interp_mode(src: Sequence[int], dst: Sequence[int]) -> str:
    """Resampling of intensities from size ``src`` to ``dst``: area averaging when shrinking, else (bi/tri)linear."""
    if all(d <= s for s, d in zip(src, dst, strict=True)):
        return "area"
    return "bilinear" if len(dst) == 2 else "trilinear"


def _resize(image: Tensor, label: Tensor | None, size: Sequence[int] | None) -> tuple[Tensor, Tensor | None]:
    """``data.resize``: the image by ``interp_mode``, the label by nearest neighbour."""
    if size is None or tuple(image.shape[1:]) == tuple(size):
        return image, label
    image = F.interpolate(image[None], size=tuple(size), mode=interp_mode(image.shape[1:], size))[0]
    if label is not None:
        resized = F.interpolate(label[None, None].float(), size=tuple(size), mode="nearest-exact")
        label = resized[0, 0].to(label.dtype)
    return image, label


def spaced_size(
    shape: Sequence[int], spacing: Sequence[float], target: Sequence[float], axis: int | None
) -> list[int]:
    """The size a volume (``axis`` None) or a slice along ``axis`` of a volume of ``shape`` (X, Y, Z) and voxel
    ``spacing`` takes at voxel size ``target`` (``data.target_spacing``); each side at least 1."""
    keep = [i for i in range(3) if i != axis]
    return [max(1, round(shape[i] * spacing[i] / target[i])) for i in keep]


def _sample(
    image: np.ndarray,
    label: np.ndarray | None,
    record: Record,
    cfg: DataConfig,
    size: Sequence[int] | None = None,
) -> dict:
    """A decoded sample as tensors, resized to ``size`` (default ``data.resize``)."""
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    lab = None if label is None else torch.from_numpy(np.ascontiguousarray(label))
    img, lab = _resize(img, lab, cfg.resize if size is None else size)
    sample = {Keys.IMAGE: img, Keys.CASE_ID: record.case_id, Keys.NAME: record.name}
    if lab is not None:
        sample[Keys.LABEL] = lab
    return sample


def _load_file(record: Record, cfg: DataConfig, labeled: bool, hint: str | None) -> dict:
    image = read_image_file(record.image)
    check_image(image, record.image, cfg)
    label = None
    if labeled:
        label = check_label(read_mask_file(record.label), image.shape[1:], record.label, record.image, cfg)
    return _sample(preset_for(cfg, image, record.image, hint)(image), label, record, cfg)


def _load_volume(group: Sequence[Record], cfg: DataConfig, labeled: bool, hint: str | None) -> list[dict]:
    """Decode one NIfTI volume / TIFF stack / phantom case and cut every record of ``group`` (slices or the whole) from it."""
    first = group[0]
    if first.kind == "phantom":
        raw, raw_label = load_phantom_volume(first.image, cfg)
        volume, label = raw[None], raw_label if labeled else None  # (1,n,H,W), slices along axis 0
        check_image(volume, first.image, cfg)
        preset = resolve_preset(cfg, f"phantom_{first.image.partition('_p')[0]}")
    elif first.kind == "tiff":  # a multi-page TIFF: (Z,C,H,W) pages -> (C,Z,H,W), slices along axis 0
        volume = np.ascontiguousarray(read_tiff_stack(first.image).transpose(1, 0, 2, 3))
        check_image(volume, first.image, cfg)
        label = None
        if labeled:
            label = check_label(read_mask_stack(first.label), volume.shape[1:], first.label, first.image, cfg)
        preset = preset_for(cfg, volume, first.image, hint)
    else:
        volume = channels_first(load_nifti(first.image)[0], first.image)
        volume = with_channel_files(volume, first.image, first.channels)  # nnU-Net: a file per channel
        check_image(volume, first.image, cfg)
        label = None
        if labeled:
            raw_label = load_nifti(first.label)[0]
            if raw_label.ndim == 2 or raw_label.ndim == 4 and raw_label.shape[3] == 1:
                raw_label = raw_label.reshape(
                    *raw_label.shape[:2], -1
                )  # (X,Y) -> (X,Y,1); (X,Y,Z,1) -> (X,Y,Z)
            label = check_label(raw_label, volume.shape[1:], first.label, first.image, cfg)
        preset = preset_for(cfg, volume, first.image, hint)
    spacing = nifti_spacing(first.image) if cfg.target_spacing and first.kind == "nifti" else None
    samples = []
    for record in group:
        if record.slice_axis is None:
            image, lab = volume, label
        else:
            image = np.take(volume, record.slice_index, axis=record.slice_axis + 1)
            lab = None if label is None else np.take(label, record.slice_index, axis=record.slice_axis)
        size = None
        if spacing is not None:  # data.target_spacing: this volume's own voxel size -> the target's
            size = spaced_size(volume.shape[1:], spacing, cfg.target_spacing, record.slice_axis)
        samples.append(_sample(preset(image), lab, record, cfg, size))
    return samples


class SegDataset(Dataset):
    """Samples of some cases. Attributes: ``records``, ``case_ids`` (sorted), ``num_classes``, ``labeled``,
    ``draw_indices`` (see ``build_datasets``)."""

    def __init__(self, records: Sequence[Record], cfg: DataConfig, labeled: bool = True) -> None:
        self.records: list[Record] = list(records)
        self.cfg = cfg
        self.labeled = labeled
        self.num_classes = cfg.num_classes
        self.case_ids: list[str] = sorted({r.case_id for r in self.records})
        if labeled:
            missing = [r.name for r in self.records if r.label is None]
            if missing:
                raise DataError(
                    f"{len(missing)} sample(s) have no mask: {few(missing)}; pass labeled=False for images-only data"
                )
        names = [r.name for r in self.records]
        if len(set(names)) != len(names):
            dupes = {n for n in names if names.count(n) > 1}
            raise DataError(f"sample names must be unique, these repeat: {few(dupes)}; rename the files")
        self._hint = modality_hint(cfg)
        self._groups: dict[tuple[str, str], list[int]] = {}
        for i, r in enumerate(self.records):
            if r.kind != "file":
                self._groups.setdefault((r.kind, r.image), []).append(i)
        self._cache: dict[int, dict] = {}
        # the indices one epoch of a training stream draws (repeats allowed); None: each index once
        self.draw_indices: list[int] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        index = range(len(self.records))[index]  # negative indices; IndexError when out of range
        if index not in self._cache:
            record = self.records[index]
            if record.kind == "file":
                self._cache[index] = _load_file(record, self.cfg, self.labeled, self._hint)
            else:
                group = self._groups[(record.kind, record.image)]
                samples = _load_volume([self.records[i] for i in group], self.cfg, self.labeled, self._hint)
                self._cache.update(zip(group, samples))
        sample = dict(self._cache[index])  # callers may add keys without touching the cache
        if Keys.LABEL in sample:
            sample[Keys.LABEL] = sample[Keys.LABEL].long()
        return sample

    def case_spacing(self, case_id: str) -> tuple[float, ...] | None:
        """Voxel sizes of a NIfTI case from its header (``data.target_spacing`` where resampled), in the axis
        order evaluation stacks it: (slice axis, then the other two) for slices, (X, Y, Z) for volumes; None for
        other data."""
        rec = next((r for r in self.records if r.case_id == case_id), None)
        if rec is None or rec.kind != "nifti":
            return None
        sp = nifti_spacing(rec.image)
        if self.cfg.target_spacing:  # resampled at load: the target in-plane, the slices' own spacing across
            sp = tuple(
                sp[i] if i == rec.slice_axis else float(t) for i, t in enumerate(self.cfg.target_spacing)
            )
        if rec.slice_axis is None:
            return sp
        return (sp[rec.slice_axis], *(v for i, v in enumerate(sp) if i != rec.slice_axis))

    def validate(self, desc: str = "checking files") -> None:
        """Check every sample before a run starts, so that a bad file anywhere fails before the run folder is
        touched: image files are decoded with all their checks (and cached, as training would); volumes have
        their headers read (image and label shapes agree). A progress bar shows for large sets."""
        from tqdm import tqdm

        files = [i for i, r in enumerate(self.records) if r.kind == "file"]
        for i in tqdm(files, desc=desc, disable=len(files) < 300, leave=False, mininterval=1.0):
            self[i]
        if self.labeled:
            for (kind, _), group in self._groups.items():
                rec = self.records[group[0]]
                if kind == "nifti" and rec.label is not None:
                    image, label = nifti_shape(rec.image), nifti_shape(rec.label)
                    if tuple(label[:3]) != tuple(image[:3]):
                        raise DataError(
                            f"label volume {rec.label} is {'x'.join(map(str, label))}, image {Path(rec.image).name} "
                            f"is {'x'.join(map(str, image))}: label volumes must match their image's size"
                        )

    def preload(self) -> SegDataset:
        """Decode (and so validate) every sample now instead of on first access."""
        for i in range(len(self)):
            self[i]
        return self

    def __repr__(self) -> str:
        state = "labeled" if self.labeled else "unlabeled"
        return f"SegDataset({len(self)} samples, {len(self.case_ids)} cases, {state})"
