"""NIfTI volumes (``.nii`` / ``.nii.gz``) and the Medical Segmentation Decathlon ``dataset.json`` layout.

Volumes are read in canonical RAS orientation (``nibabel.as_closest_canonical``: array axes point to the
patient's Right, Anterior, Superior), whatever orientation they were stored in, so an LPS scan and an RAS
scan of the same patient give the same array; ``weakseg predict`` writes labels back in the input's own
orientation, affine and header (``to_stored_orientation``). Images become channel-first
``(C,X,Y,Z)`` (a 4D ``(X,Y,Z,C)`` multi-modal image gives C channels); labels are ``(X,Y,Z)``.
With ``slice_axis`` = a in {0, 1, 2} every slice along spatial axis a is one sample named ``<name>_<x|y|z><iii>``
(e.g. ``liver_007_z012``); with ``slice_axis=None`` each volume is one 3D sample.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from weakseg.data.checks import size_str
from weakseg.data.records import DataError, Record, case_id_from, few

__all__ = [
    "NIFTI_SUFFIXES",
    "channels_first",
    "decathlon_modality",
    "list_nifti_files",
    "load_decathlon_json",
    "load_nnunet_json",
    "nnunet_class_names",
    "load_nifti",
    "nifti_shape",
    "nifti_spacing",
    "nifti_stem",
    "to_stored_orientation",
    "read_decathlon_records",
    "read_nnunet_records",
    "read_nifti_records",
    "volume_records",
]

NIFTI_SUFFIXES = (".nii.gz", ".nii")
NIFTI_LAYOUT = "<root>/<image_dir>/NAME.nii.gz and <root>/<mask_dir>/NAME.nii.gz (one label volume per image)"
DECATHLON_LAYOUT = (
    'dataset.json with "training": [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}, ...]'
)


def nifti_stem(path: str | Path) -> str:
    """``liver_3.nii.gz`` -> ``liver_3``."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def list_nifti_files(folder: str | Path) -> dict[str, Path]:
    """Map volume name -> path for the ``.nii``/``.nii.gz`` files in ``folder`` (hidden files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist; expected the layout {NIFTI_LAYOUT}")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.name.lower().endswith(NIFTI_SUFFIXES):
            continue
        stem = nifti_stem(path)
        if stem in found:
            raise DataError(f"{found[stem].name} and {path.name} in {folder} have the same name; keep one")
        found[stem] = path
    return found


def _load(path: str | Path) -> nib.Nifti1Image:
    try:
        return nib.load(str(path))
    except FileNotFoundError:
        raise DataError(f"NIfTI file {path} does not exist") from None
    except Exception as e:  # nibabel raises ImageFileError, OSError, EOFError, zlib.error... on bad files
        raise DataError(f"cannot read NIfTI {path} ({type(e).__name__}: {e}); re-export or remove it") from e


def _canonical_order(affine: np.ndarray) -> np.ndarray:
    """nibabel orientation transform (axis, flip) from the stored axes to RAS."""
    return nib.orientations.ornt_transform(
        nib.orientations.io_orientation(affine), nib.orientations.axcodes2ornt(("R", "A", "S"))
    )


def nifti_shape(path: str | Path) -> tuple[int, ...]:
    """Array shape in RAS orientation, from the header alone (no voxel data is decoded)."""
    img = _load(path)
    shape = [int(s) for s in img.shape]
    ornt = _canonical_order(img.affine)
    spatial = [0] * 3
    for axis, (new_axis, _) in enumerate(ornt[: min(3, len(shape))]):
        spatial[int(new_axis)] = shape[axis]
    return tuple(spatial[: min(3, len(shape))] + shape[3:])


def nifti_spacing(path: str | Path) -> tuple[float, float, float]:
    """Voxel sizes (mm) along the RAS array axes, from the header."""
    img = _load(path)
    zooms = [float(z) for z in img.header.get_zooms()[:3]] + [1.0] * (3 - min(3, len(img.shape)))
    out = [1.0, 1.0, 1.0]
    for axis, (new_axis, _) in enumerate(_canonical_order(img.affine)[:3]):
        out[int(new_axis)] = zooms[axis]
    return tuple(out)


def to_stored_orientation(label: np.ndarray, stored_affine: np.ndarray) -> np.ndarray:
    """A label map predicted on the RAS array of a volume, back in the axes the volume was stored in."""
    back = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt(("R", "A", "S")), nib.orientations.io_orientation(stored_affine)
    )
    return nib.orientations.apply_orientation(label, back)


def load_nifti(path: str | Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """Decode a volume in RAS orientation: (array in its stored dtype, scaled if the header says so; the 4x4
    affine and the header as stored, which a label written back with ``to_stored_orientation`` takes)."""
    stored = _load(path)
    img = stored
    try:
        img = nib.as_closest_canonical(stored)
        data = np.asanyarray(img.dataobj)
    except Exception as e:  # truncated .nii.gz: EOFError / zlib.error / OSError
        raise DataError(
            f"cannot decode NIfTI {path} ({type(e).__name__}: {e}); the file is truncated: re-export it"
        ) from e
    return np.asarray(data), np.asarray(stored.affine, dtype=np.float64), stored.header


def channels_first(volume: np.ndarray, path: str | Path = "volume") -> np.ndarray:
    """``(X,Y[,Z])`` -> ``(1,X,Y,Z)``; ``(X,Y,Z,C)`` -> ``(C,X,Y,Z)``."""
    if volume.ndim == 2:
        return volume[None, :, :, None]
    if volume.ndim == 3:
        return volume[None]
    if volume.ndim == 4:
        return np.moveaxis(volume, 3, 0)
    raise DataError(f"{path} has shape {volume.shape}; expected a 3D volume or a 4D (X,Y,Z,channels) image")


def with_channel_files(volume: np.ndarray, first: str | Path, channels: Sequence[str | Path]) -> np.ndarray:
    """``volume`` (C,X,Y,Z), the channels-first image of ``first``, with the NIfTI files ``channels`` (one per
    further channel, nnU-Net's CASE_0001, ...) stacked after it in order; each must have its size."""
    parts = [volume]
    for extra in channels:
        more = channels_first(load_nifti(extra)[0], extra)
        if more.shape[1:] != volume.shape[1:]:
            raise DataError(
                f"channel file {extra} is {size_str(more.shape[1:])}, its first channel {first} is "
                f"{size_str(volume.shape[1:])}: every channel of a case must have the same size"
            )
        parts.append(more)
    return np.concatenate(parts) if len(parts) > 1 else volume


def _spatial(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:2], 1) if len(shape) == 2 else tuple(shape[:3])


def volume_records(
    name: str,
    case_id: str,
    image: str,
    label: str | None,
    slice_axis: int | None,
    channels: tuple[str, ...] = (),
) -> list[Record]:
    """One record per slice along ``slice_axis`` (header-only read), or one 3D record when it is None;
    ``channels``: further channel files of the image (each the image's size)."""
    for extra in channels:
        if _spatial(nifti_shape(extra)) != _spatial(nifti_shape(image)):
            raise DataError(
                f"channel file {extra} is {'x'.join(map(str, _spatial(nifti_shape(extra))))}, its first channel "
                f"{image} is {'x'.join(map(str, _spatial(nifti_shape(image))))}: every channel of a case must "
                "have the same size"
            )
    if slice_axis is None:
        return [Record(name, case_id, image, label, kind="nifti", channels=channels)]
    if slice_axis not in (0, 1, 2):
        raise DataError(f"data.slice_axis must be 0, 1, 2 or null (whole 3D volumes), got {slice_axis}")
    spatial = _spatial(nifti_shape(image))
    if label is not None:
        label_spatial = _spatial(nifti_shape(label))
        if label_spatial != spatial:
            raise DataError(
                f"label volume {label} is {'x'.join(map(str, label_spatial))}, image {image} is "
                f"{'x'.join(map(str, spatial))}: label volumes must match their image's size"
            )
    letter = "xyz"[slice_axis]
    return [
        Record(f"{name}_{letter}{i:03d}", case_id, image, label, "nifti", slice_axis, i, channels)
        for i in range(spatial[slice_axis])
    ]


def read_nifti_records(
    image_dir: str | Path, mask_dir: str | Path | None, case_regex: str, slice_axis: int | None
) -> list[Record]:
    """Pair image and label volumes by name (``mask_dir=None``: images only)."""
    images = list_nifti_files(image_dir)
    if not images:
        raise DataError(
            f"data folder {image_dir} holds no .nii/.nii.gz volumes; expected the layout {NIFTI_LAYOUT}"
        )
    masks = list_nifti_files(mask_dir) if mask_dir is not None else {}
    if mask_dir is not None and set(images) != set(masks):
        no_mask, no_image = set(images) - set(masks), set(masks) - set(images)
        raise DataError(
            f"images and label volumes do not pair up: without label in {mask_dir}: {few(no_mask) or '-'}; "
            f"without image in {image_dir}: {few(no_image) or '-'}. Every volume needs a label with the same name"
        )
    records: list[Record] = []
    for stem, path in images.items():
        label = str(masks[stem]) if mask_dir is not None else None
        records += volume_records(stem, case_id_from(stem, case_regex), str(path), label, slice_axis)
    return records


def _dataset_json(root: str | Path, source: str, layout: str) -> tuple[Path, dict]:
    """``<root>/dataset.json`` parsed; errors say what ``data.source`` expects."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        raise DataError(f"{path} does not exist; data.source {source} expects {layout}")
    try:
        return path, json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({e}); expected {layout}") from None


def load_decathlon_json(root: str | Path) -> dict:
    """Parse and check ``<root>/dataset.json`` (the Medical Segmentation Decathlon layout)."""
    path, info = _dataset_json(root, "decathlon", DECATHLON_LAYOUT)
    if not isinstance(info, dict) or not isinstance(info.get("training"), list):
        raise DataError(f'{path} has no "training" list; expected {DECATHLON_LAYOUT}')
    return info


def decathlon_modality(info: dict) -> str:
    """``"ct"`` when every channel in ``info["modality"]`` is CT, else ``"mr"`` (MRI, T2, ADC, FLAIR, ...)."""
    values = [str(v).strip().lower() for v in (info.get("modality") or {}).values()]
    return "ct" if values and all(v == "ct" for v in values) else "mr"


def read_decathlon_records(
    root: str | Path, case_regex: str, slice_axis: int | None, which: str = "training"
) -> list[Record]:
    """Records of the ``training`` entries (image + label) or the ``test`` entries (images only)."""
    root = Path(root)
    info = load_decathlon_json(root)
    if which not in ("training", "test"):
        raise DataError(f'which must be "training" or "test", got "{which}"')
    pairs: list[tuple[str, str | None]] = []
    for i, entry in enumerate(info.get(which) or []):
        if which == "test":
            image = entry.get("image") if isinstance(entry, dict) else entry
            pairs.append((image, None))
        elif not isinstance(entry, dict) or not entry.get("image") or not entry.get("label"):
            raise DataError(
                f'{root / "dataset.json"}: training[{i}] must have "image" and "label" paths, got {entry}'
            )
        else:
            pairs.append((entry["image"], entry["label"]))
    resolved = [(root / img, root / lab if lab else None) for img, lab in pairs]
    missing = [str(p) for img, lab in resolved for p in (img, lab) if p is not None and not p.is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} file(s) listed in {root / 'dataset.json'} do not exist: {few(missing)}"
        )
    if not resolved:
        raise DataError(f'{root / "dataset.json"} lists no "{which}" volumes; expected {DECATHLON_LAYOUT}')
    records: list[Record] = []
    for img, lab in resolved:
        stem = nifti_stem(img)
        records += volume_records(
            stem, case_id_from(stem, case_regex), str(img), lab and str(lab), slice_axis
        )
    return records


# --------------------------------------------------------------------------- nnU-Net v2 raw layout
NNUNET_LAYOUT = (
    'nnU-Net v2 raw: dataset.json with "channel_names" {"0": "CT"}, "labels" {"background": 0, ...} and '
    '"file_ending" ".nii.gz"; imagesTr/CASE_0000.nii.gz, labelsTr/CASE.nii.gz'
)


def load_nnunet_json(root: str | Path) -> dict:
    """Parse and check ``<root>/dataset.json`` of an nnU-Net v2 raw dataset (``DatasetXXX_Name``)."""
    path, info = _dataset_json(root, "nnunet", NNUNET_LAYOUT)
    for key in ("channel_names", "labels"):
        if not isinstance(info, dict) or not isinstance(info.get(key), dict) or not info[key]:
            raise DataError(f'{path} has no "{key}" mapping; expected {NNUNET_LAYOUT}')
    ending = info.get("file_ending", ".nii.gz")
    if ending not in NIFTI_SUFFIXES:
        raise DataError(
            f'{path}: file_ending "{ending}" is not NIfTI; weakseg reads nnU-Net datasets of .nii/.nii.gz files'
        )
    return info


def nnunet_class_names(info: dict) -> list[str]:
    """Class names in label order from nnU-Net's ``labels`` ({"background": 0, "liver": 1, ...})."""
    labels = info["labels"]
    values = sorted(labels.values(), key=lambda v: v if isinstance(v, int) else -1)
    if values != list(range(len(values))):
        raise DataError(
            f"dataset.json labels {labels} must number the classes 0..{len(values) - 1}, one integer each "
            "(region-based labels with lists of values are not supported)"
        )
    return [name for name, _ in sorted(labels.items(), key=lambda kv: kv[1])]


def nnunet_channel_files(folder: Path, case: str, n: int, ending: str) -> list[Path]:
    """``CASE_0000`` ... ``CASE_{n-1}`` of ``folder`` (nnU-Net v2's one file per channel)."""
    return [folder / f"{case}_{c:04d}{ending}" for c in range(n)]


def read_nnunet_records(root: str | Path, case_regex: str, slice_axis: int | None) -> list[Record]:
    """Records of ``imagesTr/CASE_0000`` (+ ``CASE_0001``... for more channels, in ``channel_names`` order) +
    ``labelsTr/CASE``; the case id is CASE unless ``case_regex`` finds another."""
    root = Path(root)
    info = load_nnunet_json(root)
    ending = info.get("file_ending", ".nii.gz")
    n_channels = len(info["channel_names"])
    labels_dir, images_dir = root / "labelsTr", root / "imagesTr"
    cases = (
        sorted(p.name[: -len(ending)] for p in labels_dir.glob(f"*{ending}")) if labels_dir.is_dir() else []
    )
    if not cases:
        raise DataError(f"no {ending} label files in {labels_dir}; expected {NNUNET_LAYOUT}")
    missing = [
        str(f)
        for c in cases
        for f in nnunet_channel_files(images_dir, c, n_channels, ending)
        if not f.is_file()
    ]
    if missing:
        raise DataError(
            f"{len(missing)} image file(s) of labelsTr cases do not exist: {few(missing)} (dataset.json names "
            f"{n_channels} channel(s): CASE_0000 ... CASE_{n_channels - 1:04d})"
        )
    records: list[Record] = []
    for case in cases:
        first, *rest = (str(f) for f in nnunet_channel_files(images_dir, case, n_channels, ending))
        cid = case_id_from(case, case_regex) if case_regex else case
        records += volume_records(
            case, cid, first, str(labels_dir / f"{case}{ending}"), slice_axis, tuple(rest)
        )
    return records
