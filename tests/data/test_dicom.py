"""A DICOM series (written here with pydicom) reads as a RAS volume with its DICOM geometry, and
``weakseg predict`` segments it into a NIfTI aligned with the scan."""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.dataset import FileDataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from weakseg.data.dicom import is_dicom_series, load_dicom_series  # noqa: E402


def write_series(folder, volume_hu: np.ndarray, spacing=(0.7, 0.8), thickness=2.5, shuffle=True):
    """volume_hu (Z, rows, cols) int; axial slices, patient position rising with the slice index."""
    folder.mkdir(parents=True)
    series = generate_uid()
    order = np.random.default_rng(0).permutation(len(volume_hu)) if shuffle else range(len(volume_hu))
    for n, z in enumerate(order):  # files named out of order: geometry decides
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"im{n:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = (
            meta.MediaStorageSOPClassUID,
            generate_uid(),
            series,
        )
        ds.Modality, ds.InstanceNumber = "CT", int(z) + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10.0, -20.0, 30.0 + thickness * int(z)]
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.Rows, ds.Columns = volume_hu.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (volume_hu[z] + 1024).astype(np.uint16).tobytes()
        ds.save_as(str(folder / f"im{n:03d}.dcm"), enforce_file_format=True)
    return folder


def test_series_reads_in_ras_with_its_geometry(tmp_path):
    hu = (np.arange(3 * 4 * 5).reshape(3, 4, 5) * 10 - 100).astype(np.int16)  # (Z, rows, cols)
    folder = write_series(tmp_path / "series", hu)
    assert is_dicom_series(folder) and not is_dicom_series(tmp_path)
    volume, affine, _ = load_dicom_series(folder)
    # DICOM LPS: columns run to the patient's left, rows to posterior -> RAS flips X and Y
    np.testing.assert_allclose(np.diag(affine)[:3], [-0.8, -0.7, 2.5])
    np.testing.assert_allclose(affine[:3, 3], [10.0, 20.0, 30.0])
    assert volume.shape == (5, 4, 3)
    expected = hu.transpose(2, 1, 0)[::-1, ::-1, :]  # (X=col, Y=row, Z) then flipped to R and A
    np.testing.assert_array_equal(volume, expected)


def test_predict_segments_a_dicom_series_into_an_aligned_nifti(tmp_path):
    import nibabel as nib

    from tests.conftest import REPO
    from weakseg.cli import main
    from weakseg.data.phantoms import phantom_case

    run = tmp_path / "run"
    tiny = str(REPO / "configs" / "tiny.yaml")
    assert main(["train", tiny, "--set", f"train.run_dir={run}", "--set", "train.max_steps=2"]) == 0
    image, _ = phantom_case(0, "ct", n_slices=3, size=32)  # (Z, H, W) HU
    folder = write_series(tmp_path / "in" / "ct_series", image.astype(np.int16))
    assert main(["predict", str(run / "best.pt"), str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    out = nib.load(str(tmp_path / "out" / "ct_series.nii.gz"))
    _, affine, _ = load_dicom_series(folder)
    np.testing.assert_allclose(out.affine, affine)
    assert out.shape == (32, 32, 3)
