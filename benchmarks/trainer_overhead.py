"""The trainer's overhead: its steps/s against a bare PyTorch loop on the same model, data and batch.

    python benchmarks/trainer_overhead.py

Both train the configs/demo.yaml U-Net on the built-in CT phantoms (128x128, batch 8, Dice + CE, AdamW, poly
LR) in this one process: the bare loop is the textbook one (DataLoader with shuffle, forward, loss, zero_grad,
backward, clip, step, scheduler), the trainer is ``Trainer.fit`` (seeded resumable streams, NaN checks,
logging, progress bar, one last.pt at the end of the timed part). Timed after --warmup steps, --repeats
alternating rounds of --steps steps each; the ratio of the medians is reported (target >= 0.95).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import REPO, command_line, finish, machine, parent_parser, script_parser
from torch.utils.data import DataLoader

from weakseg.config import load_config
from weakseg.data import build_datasets
from weakseg.engine.schedules import build_scheduler
from weakseg.engine.trainer import Trainer, seed_everything
from weakseg.keys import Keys
from weakseg.losses import build_loss
from weakseg.methods.base import BuildContext, make_optimizer


def bare_loop(cfg, dataset, steps: int, warmup: int) -> float:
    """Steps/s of a plain PyTorch training loop."""
    seed_everything(cfg.train.seed)
    net = BuildContext.from_config(cfg).segmenter()
    loss_fn = build_loss(cfg.loss, cfg.data.num_classes)
    opt = make_optimizer(net.parameters(), cfg.optim)
    sched = build_scheduler(opt, cfg.train.max_steps, cfg.optim)
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True)
    it = iter(loader)
    net.train()
    t0 = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        logits = net(batch[Keys.IMAGE])
        loss = loss_fn(logits, batch[Keys.LABEL])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.optim.grad_clip)
        opt.step()
        sched.step()
    return steps / (time.perf_counter() - t0)


def trainer_loop(cfg, steps: int, warmup: int, root: Path, i: int) -> float:
    trainer = Trainer(cfg, run_dir=root / f"run{i}")
    trainer.fit(until=warmup)
    t0 = time.perf_counter()
    trainer.fit(until=warmup + steps)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    shared = parent_parser(steps=150, warmup=10, helps={"steps": "timed steps of each round"})
    ap = script_parser(__doc__, shared)
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds of each loop")
    args = ap.parse_args()
    cfg = load_config(
        REPO / "configs" / "demo.yaml",
        ["train.max_steps=100000", "train.progress=true", "train.save_pictures=false"],
    )
    dataset = build_datasets(cfg.data)["labeled"]
    for i in range(len(dataset)):  # decode (render) every phantom once, for both loops
        dataset[i]
    bare, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            bare.append(bare_loop(cfg, dataset, args.steps, args.warmup))
            ours.append(trainer_loop(cfg, args.steps, args.warmup, Path(tmp), i))
            print(f"round {i}: bare {bare[-1]:.2f} steps/s, trainer {ours[-1]:.2f} steps/s", flush=True)
    ratio = statistics.median(ours) / statistics.median(bare)
    cmd = command_line("trainer_overhead")
    payload = {"command": cmd, "bare_steps_per_s": bare, "trainer_steps_per_s": ours, "ratio": ratio}
    body = (
        "## Trainer overhead: `Trainer.fit` vs a bare PyTorch loop\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/trainer_overhead.json`); {machine()}. configs/demo.yaml "
        f"U-Net, CT phantoms 128x128, batch 8; {args.repeats} alternating rounds of {args.steps} timed steps "
        f"after {args.warmup} warm-up steps.\n\n"
        "| loop | steps/s (median) | rounds |\n|---|---|---|\n"
        f"| bare PyTorch | {statistics.median(bare):.2f} | {', '.join(f'{v:.2f}' for v in bare)} |\n"
        f"| weakseg Trainer | {statistics.median(ours):.2f} | {', '.join(f'{v:.2f}' for v in ours)} |\n\n"
        f"Ratio trainer / bare: **{ratio:.3f}** (target >= 0.95).\n"
    )
    finish("trainer_overhead", payload, body)


if __name__ == "__main__":
    main()
