"""What a sample is before it is decoded: a ``Record`` names its files, case and (for volumes) slice.

Readers return records cheaply (file listing, NIfTI headers); ``SegDataset`` decodes them lazily. A record of
``kind`` "file" is one 2D image file (+ mask file); "nifti" is one volume, or one slice of it when
``slice_axis`` is set; "tiff" is one page of a multi-page TIFF stack (slices along axis 0); "phantom" is one slice of a built-in phantom case (``image`` holds the case id).

    Record(name="ct_p03_z041", case_id="03", image="data/images/ct_p03_z041.png", label="data/masks/ct_p03_z041.png")
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DataError", "Record", "case_id_from", "few"]


class DataError(ValueError):
    """Input data is missing or malformed; the message names the file and says how to fix it."""


@dataclass(frozen=True)
class Record:
    """One sample, undecoded. ``label`` is None for images without a mask."""

    name: str  # unique sample name: file stem, "stem_z012" for a slice, "ct_p000_z003" for a phantom slice
    case_id: str  # patient / volume id; splits never separate records of one case
    image: str  # image file or volume path (phantoms: the case id)
    label: str | None = None  # mask file or label volume path
    kind: str = "file"  # file | nifti | tiff | phantom
    slice_axis: int | None = None  # volumes: the axis the sample is a slice of; None = the whole volume
    slice_index: int | None = None
    channels: tuple[
        str, ...
    ] = ()  # further channel files of a volume (nnU-Net's CASE_0001, ...), after image


def case_id_from(stem: str, case_regex: str) -> str:
    """Case id = first group of ``re.search(case_regex, stem)`` (whole match if no group); else the stem."""
    try:
        match = re.search(case_regex, stem)
    except re.error as e:
        raise DataError(
            f'data.case_regex "{case_regex}" is not a valid regular expression ({e}); '
            r'write e.g. "p(\d+)" to take the patient number from "ct_p03_z041"'
        ) from None
    if match is None:
        return stem
    return match.group(1) if match.re.groups else match.group(0)


def few(names: Iterable[str], n: int = 5) -> str:
    """``"a, b, c (and 7 more)"``: a short list of offending names for error messages."""
    names = sorted(names)
    shown = ", ".join(names[:n])
    return shown + (f" (and {len(names) - n} more)" if len(names) > n else "")
