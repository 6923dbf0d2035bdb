"""DICOM series in: a folder of one series' slice files (pydicom) read as a volume in RAS orientation, like a
NIfTI (``nifti.py``), with the affine built from the DICOM geometry, so ``weakseg predict SERIES_DIR OUT``
writes ``OUT/SERIES_DIR.nii.gz`` aligned with the scan.

Slices are ordered by their position along the slice normal (ImagePositionPatient on the cross product of
the ImageOrientationPatient cosines), not by file name or InstanceNumber; values are RescaleSlope x stored +
RescaleIntercept (HU for CT). The geometry is checked: one orientation, one pixel spacing and one image size
for every slice, evenly spaced positions. Written by hand: pydicom reads files, not series geometry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from weakseg.data.records import DataError, few

__all__ = ["is_dicom_series", "load_dicom_series"]


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


def is_dicom_series(folder: str | Path) -> bool:
    """A folder whose files are DICOM (``.dcm`` or the DICM preamble)."""
    folder = Path(folder)
    files = (
        [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")] if folder.is_dir() else []
    )
    return bool(files) and all(_is_dicom(p) for p in files)


def load_dicom_series(folder: str | Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """``(volume (X,Y,Z) float32 in RAS orientation, the stored 4x4 RAS affine, a NIfTI header)``, the shape
    ``load_nifti`` returns, so labels are written back as NIfTI with ``to_stored_orientation``."""
    try:
        import pydicom
    except ImportError:
        raise DataError(f"{folder} is a DICOM series: pip install pydicom to read it") from None
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    slices = []
    for path in files:
        try:
            ds = pydicom.dcmread(str(path))
            pixels = ds.pixel_array
        except Exception as e:  # pydicom raises InvalidDicomError, AttributeError, ValueError ...
            raise DataError(f"cannot read DICOM slice {path} ({type(e).__name__}: {e})") from e
        try:
            geometry = (
                tuple(float(v) for v in ds.ImageOrientationPatient),
                tuple(float(v) for v in ds.PixelSpacing),
                np.array([float(v) for v in ds.ImagePositionPatient]),
            )
        except AttributeError as e:
            raise DataError(
                f"DICOM slice {path} lacks its geometry ({e}); export the series with it"
            ) from None
        slope, intercept = (
            float(getattr(ds, "RescaleSlope", 1.0)),
            float(getattr(ds, "RescaleIntercept", 0.0)),
        )
        slices.append((path, geometry, pixels.astype(np.float32) * slope + intercept))
    (orient, spacing, _), shape = slices[0][1], slices[0][2].shape
    odd = [str(p) for p, (o, s, _), a in slices if o != orient or s != spacing or a.shape != shape]
    if odd:
        raise DataError(
            f"{folder} holds more than one series (orientation, pixel spacing or size differ in {few(odd)}); "
            "give one series per folder"
        )
    row, col = np.array(orient[:3]), np.array(orient[3:])
    normal = np.cross(row, col)
    slices.sort(key=lambda s: float(s[1][2] @ normal))
    positions = np.array([s[1][2] for s in slices])
    steps = np.diff(positions @ normal)
    if len(steps) and (steps.min() <= 0 or np.ptp(steps) > 1e-3 * max(abs(steps.mean()), 1e-6)):
        raise DataError(f"{folder}: the slices are not evenly spaced along the slice normal (gaps {steps})")
    step = positions[1] - positions[0] if len(slices) > 1 else normal
    # array (X = column, Y = row, Z = slice); DICOM positions are LPS, the affine RAS
    volume = np.stack([s[2].T for s in slices], axis=-1)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row * spacing[1], col * spacing[0], step, positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    stored = nib.Nifti1Image(volume, affine)
    ras = nib.as_closest_canonical(stored)
    return np.asarray(ras.dataobj, dtype=np.float32), affine, stored.header
