"""nnU-Net v2 raw datasets (``data.source: nnunet``): dataset.json + imagesTr/CASE_0000 + labelsTr/CASE."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

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
    with pytest.raises(DataError, match=r"lists 2 channel\(s\).*set data.in_channels: 2"):
        build_datasets(cfg.data)
    cfg = load_config(None, ["data.source=nnunet", f"data.root={two}", "data.in_channels=2"])
    with pytest.raises(DataError, match=r"abd_000_0001.nii.gz \(dataset.json names 2 channel"):
        build_datasets(cfg.data)  # the fixture wrote only CASE_0000
    (tmp_path / "empty").mkdir()
    cfg = load_config(None, ["data.source=nnunet", f"data.root={tmp_path / 'empty'}"])
    with pytest.raises(DataError, match="dataset.json does not exist; data.source nnunet expects"):
        build_datasets(cfg.data)


def test_hd95_is_in_mm_from_the_nifti_header(tmp_path):
    """Slices of an LPS, anisotropic volume: evaluation stacks them with the header's spacing (1.5 mm in
    plane, 4 mm between slices), so a prediction shifted by one slice is 4 mm off; data.spacing overrides."""
    from weakseg.config import load_config
    from weakseg.engine.evaluate import evaluate_dataset

    root = _nnunet(tmp_path / "Dataset042_Abd", n=4)
    cfg = load_config(
        None, ["data.source=nnunet", f"data.root={root}", "data.slice_axis=2", "data.val_fraction=0.25"]
    )
    val = build_datasets(cfg.data)["val"]
    assert val.case_spacing(val.case_ids[0]) == (4.0, 1.5, 1.5)

    class Shifted(torch.nn.Module):  # predicts the reference of the next slice
        size_divisor = 1

        def __init__(self, labels):
            super().__init__()
            self.labels, self.calls = labels, 0

        def predict(self, image):
            out = []
            for _ in range(image.shape[0]):
                lab = self.labels[min(self.calls + 1, len(self.labels) - 1)]
                self.calls += 1
                out.append(torch.nn.functional.one_hot(lab, 5).permute(2, 0, 1).float() * 10)
            return torch.stack(out)

    labels = [val[i]["label"] for i in range(len(val))]
    acc, _ = evaluate_dataset(
        Shifted(labels), val, 5, cfg.data.class_names, torch.device("cpu"), batch_size=1
    )
    hd_mm = acc.summary()["mean_hd95"]
    acc_vox, _ = evaluate_dataset(
        Shifted(labels),
        val,
        5,
        cfg.data.class_names,
        torch.device("cpu"),
        spacing=[1.0, 1.0, 1.0],
        batch_size=1,
    )
    assert (
        hd_mm == pytest.approx(4.0 * acc_vox.summary()["mean_hd95"], rel=0.3)
        and hd_mm > acc_vox.summary()["mean_hd95"]
    )


def test_predict_on_an_lps_nifti_keeps_its_header(tmp_path):
    import nibabel as nib

    root = _nnunet(tmp_path / "Dataset042_Abd", n=4)
    run = tmp_path / "run"
    args = ["--set", "data.source=nnunet", "--set", f"data.root={root}", "--set", "data.val_fraction=0.25"]
    args += ["--set", "data.phantom_cases=4", "--set", "train.max_steps=2", "--set", f"train.run_dir={run}"]
    assert main(["train", str(REPO / "configs" / "tiny.yaml"), *args]) == 0
    src = sorted((root / "imagesTr").glob("*.nii.gz"))[0]
    assert main(["predict", str(run / "best.pt"), str(src), str(tmp_path / "out")]) == 0
    out, inp = nib.load(str(tmp_path / "out" / src.name)), nib.load(str(src))
    assert nib.aff2axcodes(out.affine) == ("L", "P", "S") and out.shape == inp.shape
    np.testing.assert_allclose(out.affine, inp.affine)
    np.testing.assert_allclose(out.header.get_zooms(), (1.5, 1.5, 4.0))


def test_target_spacing_resamples_each_volume_and_predict_maps_back(tmp_path):
    """1.5 x 1.5 x 4 mm volumes of 32 x 32 x 4 at a 3 mm target: slices of 16 x 16, volumes of 16 x 16 x 5;
    evaluation measures at the target spacing; predict returns labels on the input's own grid."""
    import nibabel as nib

    from weakseg.config import ConfigError, load_config

    root = _nnunet(tmp_path / "Dataset042_Abd", n=4)
    base = [
        "data.source=nnunet",
        f"data.root={root}",
        "data.val_fraction=0.25",
        "data.target_spacing=[3, 3, 3]",
    ]
    sliced = build_datasets(load_config(None, [*base, "data.slice_axis=2"]).data)["val"]
    assert sliced[0]["image"].shape == (1, 16, 16) and sliced[0]["label"].shape == (16, 16)
    assert sliced.case_spacing(sliced.case_ids[0]) == (4.0, 3.0, 3.0)  # slices keep their own spacing across
    whole = build_datasets(load_config(None, [*base, "data.slice_axis=null"]).data)["val"]
    assert whole[0]["image"].shape == (1, 16, 16, 5) and whole.case_spacing(whole.case_ids[0]) == (
        3.0,
        3.0,
        3.0,
    )
    assert set(np.unique(whole[0]["label"].numpy())) <= set(range(5))  # nearest neighbour: still classes
    run = tmp_path / "run"
    sets = [
        *base,
        "data.slice_axis=2",
        "data.case_regex=abd_(\\d+)",
        "train.max_steps=2",
        f"train.run_dir={run}",
    ]
    assert main(["train", str(REPO / "configs" / "tiny.yaml"), *[a for s in sets for a in ("--set", s)]]) == 0
    scan = root / "imagesTr" / "abd_000_0000.nii.gz"
    assert main(["predict", str(run / "best.pt"), str(scan), str(tmp_path / "seg.nii.gz")]) == 0
    out = nib.load(str(tmp_path / "seg.nii.gz"))
    assert out.shape == (32, 32, 4) and np.allclose(out.affine, nib.load(str(scan)).affine)
    for bad, match in (
        (["data.target_spacing=[1, 1]"], "3 voxel sizes > 0"),
        (["data.target_spacing=[1, 1, 1]", "data.resize=[16, 16]"], "not both"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_config(None, [*base[:3], *bad])
    with pytest.raises(ConfigError, match="needs data.source nifti, decathlon or nnunet"):
        load_config(None, ["data.target_spacing=[1, 1, 1]"])


def test_a_multi_channel_nnunet_dataset_trains_and_predicts_from_its_channel_files(tmp_path):
    import nibabel as nib

    root = _nnunet(tmp_path / "Dataset043_Two", n=4, channels={"0": "CT", "1": "CT_inverted"})
    for f in sorted((root / "imagesTr").glob("*_0000.nii.gz")):  # the second channel: a different image
        img = nib.load(str(f))
        inverted = (1000 - np.asarray(img.dataobj)).astype(np.int16)
        nib.save(nib.Nifti1Image(inverted, img.affine), str(f).replace("_0000", "_0001"))
    from weakseg.config import load_config

    base = ["data.source=nnunet", f"data.root={root}", "data.in_channels=2", "data.slice_axis=2",
            "data.val_fraction=0.25", "data.case_regex=abd_(\\d+)"]  # fmt: skip
    sample = build_datasets(load_config(None, base).data)["labeled"][0]
    assert sample["image"].shape == (2, 32, 32)
    assert not torch.equal(sample["image"][0], sample["image"][1])  # two channels, in channel order
    run = tmp_path / "run"
    sets = [*base, "train.max_steps=2", f"train.run_dir={run}"]
    assert main(["train", str(REPO / "configs" / "tiny.yaml"), *[a for s in sets for a in ("--set", s)]]) == 0
    out = tmp_path / "pred"
    assert main(["predict", str(run / "best.pt"), str(root / "imagesTr"), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"abd_{i:03d}.nii.gz" for i in range(4)]  # one per case
    assert nib.load(str(out / "abd_000.nii.gz")).shape == (32, 32, 4)
    (root / "imagesTr" / "abd_002_0001.nii.gz").unlink()
    assert main(["predict", str(run / "best.pt"), str(root / "imagesTr"), str(tmp_path / "p2")]) == 1
