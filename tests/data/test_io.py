from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from weakseg.config import DataConfig, IntensityConfig
from weakseg.data import (
    DataError,
    iter_slices,
    load_image_for_inference,
    predict_volume_slices,
    stack_slices,
    write_label,
)

from .helpers import folder_cfg, write_nifti, write_png


def test_png_roundtrip_and_overwrite(tmp_path):
    write_png(tmp_path / "in.png", np.full((4, 5), 200, np.uint8))
    image, meta = load_image_for_inference(tmp_path / "in.png", folder_cfg(tmp_path))
    assert image.shape == (1, 4, 5) and image.max().item() == pytest.approx(200 / 255)
    assert meta["kind"] == "png" and meta["shape"] == (4, 5) and meta["slice_axis"] is None
    label = np.arange(20).reshape(4, 5) % 3
    assert predict_volume_slices(image, meta, lambda x: x[:, 0].long() + 1).shape == (4, 5)
    out = write_label(tmp_path / "out.png", label, meta)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), label)
    with pytest.raises(FileExistsError, match="already exists; pass --overwrite"):
        write_label(out, label, meta)
    write_label(out, np.zeros((4, 5), np.int64), meta, overwrite=True)
    assert np.asarray(Image.open(out)).max() == 0


def test_write_label_checks_shape_and_format(tmp_path):
    with pytest.raises(DataError, match="label is 3x3, its image is 4x5"):
        write_label(tmp_path / "a.png", np.zeros((3, 3)), {"shape": (4, 5)})
    with pytest.raises(DataError, match="lossless"):
        write_label(tmp_path / "a.jpg", np.zeros((3, 3)))


def test_nifti_slices_and_affine_roundtrip(tmp_path):
    # stored as A, L, S (axes swapped, one flipped): read in RAS
    affine = np.array([[0.0, -0.8, 0, 10], [0.8, 0, 0, -5], [0, 0, 3.0, 2], [0, 0, 0, 1]])
    hu = (np.arange(24, dtype=np.int16).reshape(2, 3, 4) * 50 - 500).astype(np.int16)
    write_nifti(tmp_path / "scan.nii.gz", hu, affine)
    cfg = DataConfig(
        source="nifti", slice_axis=2, intensity=IntensityConfig(preset="ct_window", window=[0, 1000])
    )
    image, meta = load_image_for_inference(tmp_path / "scan.nii.gz", cfg)
    ras = np.asarray(nib.as_closest_canonical(nib.Nifti1Image(hu, affine)).dataobj)
    assert ras.shape == (3, 2, 4) and nib.aff2axcodes(affine) == ("A", "L", "S")
    assert image.shape == (1, 3, 2, 4) and meta["kind"] == "nifti" and meta["slice_axis"] == 2
    np.testing.assert_allclose(image[0].numpy(), np.clip((ras + 500) / 1000.0, 0, 1), atol=1e-6)
    slices = list(iter_slices(image, 2))
    assert len(slices) == 4 and slices[1].shape == (1, 3, 2)
    label = stack_slices([(s[0] > 0.5).long() for s in slices], 2)
    assert label.shape == (3, 2, 4)
    calls = []
    run = lambda x: calls.append(x.shape) or (x[:, 0] > 0.5).long()  # noqa: E731
    np.testing.assert_array_equal(predict_volume_slices(image, meta, run, batch_size=3).numpy(), label)
    assert calls == [(3, 1, 3, 2), (1, 1, 3, 2)]  # slices in batches of 3
    out = write_label(tmp_path / "seg" / "scan_seg.nii.gz", label, meta)
    back = nib.load(str(out))
    np.testing.assert_allclose(back.affine, affine)  # the input's own orientation and affine
    np.testing.assert_allclose(back.header.get_zooms(), (0.8, 0.8, 3.0))  # anisotropic spacing kept
    # voxel for voxel on the stored image: the label of each stored voxel is its own threshold
    np.testing.assert_array_equal(np.asarray(back.dataobj), (np.clip((hu + 500) / 1000.0, 0, 1) > 0.5))
    assert back.get_data_dtype() == np.uint8


def test_nifti_label_ignores_input_scaling(tmp_path):
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    img.header.set_slope_inter(1.0, -1024.0)  # a CT stored with an intercept
    nib.save(img, str(tmp_path / "ct.nii"))
    cfg = DataConfig(source="nifti", slice_axis=None, intensity=IntensityConfig(preset="ct_window"))
    _, meta = load_image_for_inference(tmp_path / "ct.nii", cfg)
    label = np.ones((2, 2, 2), np.uint8)
    out = write_label(tmp_path / "seg.nii", label, meta)
    np.testing.assert_array_equal(nib.load(str(out)).get_fdata(), label)


def test_unsupported_input(tmp_path):
    (tmp_path / "x.dcm").write_bytes(b"")
    with pytest.raises(DataError, match="cannot predict on .*x.dcm"):
        load_image_for_inference(tmp_path / "x.dcm", DataConfig())
