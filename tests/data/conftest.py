"""Tiny on-disk datasets (a few 8x8 PNGs, 6x5x4 NIfTI volumes) written into tmp_path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from .helpers import write_nifti, write_png


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., Path]:
    """``make_folder({"p01": 2, "p02": 1})`` -> root with images/ct_p01_z000.png ... and masks/ of the same names.

    Image pixel (0, 0) holds the slice number, so tests can tell samples apart; masks hold 0, 1, 2.
    """

    def make(cases: dict[str, int], size: tuple[int, int] = (8, 8), masks: bool = True) -> Path:
        root = tmp_path / "ds"
        for case, n in cases.items():
            for z in range(n):
                img = np.full(size, 100, np.uint8)
                img[0, 0] = z
                write_png(root / "images" / f"ct_{case}_z{z:03d}.png", img)
                if masks:
                    mask = np.zeros(size, np.uint8)
                    mask[1:3, 1:3], mask[4:6, 4:6] = 1, 2
                    write_png(root / "masks" / f"ct_{case}_z{z:03d}.png", mask)
        return root

    return make


@pytest.fixture
def nifti_root(tmp_path: Path) -> Path:
    """root/images + root/masks with two int16 HU volumes 6x5x4 (vol_p01, vol_p02) and their labels 0..2."""
    root = tmp_path / "nii"
    for i, name in enumerate(("vol_p01", "vol_p02")):
        image = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4) * 10 - 1000 + i
        label = np.zeros((6, 5, 4), np.uint8)
        label[1:3, 1:3, :] = 1
        label[4, 4, 3] = 2
        affine = np.diag([0.8, 0.8, 3.0, 1.0])
        write_nifti(root / "images" / f"{name}.nii.gz", image, affine)
        write_nifti(root / "masks" / f"{name}.nii.gz", label, affine)
    return root


@pytest.fixture
def decathlon_root(tmp_path: Path) -> Path:
    """A 2-case Decathlon layout with 2-modality (MRI) 4D images 4x3x2x2 and labels 0..1."""
    root = tmp_path / "Task99_Tiny"
    training = []
    for i in range(2):
        image = np.random.default_rng(i).normal(100, 10, (4, 3, 2, 2)).astype(np.float32)
        image[..., 1] += 1000  # second modality clearly different
        label = np.zeros((4, 3, 2), np.uint8)
        label[0, 0, :] = 1
        write_nifti(root / "imagesTr" / f"tiny_{i:03d}.nii.gz", image)
        write_nifti(root / "labelsTr" / f"tiny_{i:03d}.nii.gz", label)
        training.append(
            {"image": f"./imagesTr/tiny_{i:03d}.nii.gz", "label": f"./labelsTr/tiny_{i:03d}.nii.gz"}
        )
    write_nifti(root / "imagesTs" / "tiny_100.nii.gz", np.zeros((4, 3, 2, 2), np.float32))
    info = {
        "name": "Tiny",
        "modality": {"0": "T2", "1": "ADC"},
        "labels": {"0": "background", "1": "thing"},
        "numTraining": 2,
        "training": training,
        "test": ["./imagesTs/tiny_100.nii.gz"],
    }
    (root / "dataset.json").write_text(json.dumps(info))
    return root
