"""Networks and losses from outside libraries named by import path (``package.module:Attr``): they train on
the phantoms, and ``weakseg evaluate`` / ``predict`` rebuild the run from its checkpoint alone."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from tests.test_cli import _phantom_folder
from weakseg.cli import main
from weakseg.config import LossConfig
from weakseg.losses import build_loss
from weakseg.nets import build_network

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = str(REPO / "configs" / "tiny.yaml")


def test_monai_network_loss_torchio_and_albumentations_by_import_path_train_evaluate_predict(
    tmp_path, capsys
):
    run = tmp_path / "run"
    args = [
        "--set", "model.network=monai.networks.nets:BasicUNet",
        "--set", "model.params={features: [4, 4, 8, 16, 32, 4]}",
        "--set", "loss.name=monai.losses:DiceFocalLoss",
        "--set", "augment.transforms=[{name: 'torchio:RandomBiasField'}, {name: 'tests.ecosystem.pipelines:ALBU_COMPOSE'}]",
        "--set", "train.max_steps=2", "--set", f"train.run_dir={run}",
    ]  # fmt: skip
    assert main(["train", TINY, *args]) == 0
    assert (run / "best.pt").is_file()
    capsys.readouterr()
    # the checkpoint alone rebuilds the outside network and loss
    assert main(["evaluate", str(run / "best.pt")]) == 0
    assert "mean" in capsys.readouterr().out
    data = _phantom_folder(tmp_path / "data", n=1)
    assert main(["predict", str(run / "best.pt"), str(data / "images"), str(tmp_path / "pred")]) == 0
    assert len(list((tmp_path / "pred").glob("*.png"))) == len(list((data / "images").glob("*.png")))


def test_smp_architecture_by_import_path_gets_channels_and_no_download():
    net = build_network("segmentation_models_pytorch:FPN", 2, 1, 5, encoder_name="resnet18", encoder_depth=5)
    assert net.size_divisor == 32 and net(torch.zeros(1, 1, 64, 64)).shape == (1, 5, 64, 64)


def test_outside_network_divisor_and_unknown_names():
    net = build_network(
        "monai.networks.nets:BasicUNet", 2, 1, 3, features=[4, 4, 8, 16, 32, 4], size_divisor=16
    )
    assert net.size_divisor == 16
    with pytest.raises(KeyError, match='has no attribute "BasicUNett". Did you mean "BasicUNet"'):
        build_network("monai.networks.nets:BasicUNett", 2, 1, 3)
    with pytest.raises(KeyError, match='cannot import module "no_such_package"'):
        build_network("no_such_package:Net", 2, 1, 3)


def test_monai_loss_gets_index_labels_one_hot_and_softmax():
    loss = build_loss(LossConfig(name="monai.losses:DiceLoss"), 3)
    logits = torch.full((2, 3, 8, 8), -20.0)
    label = torch.randint(0, 3, (2, 8, 8))
    logits.scatter_(1, label[:, None], 20.0)  # a perfect prediction
    assert float(loss(logits, label)) < 1e-3
    wrong = logits.roll(1, dims=1)
    assert float(loss(wrong, label)) > 0.5
