"""Files in and out of ``weakseg predict``: read one image normalised as in training, write a label atomically.

    image, meta = load_image_for_inference("scan.nii.gz", cfg.data)   # (C,X,Y,Z) float32, meta with the affine
    label = predict_volume_slices(image, meta, lambda x: model(x).argmax(1))  # slice by slice if sliced
    write_label("scan_seg.nii.gz", label, meta)                        # same affine; FileExistsError if present

2D files give ``(C,H,W)`` and ``meta["slice_axis"] is None``. For sliced NIfTI the intensity preset is applied
per slice, exactly as ``SegDataset`` does in training.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from PIL import Image

from weakseg.config import DataConfig
from weakseg.data.checks import check_image, size_str
from weakseg.data.dataset import modality_hint, preset_for
from weakseg.data.dicom import is_dicom_series, load_dicom_series
from weakseg.data.intensity import resolve_preset
from weakseg.data.nifti import (
    NIFTI_SUFFIXES,
    channels_first,
    load_nifti,
    nifti_spacing,
    to_stored_orientation,
    with_channel_files,
)
from weakseg.data.readers import IMAGE_SUFFIXES, is_tiff, read_image_file, read_tiff_stack, tiff_pages
from weakseg.data.records import DataError
from weakseg.fileio import atomic_write_bytes

__all__ = [
    "atomic_write_bytes",
    "network_input_size",
    "iter_slices",
    "load_image_for_inference",
    "predict_volume_slices",
    "stack_slices",
    "write_label",
]


def _is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _hint(cfg: DataConfig, array: np.ndarray) -> str | None:
    """Known modality: Decathlon dataset.json, or a phantom-trained model reading non-8-bit (HU / MR) data."""
    if cfg.source == "phantom" and array.dtype != np.uint8:
        return f"phantom_{cfg.phantom_modality}"
    return modality_hint(cfg)


def _normalised(array: np.ndarray, path: Path, cfg: DataConfig, axis: int | None) -> np.ndarray:
    """``array`` (C, ...) checked and through the intensity preset training used, slice by slice along the
    spatial ``axis`` when given (as ``SegDataset`` applies it to sliced volumes)."""
    check_image(array, path, cfg)
    hint = _hint(cfg, array)
    preset = resolve_preset(cfg, hint) if hint else preset_for(cfg, array, path)
    if axis is None:
        return preset(array)
    return np.stack([preset(s) for s in iter_slices(array, axis)], axis=axis + 1)


def load_image_for_inference(
    path: str | Path, cfg: DataConfig, channels: Sequence[str | Path] = ()
) -> tuple[torch.Tensor, dict]:
    """Read and normalise one image as training did. Returns ``(image, meta)``.

    ``image``: float32 ``(C,H,W)`` for 2D files; ``(C,X,Y,Z)`` for NIfTI (whole volume even when
    ``cfg.slice_axis`` is set: cut it with ``iter_slices``); a folder of one DICOM series reads as a NIfTI would;
    a multi-page TIFF is ``(C,Z,H,W)``, its pages sliced along axis 0; ``channels``: further NIfTI files of
    the same case, one per channel, stacked after ``path``'s. ``meta``: ``kind`` ("png" for any 2D file,
    "nifti", "tiff" for a stack),
    ``path``, ``shape`` (spatial shape a label written back must have), ``slice_axis``, and for NIfTI ``affine``
    and ``header``, ``spacing`` (voxel sizes of the RAS array axes).
    """
    path = Path(path)
    dicom = path.is_dir() and is_dicom_series(path)
    if dicom or _is_nifti(path):
        raw, affine, header = load_dicom_series(path) if dicom else load_nifti(path)
        volume = with_channel_files(channels_first(raw, path), path, channels)  # nnU-Net: a file per channel
        axis = cfg.slice_axis
        if axis is not None and axis not in (0, 1, 2):
            raise DataError(f"data.slice_axis must be 0, 1, 2 or null, got {axis}")
        image = _normalised(volume, path, cfg, axis)
        meta = {"kind": "nifti", "path": str(path), "shape": tuple(volume.shape[1:]), "slice_axis": axis}
        meta["dtype"] = str(raw.dtype)
        meta.update(affine=affine, header=header)
        # voxel sizes along the RAS array axes (a DICOM series' affine already maps that array)
        meta["spacing"] = (
            tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))
            if dicom
            else nifti_spacing(path)
        )
    elif is_tiff(path) and tiff_pages(path) > 1:  # a stack: (Z,C,H,W) pages -> (C,Z,H,W), sliced along 0
        volume = np.ascontiguousarray(read_tiff_stack(path).transpose(1, 0, 2, 3))
        image = _normalised(volume, path, cfg, 0)
        meta = {"kind": "tiff", "path": str(path), "shape": tuple(volume.shape[1:]), "slice_axis": 0}
        meta["dtype"] = str(volume.dtype)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        raw = read_image_file(path)
        image = _normalised(raw, path, cfg, None)
        meta = {"kind": "png", "path": str(path), "shape": tuple(raw.shape[1:]), "slice_axis": None}
        meta["dtype"] = str(raw.dtype)
    else:
        raise DataError(
            f"cannot predict on {path}: expected a {'/'.join(IMAGE_SUFFIXES)} image, a .nii/.nii.gz volume or a "
            "folder holding one DICOM series"
        )
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), meta


def network_input_size(cfg: DataConfig, meta: dict) -> list[int] | None:
    """The size the network saw an input like this (a ``load_image_for_inference`` meta) at in training:
    ``data.resize``, or with ``data.target_spacing`` the input's own size at the target voxel size (its slices'
    in-plane size when sliced); None: as it is."""
    from weakseg.data.dataset import spaced_size

    if cfg.target_spacing and meta.get("spacing") is not None:
        return spaced_size(meta["shape"], meta["spacing"], cfg.target_spacing, meta.get("slice_axis"))
    return cfg.resize


def iter_slices(volume: np.ndarray | torch.Tensor, axis: int) -> Iterator[np.ndarray | torch.Tensor]:
    """``(C,X,Y,Z)`` -> the ``(C,H,W)`` slices along spatial ``axis`` (0, 1 or 2), in order."""
    for i in range(volume.shape[axis + 1]):
        yield (
            volume.select(axis + 1, i)
            if isinstance(volume, torch.Tensor)
            else np.take(volume, i, axis=axis + 1)
        )


def stack_slices(slices: Sequence[np.ndarray | torch.Tensor], axis: int) -> np.ndarray:
    """Inverse of ``iter_slices`` for label maps: ``(H,W)`` slices -> ``(X,Y,Z)`` with the slices along ``axis``."""
    arrays = [s.detach().cpu().numpy() if isinstance(s, torch.Tensor) else np.asarray(s) for s in slices]
    return np.stack(arrays, axis=axis)


def predict_volume_slices(
    image: torch.Tensor,
    meta: dict,
    run: Callable[[torch.Tensor], torch.Tensor],
    cfg: DataConfig | None = None,
    batch_size: int = 16,
) -> torch.Tensor:
    """Label map for one ``load_image_for_inference`` result; ``run`` maps a batch ``(B,C,...)`` to labels ``(B,...)``.

    Sliced volumes (``meta["slice_axis"]``, else ``cfg.slice_axis`` for NIfTI) go through ``run`` in batches of
    ``batch_size`` slices and are stacked back to ``(X,Y,Z)``; 2D images and whole volumes go through at once.
    """
    axis = meta.get("slice_axis", cfg.slice_axis if cfg is not None and meta.get("kind") == "nifti" else None)
    if axis is None:
        return run(image[None])[0]
    slices = torch.stack(list(iter_slices(image, axis)))  # (n,C,H,W)
    labels = torch.cat([run(slices[i : i + batch_size]) for i in range(0, len(slices), batch_size)])
    return torch.from_numpy(stack_slices(list(labels), axis))


def _png_bytes(label: np.ndarray, path: Path) -> bytes:
    if label.ndim != 2:
        raise DataError(f"cannot write {path}: a PNG label must be 2D (H,W), got shape {label.shape}")
    buf = io.BytesIO()
    Image.fromarray(label.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _tiff_bytes(label: np.ndarray, path: Path) -> bytes:
    """A stack of label pages ``(Z,H,W)`` (or one ``(H,W)``) as an uncompressed TIFF, 8 or 16 bits."""
    import tifffile

    if label.ndim not in (2, 3):
        raise DataError(
            f"cannot write {path}: TIFF labels are (H,W) or a stack (Z,H,W), got shape {label.shape}"
        )
    buf = io.BytesIO()
    tifffile.imwrite(
        buf, label.astype(np.uint8 if label.max(initial=0) <= 255 else np.uint16), photometric="minisblack"
    )
    return buf.getvalue()


def _nifti_bytes(label: np.ndarray, meta: dict, path: Path) -> bytes:
    """The label (RAS axes, as read) written in the input's stored orientation, affine and header."""
    dtype = np.uint8 if label.max(initial=0) <= 255 else np.int16
    header = meta.get("header")
    header = header.copy() if isinstance(header, nib.Nifti1Header) else None
    affine = meta.get("affine")
    if affine is not None and label.ndim == 3:
        label = to_stored_orientation(label, np.asarray(affine))
    img = nib.Nifti1Image(label.astype(dtype), np.eye(4) if affine is None else np.asarray(affine), header)
    img.set_data_dtype(dtype)
    img.header.set_slope_inter(
        1.0, 0.0
    )  # the input's scaling (e.g. HU intercept -1024) must not touch labels
    img.header.set_intent("label")
    data = img.to_bytes()
    return gzip.compress(data, mtime=0) if str(path).lower().endswith(".gz") else data


def write_label(
    path: str | Path, label: np.ndarray | torch.Tensor, meta: dict | None = None, overwrite: bool = False
) -> Path:
    """Write a label map as a uint8 PNG (``.png``), a TIFF (``.tif``/``.tiff``: one page per slice of a stack) or
    NIfTI (``.nii``/``.nii.gz``, with ``meta``'s affine), atomically.

    Raises ``FileExistsError`` when ``path`` exists and ``overwrite`` is False; ``DataError`` when the label does
    not fit ``meta["shape"]`` or the format.
    """
    path, meta = Path(path), meta or {}
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    if isinstance(label, torch.Tensor):
        label = label.detach().cpu().numpy()
    label = np.asarray(label)
    if label.size and (label.min() < 0 or not np.array_equal(label, np.round(label))):
        raise DataError(
            f"cannot write {path}: a label map holds class indices 0..num_classes-1, got values "
            f"{label.min()}..{label.max()} ({label.dtype}); pass argmax(logits), not probabilities"
        )
    shape = meta.get("shape")
    if shape is not None and tuple(label.shape) != tuple(shape):
        raise DataError(
            f"cannot write {path}: label is {size_str(label.shape)}, its image is {size_str(shape)}"
        )
    if _is_nifti(path):
        data = _nifti_bytes(label, meta, path)
    elif path.suffix.lower() == ".png":
        if label.size and label.max() > 255:
            raise DataError(
                f"cannot write {path}: PNG labels hold 0..255, got {label.max()}; write .nii.gz instead"
            )
        data = _png_bytes(label, path)
    elif is_tiff(path):
        data = _tiff_bytes(label, path)
    else:
        raise DataError(f"cannot write {path}: labels must be lossless, write .png, .tif or .nii/.nii.gz")
    return atomic_write_bytes(path, data)
