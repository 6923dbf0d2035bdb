from __future__ import annotations

import json

import pytest
import torch

from tests.catalogue import bad_input
from weakseg.api import load_trained
from weakseg.config import load_config
from weakseg.data import DataError
from weakseg.engine.checkpoint import CheckpointError, load_checkpoint
from weakseg.engine.trainer import NonFiniteWeightsError, Trainer
from weakseg.methods import NonFiniteLossError


def _cfg(path, *overrides):
    return load_config(path, ["train.save_pictures=false", *overrides])


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.method.state_dict().items()}


def test_fit_writes_run_folder(tiny_cfg_path, tmp_path):
    cfg = load_config(tiny_cfg_path)
    result = Trainer(cfg, run_dir=tmp_path / "run").fit()
    run = tmp_path / "run"
    for name in (
        "best.pt",
        "last.pt",
        "metrics.jsonl",
        "metrics.csv",
        "curves.png",
        "config.json",
        "summary.json",
        "val_per_case.csv",
        "overlay_step000002.png",
    ):
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
    with pytest.raises(NonFiniteLossError, match="loss term .seg \\(dice_ce\\). is nan at step 3"):
        trainer.fit()
    ckpt = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state"].values() if v.is_floating_point())


def test_huge_finite_loss_never_saves_nan_weights(tiny_cfg_path, tmp_path):
    """lr 1e10: every loss term stays finite for a step while the weights turn NaN; nothing NaN is saved, the
    good checkpoint of step 2 is kept, and evaluate/resume refuse a NaN checkpoint written by hand."""
    run = tmp_path / "r"
    cfg = _cfg(tiny_cfg_path, "train.max_steps=6", "train.eval_every=2")
    trainer = Trainer(cfg, run_dir=run)
    trainer.fit(until=2)
    good = (run / "last.pt").read_bytes()
    with torch.no_grad():  # what a step with lr 1e10 did to the weights, while its loss was finite
        next(trainer.method.parameters()).fill_(float("inf"))
    what = "weights that turned NaN under a finite loss"
    with bad_input(what, NonFiniteWeightsError, "non-finite at step 2.*last.pt is kept"):
        trainer.save_checkpoint("last.pt")
    assert (run / "last.pt").read_bytes() == good
    fresh = tmp_path / "lr"
    with pytest.raises(NonFiniteLossError):
        Trainer(
            _cfg(tiny_cfg_path, "optim.lr=1e10", "train.max_steps=4", "train.eval_every=2"), run_dir=fresh
        ).fit()
    for name in ("last.pt", "best.pt"):
        if (fresh / name).exists():
            ckpt = load_checkpoint(fresh / name)
            assert all(torch.isfinite(v).all() for v in ckpt["state"].values() if v.is_floating_point())
    ckpt = torch.load(run / "last.pt", weights_only=True)
    key = next(k for k, v in ckpt["state"].items() if v.is_floating_point())
    ckpt["state"][key] = torch.full_like(ckpt["state"][key], float("nan"))
    torch.save(ckpt, tmp_path / "nan.pt")
    with bad_input(
        "a checkpoint with NaN weights",
        CheckpointError,
        "holds non-finite weights .* " + key.replace(".", "\\."),
    ):
        load_trained(tmp_path / "nan.pt")


def test_resume_advice_does_not_go_in_a_circle(tiny_cfg_path, tmp_path):
    run = tmp_path / "r"
    cfg = _cfg(tiny_cfg_path, "train.max_steps=2", "train.eval_every=2")
    run.mkdir()
    (run / "config.json").write_text("{}")  # killed after the start, before the first checkpoint
    what = "--resume a run killed before its first checkpoint"
    with bad_input(what, CheckpointError, "before its first checkpoint.*--overwrite \\(safe"):
        Trainer(cfg, run_dir=run, resume=True)
    what = "re-running a run killed before its first checkpoint"
    with bad_input(what, FileExistsError, "before its first checkpoint.*--overwrite starts it over"):
        Trainer(cfg, run_dir=run)
    Trainer(cfg, run_dir=run, overwrite=True).fit()
    done = Trainer(cfg, run_dir=run, resume=True)
    assert done.step == 2 and done.fit()["step"] == 2  # a finished run: nothing trained, said on the console


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
    cfg = _cfg(
        tiny_cfg_path,
        "train.max_steps=20",
        "train.eval_every=1",
        "train.early_stop_patience=2",
        "optim.lr=1e-30",  # below float32 resolution: the weights never change
        "optim.weight_decay=0.0",
    )
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
    assert list((tmp_path / "r" / "wandb").glob("offline-run-*")), (
        "wandb offline files belong in the run folder"
    )


@pytest.mark.parametrize("schedule", ["constant", "poly", "cosine", "linear", "constant_linear"])
def test_lr_schedules(schedule):
    from weakseg.config import OptimConfig
    from weakseg.engine.schedules import lr_factor

    cfg = OptimConfig(schedule=schedule, warmup_steps=2)
    assert lr_factor(0, 10, cfg) == pytest.approx(0.5)  # warmup
    assert lr_factor(2, 10, cfg) == pytest.approx(1.0)
    end = lr_factor(10, 10, cfg)
    assert end == pytest.approx(1.0 if schedule == "constant" else 0.0)
    mid = lr_factor(6, 10, cfg)
    expected = {"constant": 1.0, "poly": 0.5**0.9, "cosine": 0.5, "linear": 0.5, "constant_linear": 1.0}[
        schedule
    ]
    assert mid == pytest.approx(expected)


def _write_folder(root, sizes):
    import numpy as np
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        label = np.zeros((h, w), np.uint8)
        label[h // 4 : h // 2, w // 4 : w // 2] = 1
        image = (rng.random((h, w)) * 60 + label * 150).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"x_p{i:02d}.png")
        Image.fromarray(label).save(root / "masks" / f"x_p{i:02d}.png")
    return root


def test_trains_on_sizes_not_divisible_and_mixed(tiny_cfg_path, tmp_path):
    """30x30 and 27x35 images: batches are padded to the network's divisor, predictions cropped back."""
    root = _write_folder(tmp_path / "d", [(30, 30), (27, 35), (30, 30), (27, 35), (31, 29), (30, 30)])
    cfg = _cfg(
        tiny_cfg_path,
        "data.source=folder",
        "data.num_classes=2",
        "data.class_names=[bg, fg]",
        "train.max_steps=2",
        "train.eval_every=2",
        "train.batch_size=3",
    )
    cfg.data.root = str(root)
    trainer = Trainer(cfg, run_dir=tmp_path / "r")
    result = trainer.fit()
    assert result["step"] == 2 and result["last"]["mean_dice"] == result["last"]["mean_dice"]  # not NaN
    from weakseg.methods.infer import predict_logits

    with torch.no_grad():  # padded to the divisor inside, cropped back to the input's own size
        assert predict_logits(trainer.method.eval(), torch.rand(1, 1, 27, 35)).shape == (1, 2, 27, 35)
    rows = (tmp_path / "r" / "val_per_case.csv").read_text().splitlines()
    assert len(rows) - 1 == len(trainer.datasets["val"].case_ids) > 0  # every validation case evaluated


def test_failed_start_leaves_no_run_folder(tiny_cfg_path, tmp_path):
    cfg = _cfg(tiny_cfg_path, "data.source=folder")
    cfg.data.root = str(tmp_path / "missing")
    with pytest.raises(ValueError):
        Trainer(cfg, run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match='Did you mean "mean_dice"'):
        Trainer(_cfg(tiny_cfg_path, "train.key_metric=mean_dsc"), run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run(tiny_cfg_path, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a weakseg run folder"):
        Trainer(_cfg(tiny_cfg_path), run_dir=tmp_path / "r", overwrite=True)
    assert (tmp_path / "r" / "notes.txt").read_text() == "keep me"


def test_pause_off_the_eval_grid_and_truncated_log(tiny_cfg_path, tmp_path):
    """Pausing at a step that is not an evaluation step adds no evaluation; a cut log line does not block resume."""
    cfg = _cfg(tiny_cfg_path, "train.max_steps=4", "train.eval_every=2")
    full = Trainer(cfg, run_dir=tmp_path / "full")
    full.fit()
    first = Trainer(cfg, run_dir=tmp_path / "split")
    first.fit(until=3)
    with (tmp_path / "split" / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "spl')  # a crash mid-append
    resumed = Trainer(cfg, run_dir=tmp_path / "split", resume=True)
    resumed.fit()

    def val(run):
        rows = [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [r for r in rows if r["split"] == "val"]

    assert val("full") == val("split")
    assert all(torch.equal(a, b) for a, b in zip(_weights(full).values(), _weights(resumed).values()))


@pytest.mark.parametrize("backend", ["torch", "monai", "albumentations"])
def test_augmented_training_resumes_exactly_with_any_worker_count(backend, tiny_cfg_path, tmp_path):
    """Augmentation randomness is keyed by (seed, step) or (seed, draw): a run paused and resumed with loader
    workers gives the same weights as one uninterrupted run without workers."""
    elastic = "elastic_dense" if backend == "albumentations" else "elastic_grid"
    pipeline = f"[{{name: rotate, p: 0.7}}, {{name: {elastic}, p: 0.7}}, {{name: gamma, p: 0.5}}]"
    common = [
        "train.max_steps=4",
        "train.eval_every=2",
        f"augment.backend={backend}",
        f"augment.transforms={pipeline}",
    ]
    full = Trainer(_cfg(tiny_cfg_path, *common), run_dir=tmp_path / "full")
    full.fit()
    workers = _cfg(tiny_cfg_path, *common, "train.num_workers=2")
    Trainer(workers, run_dir=tmp_path / "split").fit(until=2)
    resumed = Trainer(workers, run_dir=tmp_path / "split", resume=True)
    resumed.fit()
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    plain = Trainer(
        _cfg(tiny_cfg_path, "train.max_steps=4", "train.eval_every=2"), run_dir=tmp_path / "plain"
    )
    plain.fit()
    assert any(not torch.equal(a[k], v) for k, v in _weights(plain).items())  # augmentation did something


def test_crop_size_must_suit_the_network(tiny_cfg_path, tmp_path):
    cfg = _cfg(tiny_cfg_path, "augment.transforms=[{name: crop, size: [30, 30]}]")
    with pytest.raises(
        ValueError, match=r"crop size \[30, 30\] is not a multiple of the network's size divisor 4"
    ):
        Trainer(cfg, run_dir=tmp_path / "r")


def test_constant_then_linear_schedule():
    from weakseg.config import OptimConfig
    from weakseg.engine.schedules import lr_factor

    cfg = OptimConfig(schedule="constant_linear", decay_start=0.5)
    assert [lr_factor(s, 100, cfg) for s in (0, 50, 75, 100)] == pytest.approx([1.0, 1.0, 0.5, 0.0])


@pytest.mark.parametrize("kind", ["text", "garbage", "truncated", "object", "plain_dict"])
def test_corrupt_checkpoints_are_named_without_unsafe_advice(tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    good = tmp_path / "ok.pt"
    torch.save({"a": torch.ones(3)}, good)
    if kind == "text":
        path.write_text("hello")  # torch raises a bare KeyError: 101
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 2)
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[:100])
    elif kind == "object":
        torch.save({"x": Exception("a Python object")}, path)
    else:
        torch.save({"a": torch.ones(3)}, path)
    with bad_input(
        f"checkpoint file: {kind.replace('_', ' ')}", CheckpointError, "not a weakseg checkpoint"
    ) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert str(path) in msg and (
        "corrupt or not a weakseg checkpoint" in msg or "not a weakseg checkpoint" in msg
    )
    assert "weights_only" not in msg and "KeyError: 101" not in msg


def _png_folder(root, n: int = 6, bad: int | None = None):
    import numpy as np
    from PIL import Image

    for d in ("images", "masks"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((32, 32), 20 * i, np.uint8)).save(root / "images" / f"x_p{i:02d}.png")
        Image.fromarray(np.eye(32, dtype=np.uint8)).save(root / "masks" / f"x_p{i:02d}.png")
    if bad is not None:
        (root / "images" / f"x_p{bad:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(tiny_cfg_path, tmp_path):
    folder = [
        "data.source=folder",
        "data.num_classes=2",
        "data.class_names=[bg, fg]",
        "data.val_fraction=0.34",
    ]
    good = _png_folder(tmp_path / "good")
    run = tmp_path / "r"
    cfg = _cfg(tiny_cfg_path, *folder, f"data.root={good}", "train.max_steps=2", "train.eval_every=2")
    Trainer(cfg, run_dir=run).fit()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    bad = _png_folder(tmp_path / "bad", bad=2)  # a broken file in the middle: found by the loader mid-run
    cfg_bad = _cfg(tiny_cfg_path, *folder, f"data.root={bad}", "train.max_steps=4", "train.eval_every=4")
    with pytest.raises(Exception, match="cannot decode"):
        Trainer(cfg_bad, run_dir=run, overwrite=True).fit()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    with bad_input("a broken image in the middle of the data", DataError, "cannot decode .*x_p02.png"):
        Trainer(cfg_bad, run_dir=tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert not [p for p in tmp_path.iterdir() if ".replaced-" in p.name]
    Trainer(cfg, run_dir=run, overwrite=True).fit()  # a new run that reaches its checkpoint replaces it
    assert not [p for p in tmp_path.iterdir() if ".replaced-" in p.name]


def test_resume_removes_temp_files_of_a_killed_checkpoint_write(tiny_cfg_path, tmp_path):
    run = tmp_path / "r"
    cfg = _cfg(tiny_cfg_path, "train.max_steps=4", "train.eval_every=2")
    Trainer(cfg, run_dir=run).fit(until=2)
    stale = run / ".last.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    Trainer(cfg, run_dir=run, resume=True)
    assert not stale.exists() and (run / "last.pt").is_file()


def test_training_learns(tiny_cfg_path, tmp_path):
    """150 steps on the tiny phantoms clear a Dice floor far above an untrained network's (about 0.09)."""
    cfg = _cfg(
        tiny_cfg_path, "train.max_steps=150", "train.eval_every=150", "train.batch_size=4", "optim.lr=0.01"
    )
    first = Trainer(
        _cfg(tiny_cfg_path, "train.max_steps=1", "train.eval_every=1"), run_dir=tmp_path / "a"
    ).fit()
    trained = Trainer(cfg, run_dir=tmp_path / "b").fit()
    assert first["last"]["mean_dice"] < 0.2 < 0.4 < trained["last"]["mean_dice"]


def test_kill_9_then_resume_is_bit_identical(tiny_cfg_path, tmp_path):
    """A training process killed with SIGKILL mid-run resumes to the same weights as an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    sets = ["train.max_steps=60", "train.eval_every=10", "train.save_pictures=false", "train.progress=false"]
    args = [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    cmd = [sys.executable, "-m", "weakseg", "train", str(tiny_cfg_path), *args]
    subprocess.run(
        [*cmd, "--set", f"train.run_dir={straight}"], check=True, env=env, capture_output=True, timeout=240
    )
    proc = subprocess.Popen([*cmd, "--set", f"train.run_dir={killed}"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 200
    while time.time() < deadline and not (killed / "last.pt").is_file() and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step = torch.load(killed / "last.pt", weights_only=True)["step"] if (killed / "last.pt").is_file() else 0
    if step >= 60:
        pytest.skip("the run finished before it could be killed")
    subprocess.run([sys.executable, "-m", "weakseg", "train", "--resume", str(killed)], check=True, env=env,
                   capture_output=True, timeout=240)  # fmt: skip
    a, b = (torch.load(r / "last.pt", weights_only=True) for r in (straight, killed))
    assert a["step"] == b["step"] == 60
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
