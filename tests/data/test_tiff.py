"""TIFF through tifffile: a multi-page stack is one case whose pages are its slices (training and predict),
16-bit colour keeps its 16 bits, LZW stacks decode without the optional imagecodecs, and bad stacks are named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.catalogue import bad_input
from weakseg.config import IntensityConfig
from weakseg.data import DataError, SegDataset, build_datasets, read_folder_records, read_image_file
from weakseg.data.readers import read_tiff_stack, tiff_pages
from weakseg.keys import Keys

from .helpers import folder_cfg, write_png

tifffile = pytest.importorskip("tifffile")

SCALE = IntensityConfig(preset="scale", scale=65535.0)


def _stack(pages: int, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """uint16 image pages whose pixel (0, 0) is 1000 * page, and label pages 0..2."""
    image = np.full((pages, size, size), 20000, np.uint16)
    image[:, 0, 0] = 1000 * np.arange(pages)
    label = np.zeros((pages, size, size), np.uint8)
    label[:, 2:4, 2:4] = 1
    label[:, 5:7, 5:7] = 2
    label[:, 0, 1] = np.arange(pages) % 3  # tells the label pages apart
    return image, label


def _stacks_folder(tmp_path, cases: dict[str, int]):
    root = tmp_path / "em"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for case, pages in cases.items():
        image, label = _stack(pages)
        tifffile.imwrite(root / "images" / f"vol_{case}.tif", image, photometric="minisblack")
        tifffile.imwrite(root / "masks" / f"vol_{case}.tif", label, photometric="minisblack")
    return root


def test_a_multi_page_stack_is_one_case_whose_pages_are_samples(tmp_path):
    root = _stacks_folder(tmp_path, {"p01": 3, "p02": 2})
    records = read_folder_records(root / "images", root / "masks")
    assert [r.name for r in records] == [f"vol_p01_z00{i}" for i in range(3)] + [
        "vol_p02_z000",
        "vol_p02_z001",
    ]
    assert [r.case_id for r in records] == ["01"] * 3 + ["02"] * 2
    ds = SegDataset(records, folder_cfg(root, intensity=SCALE))
    for i, r in enumerate(records):
        sample = ds[i]
        assert sample[Keys.IMAGE].shape == (1, 8, 8)
        assert float(sample[Keys.IMAGE][0, 0, 0]) == pytest.approx(1000 * r.slice_index / 65535)
        assert int(sample[Keys.LABEL][0, 1]) == r.slice_index % 3
        assert int(sample[Keys.LABEL][3, 3]) == 1 and int(sample[Keys.LABEL][6, 6]) == 2
    # splits keep a stack's pages together
    sets = build_datasets(folder_cfg(root, intensity=SCALE, val_fraction=0.5))
    assert {r.case_id for r in sets["val"].records}.isdisjoint({r.case_id for r in sets["labeled"].records})
    assert len(sets["val"]) + len(sets["labeled"]) == 5
    # one case per page (EM sections split in blocks)
    pages = read_folder_records(root / "images", root / "masks", case_regex=r"z(\d+)")
    assert [r.case_id for r in pages] == ["000", "001", "002", "000", "001"]


def test_lzw_stacks_decode_page_by_page_without_imagecodecs(tmp_path):
    pages = [np.full((6, 7), 10 * i, np.uint8) for i in range(4)]
    path = tmp_path / "lzw.tif"
    frames = [Image.fromarray(p) for p in pages]
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_lzw")
    assert tiff_pages(path) == 4
    np.testing.assert_array_equal(read_tiff_stack(path), np.stack(pages)[:, None])


def test_16_bit_colour_keeps_its_16_bits(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 40000, 1000, 65535
    path = tmp_path / "c_p01.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    image = read_image_file(path)
    assert image.dtype == np.uint16 and image.shape == (3, 8, 8)
    assert [int(image[c, 0, 0]) for c in range(3)] == [40000, 1000, 65535]


def test_bad_stacks_are_named(tmp_path):
    root = _stacks_folder(tmp_path, {"p01": 3})
    tifffile.imwrite(
        root / "masks" / "vol_p01.tif", _stack(2)[1], photometric="minisblack"
    )  # 2 label pages for 3 image pages
    with bad_input(
        "TIFF stack with a mask of other page count", DataError, r"vol_p01.tif has 2 page\(s\).*3"
    ):
        read_folder_records(root / "images", root / "masks")
    with bad_input("TIFF stack read as one image", DataError, r"TIFF stack of 3 pages"):
        read_image_file(root / "images" / "vol_p01.tif")
    (tmp_path / "broken.tif").write_bytes(b"II*\0garbage")
    with bad_input("truncated TIFF", DataError, r"broken.tif as a TIFF"):
        read_image_file(tmp_path / "broken.tif")
    # a single-page image whose mask is a stack
    write_png(tmp_path / "one" / "images" / "a_p01.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "one" / "masks").mkdir()
    tifffile.imwrite(tmp_path / "one" / "masks" / "a_p01.tif", _stack(2)[1], photometric="minisblack")
    with bad_input("mask stack for one image", DataError, r"a_p01.tif has 2 pages"):
        read_folder_records(tmp_path / "one" / "images", tmp_path / "one" / "masks")


def test_predict_on_a_stack_writes_a_stack_of_label_pages(tmp_path):
    from tests.conftest import REPO
    from weakseg.cli import main

    run = tmp_path / "run"
    tiny = str(REPO / "configs" / "tiny.yaml")
    assert main(["train", tiny, "--set", f"train.run_dir={run}", "--set", "train.max_steps=2"]) == 0
    image = np.random.default_rng(0).integers(-200, 300, (3, 32, 32)).astype(np.int16)  # HU-like pages
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "ct_stack.tif", image, photometric="minisblack")
    assert main(["predict", str(run / "best.pt"), str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    labels = tifffile.imread(tmp_path / "out" / "ct_stack.tif")
    assert labels.shape == (3, 32, 32) and labels.dtype == np.uint8 and labels.max() < 5
