from __future__ import annotations

import json

import numpy as np
import pytest

from weakseg.config import IntensityConfig
from weakseg.data import DataError, build_datasets, read_decathlon_records, read_records
from weakseg.keys import Keys

from .helpers import decathlon_cfg, nifti_cfg, write_nifti


@pytest.mark.parametrize(
    "axis, n, shape, name",
    [
        (2, 8, (1, 6, 5), "vol_p01_z003"),
        (0, 12, (1, 5, 4), "vol_p01_x003"),
        (1, 10, (1, 6, 4), "vol_p01_y003"),
    ],
)
def test_slices_along_axis(nifti_root, axis, n, shape, name):
    ds = build_datasets(nifti_cfg(nifti_root, slice_axis=axis))["labeled"]
    assert len(ds) == n and ds.case_ids == ["01", "02"]
    item = ds[3]
    assert item[Keys.NAME] == name and item[Keys.CASE_ID] == "01"
    assert item[Keys.IMAGE].shape == shape and item[Keys.LABEL].shape == shape[1:]
    volume = np.arange(120).reshape(6, 5, 4) * 10 - 1000.0  # the image of vol_p01 in HU
    expected = np.clip((np.take(volume, 3, axis=axis) + 1000) / 2000, 0, 1)  # window [0, 2000]
    np.testing.assert_allclose(item[Keys.IMAGE][0].numpy(), expected, atol=1e-6)
    assert len(ds._cache) == n // 2  # decoding one slice decoded its whole volume


def test_whole_volumes(nifti_root):
    ds = build_datasets(nifti_cfg(nifti_root, slice_axis=None))["labeled"]
    item = ds[1]
    assert len(ds) == 2 and item[Keys.NAME] == "vol_p02"
    assert item[Keys.IMAGE].shape == (1, 6, 5, 4) and item[Keys.LABEL].shape == (6, 5, 4)
    assert item[Keys.LABEL].sum().item() == 2 * 2 * 4 + 2


def test_auto_preset_refuses_raw_hu(nifti_root):
    ds = build_datasets(nifti_cfg(nifti_root, intensity=IntensityConfig()))["labeled"]
    with pytest.raises(DataError, match=r"vol_p01.nii.gz \(range -1000..190, int16\).*ct_window"):
        ds[0]


def test_label_volume_size_differs(nifti_root):
    write_nifti(nifti_root / "masks" / "vol_p02.nii.gz", np.zeros((6, 5, 3), np.uint8))
    with pytest.raises(DataError, match=r"label volume .*vol_p02.nii.gz is 6x5x3, image .* is 6x5x4"):
        build_datasets(nifti_cfg(nifti_root))


def test_nan_in_volume(nifti_root):
    image = np.zeros((6, 5, 4), np.float32)
    image[0, 0, 0] = np.nan
    write_nifti(nifti_root / "images" / "vol_p01.nii.gz", image)
    with pytest.raises(DataError, match="vol_p01.nii.gz contains 1 NaN/inf"):
        build_datasets(nifti_cfg(nifti_root))["labeled"][0]


def test_truncated_volume(nifti_root):
    path = nifti_root / "images" / "vol_p01.nii.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="vol_p01.nii.gz"):
        build_datasets(nifti_cfg(nifti_root))["labeled"][0]


def test_unpaired_volumes(nifti_root):
    (nifti_root / "masks" / "vol_p02.nii.gz").unlink()
    with pytest.raises(DataError, match="without label in .*: vol_p02"):
        read_records(nifti_cfg(nifti_root))


def test_decathlon_multimodal_channels(decathlon_root):
    sets = build_datasets(decathlon_cfg(decathlon_root, slice_axis=2))
    ds = sets["labeled"]
    assert [r.name for r in ds.records] == [
        "tiny_000_z000",
        "tiny_000_z001",
        "tiny_001_z000",
        "tiny_001_z001",
    ]
    item = ds[0]
    assert item[Keys.IMAGE].shape == (2, 4, 3) and item[Keys.LABEL].shape == (4, 3)
    # modality T2/ADC -> auto = mr_percentile, per channel, so both channels span [0, 1]
    image = item[Keys.IMAGE]
    assert image.amin(dim=(1, 2)).tolist() == [0, 0] and image.amax(dim=(1, 2)).tolist() == [1, 1]
    whole = build_datasets(decathlon_cfg(decathlon_root, slice_axis=None))["labeled"][0]
    assert whole[Keys.IMAGE].shape == (2, 4, 3, 2)


def test_decathlon_test_entries_are_images_only(decathlon_root):
    records = read_decathlon_records(decathlon_root, r"p(\d+)", 2, which="test")
    assert [(r.name, r.label) for r in records] == [("tiny_100_z000", None), ("tiny_100_z001", None)]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"num_classes": 3, "class_names": ["a", "b", "c"]}, r"lists 2 labels .* data.num_classes is 3"),
        ({"in_channels": 1}, r"lists 2 modalities .* data.in_channels is 1"),
    ],
)
def test_decathlon_config_must_agree(decathlon_root, kw, match):
    with pytest.raises(DataError, match=match):
        build_datasets(decathlon_cfg(decathlon_root, **kw))


def test_decathlon_missing_files(decathlon_root):
    info = json.loads((decathlon_root / "dataset.json").read_text())
    info["training"].append({"image": "./imagesTr/gone.nii.gz", "label": "./labelsTr/gone.nii.gz"})
    (decathlon_root / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match=r"2 file\(s\) listed in .*dataset.json do not exist: .*gone.nii.gz"):
        build_datasets(decathlon_cfg(decathlon_root))
    (decathlon_root / "dataset.json").unlink()
    with pytest.raises(DataError, match="dataset.json does not exist"):
        build_datasets(decathlon_cfg(decathlon_root))
