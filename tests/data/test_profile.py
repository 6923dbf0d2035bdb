"""``weakseg predict`` warns when an input differs from the training images (kept in the checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO
from tests.test_cli import _phantom_folder
from weakseg.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_predict_warns_about_inputs_unlike_the_training_images(tmp_path, capsys):
    data = _phantom_folder(tmp_path / "data", n=3)
    run = tmp_path / "run"
    args = ["--set", "data.source=folder", "--set", f"data.root={data}", "--set", "data.case_regex=p(\\d+)"]
    args += ["--set", "train.max_steps=2", "--set", f"train.run_dir={run}", "--set", "data.val_fraction=0.34"]
    assert main(["train", str(REPO / "configs" / "tiny.yaml"), *args]) == 0
    capsys.readouterr()
    same = tmp_path / "same"
    same.mkdir()
    first = sorted((data / "images").glob("*.png"))[0]
    (same / first.name).write_bytes(first.read_bytes())
    assert main(["predict", str(run / "best.pt"), str(same), str(tmp_path / "out1")]) == 0
    assert "warning" not in capsys.readouterr().err

    odd = tmp_path / "odd"
    odd.mkdir()
    img = np.asarray(Image.open(first))
    Image.fromarray(np.kron(img, np.ones((4, 4), np.uint8))).save(odd / "big.png")  # 4x the size
    Image.fromarray((img // 8).astype(np.uint8)).save(odd / "dark.png")  # intensities it never saw
    assert main(["predict", str(run / "best.pt"), str(odd), str(tmp_path / "out2")]) == 0
    err = capsys.readouterr().err
    assert "big.png: size [128, 128], the training images about [32, 32]" in err
    assert "dark.png: intensities" in err and "another modality, window or scaling" in err
    assert "big.png: intensities" not in err
