from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.catalogue import bad_input
from weakseg.config import IntensityConfig
from weakseg.data import DataError, SegDataset, build_datasets, read_folder_records
from weakseg.keys import Keys

from .helpers import folder_cfg, write_png

CASES = {"p01": 3, "p02": 2, "p03": 2, "p04": 1, "p05": 2}


def test_build_folder_splits_by_case(make_folder):
    root = make_folder(CASES)
    sets = build_datasets(folder_cfg(root, val_fraction=0.2, test_fraction=0.2, labeled_fraction=0.34))
    assert [len(sets[k].case_ids) for k in ("labeled", "unlabeled", "val", "test")] == [1, 2, 1, 1]
    seen = [c for ds in sets.values() for c in ds.case_ids]
    assert sorted(seen) == ["01", "02", "03", "04", "05"]  # every case in exactly one split
    for ds in sets.values():
        assert {r.case_id for r in ds.records} == set(ds.case_ids)
        assert len(ds) == sum(CASES[f"p{c}"] for c in ds.case_ids)  # all slices of a case travel together
    again = build_datasets(folder_cfg(root, val_fraction=0.2, test_fraction=0.2, labeled_fraction=0.34))
    assert {k: v.case_ids for k, v in again.items()} == {k: v.case_ids for k, v in sets.items()}


def test_items_and_unlabeled_items(make_folder):
    root = make_folder(CASES)
    sets = build_datasets(folder_cfg(root, labeled_fraction=0.5))
    item = sets["labeled"][0]
    assert set(item) == {Keys.IMAGE, Keys.LABEL, Keys.CASE_ID, Keys.NAME}
    assert item[Keys.IMAGE].dtype == torch.float32 and item[Keys.IMAGE].shape == (1, 8, 8)
    assert item[Keys.LABEL].dtype == torch.int64 and item[Keys.LABEL].shape == (8, 8)
    assert item[Keys.IMAGE][0, 1, 1].item() == pytest.approx(100 / 255)  # auto: uint8 -> scale by 255
    assert item[Keys.LABEL].unique().tolist() == [0, 1, 2]
    assert sets["unlabeled"].labeled is False and len(sets["unlabeled"]) > 0
    assert all(Keys.LABEL not in sets["unlabeled"][i] for i in range(len(sets["unlabeled"])))
    assert sets["val"].num_classes == 3 and sets["test"].records == []


def test_lazy_decode_and_cache(make_folder):
    root = make_folder({"p01": 2})
    ds = SegDataset(read_folder_records(root / "images", root / "masks"), folder_cfg(root))
    assert ds._cache == {}
    first = ds[-1]
    first[Keys.PRED] = 0  # caller edits its copy only
    assert Keys.PRED not in ds[1] and list(ds._cache) == [1]
    with pytest.raises(IndexError):
        ds[2]


def test_mask_size_differs(make_folder):
    root = make_folder({"p03": 1})
    write_png(root / "masks" / "ct_p03_z000.png", np.zeros((7, 8), np.uint8))
    ds = build_datasets(folder_cfg(root))["labeled"]
    with pytest.raises(
        DataError, match=r"mask .*ct_p03_z000.png is 7x8, image ct_p03_z000.png is 8x8: masks must"
    ):
        ds[0]


def test_label_value_too_large(make_folder):
    root = make_folder({"p01": 1})
    write_png(root / "masks" / "ct_p01_z000.png", np.full((8, 8), 7, np.uint8))
    ds = build_datasets(folder_cfg(root))["labeled"]
    with pytest.raises(DataError, match=r"ct_p01_z000.png holds label value 7, but data.num_classes is 3"):
        ds[0]


def test_binary_255_masks_map_to_1(make_folder):
    root = make_folder({"p01": 1})
    write_png(root / "masks" / "ct_p01_z000.png", np.where(np.eye(8) > 0, 255, 0).astype(np.uint8))
    ds = build_datasets(folder_cfg(root, num_classes=2, class_names=["bg", "fg"]))["labeled"]
    assert ds[0][Keys.LABEL].sum().item() == 8


def test_truncated_image_in_dataset(make_folder):
    root = make_folder({"p01": 1}, size=(64, 64))
    path = root / "images" / "ct_p01_z000.png"
    noisy = np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)
    write_png(path, noisy)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="ct_p01_z000.png"):
        build_datasets(folder_cfg(root))["labeled"][0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_float_tiff(make_folder, bad):
    root = make_folder({"p01": 1})
    (root / "images" / "ct_p01_z000.png").unlink()
    image = np.zeros((8, 8), np.float32)
    image[2, 3] = bad
    Image.fromarray(image, mode="F").save(root / "images" / "ct_p01_z000.tif")
    cfg = folder_cfg(root, intensity=IntensityConfig(preset="none"))
    with pytest.raises(DataError, match=r"ct_p01_z000.tif contains 1 NaN/inf"):
        build_datasets(cfg)["labeled"][0]


def test_float_tiff_in_unit_range_passes_unchanged(make_folder):
    root = make_folder({"p01": 1})
    (root / "images" / "ct_p01_z000.png").unlink()
    Image.fromarray(np.full((8, 8), 0.25, np.float32), mode="F").save(root / "images" / "ct_p01_z000.tif")
    assert build_datasets(folder_cfg(root))["labeled"][0][Keys.IMAGE].unique().tolist() == [0.25]


def test_empty_data_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match=r"images holds no png/jpg/jpeg/tif/tiff images; expected the layout"):
        build_datasets(folder_cfg(tmp_path))


@pytest.mark.parametrize(
    "in_channels, rgb, match", [(3, False, "grey with 1 channel"), (1, True, "colour \\(RGB\\)")]
)
def test_in_channels_disagrees(make_folder, in_channels, rgb, match):
    root = make_folder({"p01": 1})
    if rgb:
        write_png(root / "images" / "ct_p01_z000.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=match + r".*data.in_channels is"):
        build_datasets(folder_cfg(root, in_channels=in_channels))["labeled"][0]


def test_rgb_images_give_three_channels(make_folder):
    root = make_folder({"p01": 1})
    write_png(root / "images" / "ct_p01_z000.png", np.full((8, 8, 3), 51, np.uint8))
    cfg = folder_cfg(root, in_channels=3, intensity=IntensityConfig(preset="rgb"))
    image = build_datasets(cfg)["labeled"][0][Keys.IMAGE]
    assert image.shape == (3, 8, 8) and image.max().item() == pytest.approx(0.2)


def test_unknown_source_and_missing_root(tmp_path):
    with pytest.raises(DataError, match='Did you mean "folder"'):
        build_datasets(folder_cfg(tmp_path, source="foldr"))
    with pytest.raises(DataError, match="data.root must be set"):
        build_datasets(folder_cfg(None))


def test_labeled_dataset_needs_masks(make_folder):
    root = make_folder({"p01": 1}, masks=False)
    records = read_folder_records(root / "images")
    with pytest.raises(DataError, match="labeled=False"):
        SegDataset(records, folder_cfg(root))
    assert Keys.LABEL not in SegDataset(records, folder_cfg(root), labeled=False)[0]


def test_resize_resamples_image_by_area_and_label_by_nearest(tmp_path):
    image = np.zeros((8, 8), np.uint8)
    image[:4, :4] = 200
    mask = np.zeros((8, 8), np.uint8)
    mask[:4, :4] = 2
    write_png(tmp_path / "images" / "p01_z0.png", image)
    write_png(tmp_path / "masks" / "p01_z0.png", mask)
    item = build_datasets(folder_cfg(tmp_path, resize=[4, 4]))["labeled"][0]
    assert item[Keys.IMAGE].shape == (1, 4, 4) and item[Keys.LABEL].shape == (4, 4)
    assert item[Keys.IMAGE][0, 0, 0].item() == pytest.approx(200 / 255)  # 2x2 blocks averaged
    assert item[Keys.LABEL].dtype == torch.int64
    assert item[Keys.LABEL].tolist() == [[2, 2, 0, 0], [2, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_resize_must_match_the_data_dimensionality():
    from weakseg.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match=r"data.resize must be 2 sizes >= 8 \(\[H, W\]\)"):
        config_from_dict({"data": {"resize": [64, 64, 64]}})


def _one_image_dataset(tmp_path, name: str, write, **cfg):
    root = tmp_path / "odd"
    (root / "images").mkdir(parents=True)
    write(root / "images" / name)
    write_png(root / "masks" / (name.rsplit(".", 1)[0] + ".png"), np.zeros((8, 8), np.uint8))
    return SegDataset(read_folder_records(root / "images", root / "masks"), folder_cfg(root, **cfg))


def test_16_bit_png_under_scale_255_is_refused_with_the_value_to_set(tmp_path):
    wide = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)  # up to 63000
    ds = _one_image_dataset(
        tmp_path,
        "x_p01.png",
        lambda p: write_png(p, wide),
        intensity=IntensityConfig(preset="scale", scale=255.0),
    )
    with bad_input(
        "16-bit PNG under intensity scale 255", DataError, "up to 63000 \\(uint16, 16-bit\\).*scale: 65535"
    ):
        ds[0]
    ok = _one_image_dataset(
        tmp_path / "b",
        "x_p01.png",
        lambda p: write_png(p, wide),
        intensity=IntensityConfig(preset="scale", scale=65535.0),
    )
    assert float(ok[0][Keys.IMAGE].max()) == pytest.approx(63000 / 65535)
