"""Helpers for the data tests: write tiny PNG / NIfTI files, build small DataConfigs."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

from weakseg.config import DataConfig, IntensityConfig


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)
    return path


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4) if affine is None else affine), str(path))
    return path


def folder_cfg(root: Path | None, **kw) -> DataConfig:
    """A DataConfig for a 3-class PNG folder dataset (overridable)."""
    values = dict(
        source="folder",
        root=root and str(root),
        num_classes=3,
        class_names=["bg", "a", "b"],
        val_fraction=0.0,
    )
    values.update(kw)
    return DataConfig(**values)


def nifti_cfg(root: Path, **kw) -> DataConfig:
    values = dict(
        source="nifti",
        root=str(root),
        num_classes=3,
        class_names=["bg", "a", "b"],
        val_fraction=0.0,
        intensity=IntensityConfig(preset="ct_window", window=[0.0, 2000.0]),
    )
    values.update(kw)
    return DataConfig(**values)


def decathlon_cfg(root: Path, **kw) -> DataConfig:
    values = dict(
        source="decathlon",
        root=str(root),
        num_classes=2,
        class_names=["bg", "thing"],
        in_channels=2,
        val_fraction=0.0,
    )
    values.update(kw)
    return DataConfig(**values)
