"""nnU-Net v2 raw datasets (``data.source: nnunet``): dataset.json + imagesTr/CASE_0000 + labelsTr/CASE."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import REPO
from weakseg.cli import main
from weakseg.data import DataError, build_datasets
from weakseg.data.phantoms import phantom_case

from .helpers import write_nifti


def _nnunet(root, n=4, channels=None, labels=None):
    info = {
        "channel_names": channels or {"0": "CT"},
        "labels": labels or {"background": 0, "liver": 1, "right_kidney": 2, "left_kidney": 3, "spleen": 4},
        "numTraining": n,
        "file_ending": ".nii.gz",
    }
    root.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps(info))
    affine = np.diag([-1.5, -1.5, 4.0, 1.0])  # LPS, anisotropic
    for i in range(n):
        image, label = phantom_case(i, "ct", n_slices=4, size=32)  # (Z,H,W) HU, labels
        write_nifti(
            root / "imagesTr" / f"abd_{i:03d}_0000.nii.gz", image.transpose(1, 2, 0).astype(np.int16), affine
        )
        write_nifti(
            root / "labelsTr" / f"abd_{i:03d}.nii.gz", label.transpose(1, 2, 0).astype(np.uint8), affine
        )
    return root


def test_an_nnunet_dataset_trains(tmp_path):
    root = _nnunet(tmp_path / "Dataset042_Abd")
    run = tmp_path / "run"
    args = [
        "--set", "data.source=nnunet", "--set", f"data.root={root}", "--set", "data.slice_axis=2",
        "--set", "data.case_regex=abd_(\\d+)", "--set", "data.val_fraction=0.25", "--set", "data.phantom_cases=4",
        "--set", "train.max_steps=2", "--set", f"train.run_dir={run}",
    ]  # fmt: skip
    assert main(["train", str(REPO / "configs" / "tiny.yaml"), *args]) == 0
    assert (run / "best.pt").is_file()


def test_nnunet_records_split_by_case_and_check_the_classes(tmp_path):
    from weakseg.config import load_config

    root = _nnunet(tmp_path / "Dataset042_Abd")
    cfg = load_config(
        None, ["data.source=nnunet", f"data.root={root}", "data.slice_axis=2", "data.val_fraction=0.25"]
    )
    sets = build_datasets(cfg.data)
    assert len(set(sets["val"].case_ids)) == 1 and len(sets["labeled"]) + len(sets["val"]) == 4 * 4
    assert not set(sets["val"].case_ids) & set(sets["labeled"].case_ids)
    bad = load_config(
        None, ["data.source=nnunet", f"data.root={root}", "data.num_classes=3", "data.class_names=[a, b, c]"]
    )
    with pytest.raises(
        DataError, match=r"set data.num_classes: 5 and data.class_names: \['background', 'liver'"
    ):
        build_datasets(bad.data)


def test_nnunet_layout_errors(tmp_path):
    from weakseg.config import load_config

    two = _nnunet(tmp_path / "two", n=1, channels={"0": "T2", "1": "ADC"})
    cfg = load_config(None, ["data.source=nnunet", f"data.root={two}"])
    with pytest.raises(DataError, match="has 2 channels.*one 4D NIfTI"):
        build_datasets(cfg.data)
    (tmp_path / "empty").mkdir()
    cfg = load_config(None, ["data.source=nnunet", f"data.root={tmp_path / 'empty'}"])
    with pytest.raises(DataError, match="dataset.json does not exist; data.source nnunet expects"):
        build_datasets(cfg.data)
