"""Data: readers (phantoms, 2D image folders, NIfTI, Decathlon), case-wise splits, intensity presets, IO.

Entry points: ``build_datasets(cfg.data)`` -> ``{"labeled", "unlabeled", "val", "test": SegDataset}`` for
training; ``build_domain_datasets(cfg.data, cfg.target)`` -> ``{"source", "target", "val", "test", "source_val"}`` for
domain adaptation (``datasets_for(cfg)`` picks either); ``load_image_for_inference`` / ``write_label`` for ``weakseg predict``. Errors about the data are
``DataError`` (a ``ValueError``) and name the file, what was expected and the fix.
"""

from __future__ import annotations

from weakseg.data.build import SOURCES, SPLITS, build_datasets, read_records
from weakseg.data.dataset import SegDataset
from weakseg.data.domains import DOMAIN_SPLITS, build_domain_datasets, datasets_for
from weakseg.data.intensity import Preset, ct_window, identity, mr_percentile, resolve_preset, rgb, scale
from weakseg.data.io import (
    iter_slices,
    load_image_for_inference,
    predict_volume_slices,
    stack_slices,
    write_label,
)
from weakseg.data.nifti import load_nifti, read_decathlon_records, read_nifti_records
from weakseg.data.phantoms import phantom_case, phantom_records
from weakseg.data.readers import read_folder_records, read_image_file, read_mask_file
from weakseg.data.records import DataError, Record
from weakseg.data.splits import labeled_cases, split_cases

__all__ = [
    "DOMAIN_SPLITS",
    "SOURCES",
    "SPLITS",
    "DataError",
    "Preset",
    "Record",
    "SegDataset",
    "build_datasets",
    "build_domain_datasets",
    "ct_window",
    "datasets_for",
    "identity",
    "iter_slices",
    "labeled_cases",
    "load_image_for_inference",
    "load_nifti",
    "mr_percentile",
    "phantom_case",
    "phantom_records",
    "predict_volume_slices",
    "read_decathlon_records",
    "read_folder_records",
    "read_image_file",
    "read_mask_file",
    "read_nifti_records",
    "read_records",
    "resolve_preset",
    "rgb",
    "scale",
    "split_cases",
    "stack_slices",
    "write_label",
]
