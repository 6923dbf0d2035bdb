"""Sliding-window inference: matches whole-input inference away from window borders, stitches on the CPU above
the memory bound, and a 3D phantom run trains on patches and evaluates whole volumes with windows."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from weakseg.config import InferConfig
from weakseg.methods.infer import predict_logits, stitch_device

pytestmark = pytest.mark.usefixtures("one_thread")


class _Local(nn.Module):
    """A fully convolutional 3D 'method' with a 5-voxel receptive field."""

    size_divisor = 1

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 3, 3, padding=1))

    def predict(self, x):
        return self.net(x)


@pytest.mark.parametrize(("mode", "rel", "agreement"), [("gaussian", 0.05, 0.97), ("constant", 0.2, 0.93)])
def test_sliding_window_matches_whole_volume_inference(mode, rel, agreement):
    method, volume = _Local(), torch.randn(1, 1, 24, 40, 36)
    with torch.no_grad():
        whole = predict_logits(method, volume)
        window = InferConfig(roi_size=[16, 16, 16], overlap=0.5, sw_batch_size=2, mode=mode)
        tiled = predict_logits(method, volume, window=window)
    assert tiled.shape == whole.shape
    # only voxels near a window's edge (where the window lacks context) differ, and blending dilutes them
    assert (tiled - whole).abs().mean() < rel * whole.abs().mean()  # Gaussian blending dilutes them most
    assert (tiled.argmax(1) == whole.argmax(1)).float().mean() > agreement


def test_stitching_moves_to_the_cpu_above_the_bound():
    cuda = torch.device("cuda", 0)  # a name only: nothing runs there
    shape = (1, 1, 64, 64, 64)  # 5 classes of float32: 5 MiB of logits
    assert stitch_device(shape, 5, cuda, bound_mb=4.9) == torch.device("cpu")
    assert stitch_device(shape, 5, cuda, bound_mb=5.1) == cuda
    method, volume = _Local(), torch.randn(1, 1, 20, 20, 20)
    with torch.no_grad():
        out = predict_logits(method, volume, window=InferConfig(roi_size=[8, 8, 8], stitch_on_cpu_mb=0.0))
    assert out.shape == (1, 3, 20, 20, 20)


def test_3d_phantoms_train_on_patches_and_predict_nifti(tiny_cfg_path, tmp_path):
    from weakseg.cli import main

    run = tmp_path / "run"
    sets = [
        "data.slice_axis=null",
        "data.phantom_slices=16",
        "data.patch_size=[16, 16, 16]",
        f"train.run_dir={run}",
        "train.max_steps=2",
    ]
    assert main(["train", str(tiny_cfg_path), *[a for s in sets for a in ("--set", s)]]) == 0
    rows = (run / "val_per_case.csv").read_text().splitlines()
    assert len(rows) > 1 and rows[1].startswith("ct_p")  # whole volumes scored per case
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    nib.save(
        nib.Nifti1Image(np.random.rand(24, 40, 20).astype(np.float32) * 300, affine), tmp_path / "v.nii.gz"
    )
    out = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                str(run / "last.pt"),
                str(tmp_path / "v.nii.gz"),
                str(out),
                "--set",
                "data.source=nifti",
                "--set",
                "data.intensity.preset=mr_percentile",
            ]
        )
        == 0
    )
    seg = nib.load(out / "v.nii.gz")
    assert seg.shape == (24, 40, 20) and np.allclose(seg.affine, affine)
