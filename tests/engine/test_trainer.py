from __future__ import annotations

import json

import pytest
import torch

from weakseg.config import load_config
from weakseg.engine.checkpoint import CheckpointError, load_checkpoint
from weakseg.engine.trainer import Trainer
from weakseg.methods import NonFiniteLossError


def _cfg(path, *overrides):
    return load_config(path, ["train.save_pictures=false", *overrides])


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.method.state_dict().items()}


def test_fit_writes_run_folder(tiny_cfg_path, tmp_path):
    cfg = load_config(tiny_cfg_path)
    result = Trainer(cfg, run_dir=tmp_path / "run").fit()
    run = tmp_path / "run"
    for name in ("best.pt", "last.pt", "metrics.jsonl", "metrics.csv", "curves.png", "config.json",
                 "summary.json", "val_per_case.csv", "overlay_step000002.png"):
        assert (run / name).is_file(), name
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "val"] == [2, 4]
    assert result["step"] == 4 and 0.0 <= result["best_mean_dice"] <= 1.0
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 4 and ckpt["method"] == "supervised" and ckpt["config"]["train"]["max_steps"] == 4


def test_resume_is_exact(tiny_cfg_path, tmp_path):
    """N steps, stop, resume N steps == 2N steps uninterrupted (same weights, bit for bit on CPU)."""
    cfg = _cfg(tiny_cfg_path, "train.max_steps=6", "train.eval_every=3")
    full = Trainer(cfg, run_dir=tmp_path / "full")
    full.fit()
    first = Trainer(cfg, run_dir=tmp_path / "split")
    first.fit(until=3)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == 3
    resumed = Trainer(cfg, run_dir=tmp_path / "split", resume=True)
    assert resumed.step == 3
    resumed.fit()
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # one trajectory, no duplicated records


def test_existing_run_folder_is_refused(tiny_cfg_path, tmp_path):
    cfg = _cfg(tiny_cfg_path, "train.max_steps=1")
    Trainer(cfg, run_dir=tmp_path / "r").fit()
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(cfg, run_dir=tmp_path / "r")
    Trainer(cfg, run_dir=tmp_path / "r", overwrite=True)
    with pytest.raises(CheckpointError, match="no last.pt"):
        Trainer(cfg, run_dir=tmp_path / "empty", resume=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_cfg_path, tmp_path):
    cfg = _cfg(tiny_cfg_path, "train.max_steps=6", "train.eval_every=2")
    trainer = Trainer(cfg, run_dir=tmp_path / "r")
    original = trainer.method.loss.forward

    def poisoned(logits, target):
        value = original(logits, target)
        return value * float("nan") if trainer.step >= 3 else value

    trainer.method.loss.forward = poisoned
    with pytest.raises(NonFiniteLossError, match="loss term 'seg' is nan at step 3"):
        trainer.fit()
    ckpt = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state"].values() if v.is_floating_point())


def test_failed_checkpoint_write_keeps_previous(tiny_cfg_path, tmp_path, monkeypatch):
    cfg = _cfg(tiny_cfg_path, "train.max_steps=2", "train.eval_every=2")
    trainer = Trainer(cfg, run_dir=tmp_path / "r")
    trainer.fit()
    before = (tmp_path / "r" / "last.pt").read_bytes()

    def broken_save(obj, f, *a, **kw):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        trainer.save_checkpoint("last.pt")
    monkeypatch.undo()
    assert (tmp_path / "r" / "last.pt").read_bytes() == before
    assert load_checkpoint(tmp_path / "r" / "last.pt")["step"] == 2
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_early_stopping(tiny_cfg_path, tmp_path):
    cfg = _cfg(tiny_cfg_path, "train.max_steps=20", "train.eval_every=1", "train.early_stop_patience=2",
               "optim.lr=0.0", "optim.weight_decay=0.0")
    result = Trainer(cfg, run_dir=tmp_path / "r").fit()
    assert result["step"] == 3 and result["best_step"] == 1  # lr 0: the metric never improves after step 1


def test_same_seed_same_numbers(tiny_cfg_path, tmp_path):
    cfg = _cfg(tiny_cfg_path, "train.max_steps=3", "train.eval_every=3")
    a = Trainer(cfg, run_dir=tmp_path / "a").fit()
    b = Trainer(cfg, run_dir=tmp_path / "b").fit()
    assert a["last"] == b["last"]


def test_loader_workers_do_not_change_the_trajectory(tiny_cfg_path, tmp_path):
    cfg0 = _cfg(tiny_cfg_path, "train.max_steps=3", "train.eval_every=3")
    cfg2 = _cfg(tiny_cfg_path, "train.max_steps=3", "train.eval_every=3", "train.num_workers=2")
    a = Trainer(cfg0, run_dir=tmp_path / "a")
    a.fit()
    b = Trainer(cfg2, run_dir=tmp_path / "b")
    b.fit()
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_wandb_offline_writes_into_run_folder(tiny_cfg_path, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = _cfg(tiny_cfg_path, "train.max_steps=2", "train.eval_every=2", "train.wandb.enabled=true")
    Trainer(cfg, run_dir=tmp_path / "r").fit()
    assert list((tmp_path / "r" / "wandb").glob("offline-run-*")), "wandb offline files belong in the run folder"


@pytest.mark.parametrize("schedule", ["constant", "poly", "cosine", "linear"])
def test_lr_schedules(schedule):
    from weakseg.config import OptimConfig
    from weakseg.engine.schedules import lr_factor

    cfg = OptimConfig(schedule=schedule, warmup_steps=2)
    assert lr_factor(0, 10, cfg) == pytest.approx(0.5)  # warmup
    assert lr_factor(2, 10, cfg) == pytest.approx(1.0)
    end = lr_factor(10, 10, cfg)
    assert end == pytest.approx(1.0 if schedule == "constant" else 0.0)
    mid = lr_factor(6, 10, cfg)
    expected = {"constant": 1.0, "poly": 0.5**0.9, "cosine": 0.5, "linear": 0.5}[schedule]
    assert mid == pytest.approx(expected)
