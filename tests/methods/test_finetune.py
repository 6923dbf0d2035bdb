"""Fine-tuning a pretrained encoder: freeze for K steps, encoder LR scale, BatchNorm kept, CLI round trip."""

from __future__ import annotations

import pytest
import torch

from weakseg.config import load_config
from weakseg.data import build_datasets
from weakseg.engine.schedules import build_scheduler
from weakseg.engine.streams import BatchStream
from weakseg.methods import StepContext, build_method

NET = "{encoder: resnet18, weights: none, decoder_channels: [16, 8, 8, 8, 8]}"
ENCODER_UNET = ["model.network=encoder_unet", f"model.params={NET}", "data.phantom_size=64"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is fastest


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module, kind: str = "") -> set[str]:
    return {k for k, v in module.state_dict().items() if kind in k and not torch.equal(v, before[k])}


def test_freeze_then_unfreeze_with_scaled_encoder_lr(tiny_cfg_path):
    cfg = load_config(
        tiny_cfg_path,
        [*ENCODER_UNET, "method.params={freeze_encoder_steps: 2, encoder_lr_scale: 0.1}", "optim.lr=0.001"],
    )
    method = build_method(cfg)
    opt = method.configure_optimizers()["net"]
    groups = {g["name"]: g for g in opt.param_groups}
    assert [g["name"] for g in opt.param_groups] == ["decoder", "encoder"]  # the logged lr is the decoder's
    assert groups["decoder"]["lr"] == pytest.approx(1e-3) and groups["encoder"]["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in groups["encoder"]["params"]} == {id(p) for p in method.net.encoder_parameters()}
    sched = build_scheduler(opt, 10, cfg.optim)
    ctx = StepContext(torch.device("cpu"), {"net": opt}, max_steps=10)
    stream = BatchStream(build_datasets(cfg.data)["labeled"], 2, seed=0)
    encoder, decoder = method.net.encoder, method.net.unet.decoder
    method.train()
    for step in range(4):
        enc_before, dec_before = _snapshot(encoder), _snapshot(decoder)
        ctx.step = step
        method.train_step({"labeled": next(stream)}, step, ctx)
        sched.step()
        frozen = step < 2
        assert encoder.training is not frozen and decoder.training
        assert _changed(dec_before, decoder, "running_mean"), "the decoder's BatchNorm always trains"
        if frozen:
            assert not _changed(enc_before, encoder), f"step {step}: frozen encoder weights or BN stats moved"
        else:
            assert _changed(enc_before, encoder, "weight"), f"step {step}: the encoder did not train"
            assert _changed(enc_before, encoder, "running_var"), f"step {step}: BN stats did not update"
    ratio = opt.param_groups[1]["lr"] / opt.param_groups[0]["lr"]
    assert ratio == pytest.approx(0.1)  # the schedule multiplies both groups alike


def test_finetune_params_need_an_encoder_and_sane_values(tiny_cfg_path):
    with pytest.raises(ValueError, match='need a network with a pretrained encoder.*network "unet"'):
        build_method(load_config(tiny_cfg_path, ["method.params.freeze_encoder_steps=2"]))
    build_method(load_config(tiny_cfg_path, ["method.params.encoder_lr_scale=1.0"]))  # defaults are fine
    with pytest.raises(ValueError, match="freeze_encoder_steps must be >= 0"):
        build_method(load_config(tiny_cfg_path, [*ENCODER_UNET, "method.params.freeze_encoder_steps=-1"]))
    with pytest.raises(ValueError, match="encoder_lr_scale must be > 0"):
        build_method(load_config(tiny_cfg_path, [*ENCODER_UNET, "method.params.encoder_lr_scale=0"]))


def test_cli_train_resume_exact_and_predict(tiny_cfg_path, tmp_path):
    """`weakseg train` with encoder_unet runs; pausing across the unfreeze step and resuming is exact;
    `weakseg predict` works on the checkpoint."""
    from tests.test_cli import _phantom_folder
    from weakseg.cli import main
    from weakseg.engine.checkpoint import load_checkpoint

    sets = [*ENCODER_UNET, "method.params.freeze_encoder_steps=1", "train.max_steps=2", "train.eval_every=2"]
    sets += ["train.save_pictures=false", "data.phantom_cases=4", "data.val_fraction=0.25"]
    args = [a for s in sets for a in ("--set", s)]
    whole, paused = tmp_path / "whole", tmp_path / "paused"
    assert main(["train", str(tiny_cfg_path), *args, "--set", f"train.run_dir={whole}"]) == 0
    assert main(["train", str(tiny_cfg_path), *args, "--set", f"train.run_dir={paused}", "--until", "1"]) == 0
    assert main(["train", "--resume", str(paused)]) == 0
    a, b = load_checkpoint(whole / "last.pt"), load_checkpoint(paused / "last.pt")
    assert a["step"] == b["step"] == 2
    for key, value in a["state"].items():
        assert torch.equal(value, b["state"][key]), key
    data = _phantom_folder(tmp_path / "data", n=1, size=48)  # 48 is padded to 64 and cropped back
    out = tmp_path / "pred"
    assert main(["predict", str(whole / "last.pt"), str(data / "images"), str(out)]) == 0
    assert len(list(out.glob("*.png"))) == 2


def test_predict_and_resume_need_no_imagenet_file(tmp_path, monkeypatch, tiny_cfg_path):
    """A resnet18 U-Net trained from a local weights file still predicts and resumes after the file is gone."""
    import torchvision

    from weakseg.cli import main

    weights = tmp_path / "w"
    weights.mkdir()
    torch.save(torchvision.models.resnet18().state_dict(), weights / "resnet18-f37072fd.pth")
    monkeypatch.setenv("WEAKSEG_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    run = tmp_path / "run"
    common = [
        "--set",
        f"train.run_dir={run}",
        "--set",
        "model.network=encoder_unet",
        "--set",
        "model.params={encoder: resnet18, weights: imagenet, decoder_channels: [16, 8, 8, 8, 8]}",
        "--set",
        "train.max_steps=2",
        "--set",
        "train.eval_every=2",
        "--set",
        "train.save_pictures=false",
    ]
    assert main(["train", str(tiny_cfg_path), *common, "--until", "1"]) == 0
    (weights / "resnet18-f37072fd.pth").unlink()
    assert main(["train", "--resume", str(run)]) == 0
    assert main(["evaluate", str(run / "last.pt"), "--out", str(tmp_path / "e.csv")]) == 0


def test_encoder_weights_from_a_weakseg_checkpoint(tmp_path, tiny_cfg_path):
    """Start a model from another run's checkpoint (e.g. MR from CT): its encoder tensors are taken as is."""
    from weakseg.engine.checkpoint import load_checkpoint
    from weakseg.nets import build_network

    run = tmp_path / "run"
    assert _train_one_step(tiny_cfg_path, run, "resnet18") == 0
    net = build_network(
        "encoder_unet",
        2,
        1,
        5,
        encoder="resnet18",
        weights=str(run / "last.pt"),
        decoder_channels=[16, 8, 8, 8, 8],
    )
    saved = load_checkpoint(run / "last.pt")["state"]
    for k, v in net.encoder.state_dict().items():
        assert torch.equal(v, saved[f"net.unet.encoder.{k}"]), k


@pytest.mark.parametrize(
    "encoder", ["vgg11", "vgg16", "resnet18", "resnet34", "resnet50", "efficientnet_lite0"]
)
def test_train_and_predict_with_every_encoder(encoder, tmp_path, tiny_cfg_path):
    from tests.test_cli import _phantom_folder
    from weakseg.cli import main

    run = tmp_path / "run"
    assert _train_one_step(tiny_cfg_path, run, encoder, "train.batch_size=2") == 0
    data = _phantom_folder(tmp_path / "data", n=1)
    assert main(["predict", str(run / "last.pt"), str(data / "images"), str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 2


def test_freeze_encoder_bn_keeps_statistics_after_unfreezing(tiny_cfg_path):
    cfg = load_config(
        tiny_cfg_path,
        [
            "model.network=encoder_unet",
            "model.params={encoder: resnet18, weights: none, decoder_channels: [16, 8, 8, 8, 8]}",
            "method.params={freeze_encoder_steps: 0, freeze_encoder_bn: true}",
        ],
    )
    method = build_method(cfg)
    batch = {"labeled": next(BatchStream(build_datasets(cfg.data)["labeled"], 2, seed=0))}
    ctx = StepContext(torch.device("cpu"), method.configure_optimizers(), max_steps=4)
    bn = next(m for m in method.net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    method.train()
    method.train_step(batch, 0, ctx)
    assert torch.equal(bn.running_mean, before) and bn.weight.grad is not None
    with pytest.raises(ValueError, match="freeze_encoder_bn needs a network with an encoder"):
        build_method(load_config(tiny_cfg_path, ["method.params={freeze_encoder_bn: true}"]))


def _train_one_step(config, run, encoder: str, *overrides: str) -> int:
    """``weakseg train`` of a tiny encoder_unet (random init) for one step into ``run``."""
    from weakseg.cli import main

    params = f"{{encoder: {encoder}, weights: none, decoder_channels: [16, 8, 8, 8, 8]}}"
    sets = [
        f"train.run_dir={run}",
        "model.network=encoder_unet",
        f"model.params={params}",
        "train.max_steps=1",
        "train.eval_every=1",
        "train.save_pictures=false",
        *overrides,
    ]
    return main(["train", str(config), *[a for s in sets for a in ("--set", s)]])
