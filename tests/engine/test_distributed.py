"""DDP on CPU: two gloo processes launched by torchrun follow the single-process loss trajectory with the same
global batch (supervised and CycleGAN), write checkpoints once (rank 0), and bad setups fail clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

TINY = str(REPO / "configs" / "tiny.yaml")
BASE = ["train.max_steps=4", "train.batch_size=4", "train.log_every=1", "train.save_pictures=false"]
CYCLEGAN = [
    "method.name=cyclegan",
    "target={phantom_modality: mr}",
    "method.params={generator: resnet_6, ngf: 8, ndf: 8, pool_size: 0}",
]
# torchrun runs this: weakseg's CLI with every checkpoint write logged (rank, file), to check who writes
LAUNCHER = """
import os, sys
import weakseg.engine.trainer as trainer
from weakseg.cli import main
log, save = os.environ["SAVE_LOG"], trainer.atomic_torch_save
def logged(obj, path):
    with open(log, "a") as f:
        f.write(f"{os.environ.get('RANK', '0')} {os.path.basename(str(path))}\\n")
    save(obj, path)
trainer.atomic_torch_save = logged
sys.exit(main(sys.argv[1:]))
"""


def _run(tmp_path: Path, run: Path, sets: list[str], procs: int, port: int, extra: tuple[str, ...] = ()):
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SAVE_LOG": str(tmp_path / f"{run.name}.saves")}
    head = [sys.executable, str(script)]
    if procs > 1:
        head = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={procs}",
            f"--master_port={port}",
            str(script),
        ]
    args = ["train", TINY, *[a for s in [*sets, f"train.run_dir={run}"] for a in ("--set", s)], *extra]
    return subprocess.run([*head, *args], capture_output=True, text=True, env=env, timeout=240)


def _losses(run: Path, key: str) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in records if r["split"] == "train"]


@pytest.mark.parametrize(("sets", "key", "port"), [(BASE, "loss", 29531), (BASE + CYCLEGAN, "loss_G", 29532)])
def test_two_processes_follow_the_single_process_trajectory(tmp_path, sets, key, port):
    single = _run(tmp_path, tmp_path / "single", sets, 1, port)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = _run(tmp_path, tmp_path / "ddp", sets, 2, port)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    a, b = _losses(tmp_path / "single", key), _losses(tmp_path / "ddp", key)
    assert len(a) == len(b) == 4
    assert b == pytest.approx(
        a, rel=1e-3
    )  # the same samples and averaged gradients; float summation order differs
    saves = (tmp_path / "ddp.saves").read_text().split()
    assert set(saves[0::2]) == {"0"}, "only rank 0 writes checkpoints"
    assert saves[1::2] == (tmp_path / "single.saves").read_text().split()[1::2]  # each one once
    assert ddp.stdout.count("run folder:") == 1


def test_indivisible_batch_and_resume_with_another_world_size(tmp_path):
    bad = _run(tmp_path, tmp_path / "bad", [*BASE, "train.batch_size=3"], 2, 29533)
    assert bad.returncode != 0 and "global batch 3 is not divisible by the 2 processes" in bad.stderr
    first = _run(tmp_path, tmp_path / "run", [*BASE, "train.max_steps=6"], 2, 29534, ("--until", "2"))
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = subprocess.run(
        [sys.executable, "-m", "weakseg", "train", "--resume", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming a run of 2 process(es) with 1" in resumed.stderr + resumed.stdout
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["step"] == 6


# torchrun runs this: two steps of every registered method under DDP (2 gloo processes), one run each
EVERY_METHOD = """
import json, os, sys
from tests.methods.test_methods import method_cfg
from weakseg.engine.trainer import Trainer
from weakseg.methods import METHODS
out, done = sys.argv[1], {}
for name in METHODS.names():
    cfg = method_cfg(name, sys.argv[2], "train.max_steps=2", "train.eval_every=2", "train.batch_size=4",
                     "train.save_pictures=false", "train.progress=false")
    result = Trainer(cfg, run_dir=os.path.join(out, name)).fit()
    done[name] = result["step"]
if os.environ.get("RANK", "0") == "0":
    with open(os.path.join(out, "done.json"), "w") as f:
        json.dump(done, f)
"""


def test_every_method_takes_ddp_steps(tmp_path):
    """docs/distributed.md says DDP works for every method: generated from the registry, one launch."""
    from weakseg.methods import METHODS

    script = tmp_path / "every.py"
    script.write_text(EVERY_METHOD)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29535"]
    res = subprocess.run(
        [*cmd, str(script), str(tmp_path), TINY], capture_output=True, text=True, env=env, timeout=400
    )
    assert res.returncode == 0, res.stderr[-3000:]
    done = json.loads((tmp_path / "done.json").read_text())
    assert done == dict.fromkeys(METHODS.names(), 2)
