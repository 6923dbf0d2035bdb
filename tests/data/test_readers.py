from __future__ import annotations

import numpy as np
import pytest

from weakseg.data import DataError, read_folder_records, read_image_file, read_mask_file
from weakseg.data.records import case_id_from

from .helpers import write_png


@pytest.mark.parametrize(
    "stem, regex, expected",
    [
        ("ct_p03_z041", r"p(\d+)", "03"),
        ("chase_01L", r"chase_(\d+)", "01"),  # both eyes of a child -> one case
        ("scan7", r"scan\d", "scan7"),  # no group: the whole match
        ("image_a", r"p(\d+)", "image_a"),  # no match: each file its own case
    ],
)
def test_case_id_from(stem, regex, expected):
    assert case_id_from(stem, regex) == expected


def test_bad_regex_is_explained():
    with pytest.raises(DataError, match="case_regex"):
        case_id_from("x", "p(")


def test_pairs_by_stem_across_extensions(tmp_path):
    write_png(tmp_path / "img" / "a_p1.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "img" / "b_p2.jpg", np.zeros((4, 4, 3), np.uint8))
    write_png(tmp_path / "msk" / "a_p1.png", np.zeros((4, 4), np.uint8))
    write_png(tmp_path / "msk" / "b_p2.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "img" / "notes.txt").write_text("ignored")
    records = read_folder_records(tmp_path / "img", tmp_path / "msk")
    assert [(r.name, r.case_id, r.image.endswith(".jpg"), r.label.endswith(".png")) for r in records] == [
        ("a_p1", "1", False, True),
        ("b_p2", "2", True, True),
    ]


def test_images_only_folder(make_folder):
    root = make_folder({"p01": 2}, masks=False)
    records = read_folder_records(root / "images")
    assert [r.label for r in records] == [None, None]


@pytest.mark.parametrize(
    "remove, match",
    [
        ("masks/ct_p01_z001.png", r"1 image\(s\) in .* have no mask .*ct_p01_z001"),
        ("images/ct_p01_z000.png", r"1 mask\(s\) in .* have no image .*ct_p01_z000"),
    ],
)
def test_unpaired_files(make_folder, remove, match):
    root = make_folder({"p01": 2})
    (root / remove).unlink()
    with pytest.raises(DataError, match=match):
        read_folder_records(root / "images", root / "masks")


def test_empty_and_missing_folder(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"images holds no png.*expected the layout"):
        read_folder_records(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(DataError, match=r"nothere does not exist; expected the layout"):
        read_folder_records(tmp_path / "nothere")


def test_same_stem_twice_is_an_error(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    write_png(tmp_path / "a.tif", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="same name"):
        read_folder_records(tmp_path)


@pytest.mark.parametrize(
    "array, shape",
    [
        (np.zeros((5, 4), np.uint8), (1, 5, 4)),  # grey
        (np.zeros((5, 4, 3), np.uint8), (3, 5, 4)),  # RGB
        (np.zeros((5, 4, 4), np.uint8), (3, 5, 4)),  # RGBA: alpha dropped
    ],
)
def test_image_channels(tmp_path, array, shape):
    assert read_image_file(write_png(tmp_path / "x.png", array)).shape == shape


def test_truncated_image_names_the_file(tmp_path):
    path = write_png(
        tmp_path / "ct_p01_z000.png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)
    )
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"cannot decode .*ct_p01_z000.png .*truncated"):
        read_image_file(path)


def test_colour_mask_rejected_grey_rgb_mask_accepted(tmp_path):
    grey = np.stack([np.eye(3, dtype=np.uint8)] * 3, axis=-1)
    assert read_mask_file(write_png(tmp_path / "g.png", grey)).tolist() == np.eye(3).tolist()
    colour = grey.copy()
    colour[0, 0, 0] = 7
    with pytest.raises(DataError, match="colour"):
        read_mask_file(write_png(tmp_path / "c.png", colour))
