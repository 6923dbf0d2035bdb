"""Semi-supervised segmentation with few labels: supervised-only, mean teacher, DAN and Hung et al.

    python benchmarks/semi.py --data-root ../shared/data

Tasks: abdominal CT with 1, 2 and 4 labeled training patients (configs/ct.yaml; the 6 validation patients of
split seed 0 are fixed, the other 16 are the training pool: for each seed a different draw of labeled
patients, the rest unlabeled) and DRIVE with 2 labeled training images (configs/drive.yaml: images 36-40
validate; the other 13 training images and the 20 test images, whose labels are withheld, are the unlabeled
pool). Each method sees the same labeled patients for a given seed. Model selection on validation mean Dice.
CPU size: CT slices resized to --size, DRIVE random crops of --size; batch --batch-size labeled +
--batch-size unlabeled. Runs live in runs/bench/semi/ and are reused or resumed.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from common import REPO, default_data_root, fit_or_reuse, mean_std, update_results_md, write_json

from weakseg.config import Config, load_config
from weakseg.data import build_datasets

METHODS = ("supervised", "mean_teacher", "dan", "hung")
TASKS = {"ct1": ("ct", 1), "ct2": ("ct", 2), "ct4": ("ct", 4), "drive2": ("drive", 2)}


def _splits(args, kind: str, n_labeled: int, seed: int) -> dict[str, list[str]]:
    """Fixed validation cases; ``n_labeled`` training cases drawn with ``seed``, the rest unlabeled."""
    if kind == "drive":
        base = load_config(REPO / "configs" / "drive.yaml").data.splits
        pool, val = list(base["labeled"]), list(base["val"])
    else:
        cfg = load_config(REPO / "configs" / "ct.yaml")
        cfg.data.root = str(args.data_root / "abdominal_ct_mr" / "ct")
        sets = build_datasets(cfg.data)  # split seed 0: 16 training, 6 validation patients
        pool, val = sets["labeled"].case_ids, sets["val"].case_ids
    labeled = sorted(random.Random(1000 + seed).sample(sorted(pool), n_labeled))
    return {"labeled": labeled, "unlabeled": [c for c in pool if c not in labeled], "val": val}


def config(args, task: str, method: str, seed: int) -> Config:
    kind, n_labeled = TASKS[task]
    base = REPO / "configs" / ("drive.yaml" if kind == "drive" else "ct.yaml")
    overrides = [
        f"method.name={method}",
        f"train.seed={seed}",
        f"train.max_steps={args.steps}",
        f"train.eval_every={args.eval_every}",
        f"train.batch_size={args.batch_size}",
        f"train.stream_batch_sizes={{unlabeled: {args.batch_size}}}",
        f"train.name={task}_{method}_s{seed}",
    ]
    if method == "hung":
        # paper: self-training from 5k of 20k iterations; discriminator ndf 64 (--hung-ndf 32 at CPU size)
        overrides.append(f"method.params={{semi_start: {args.steps // 4}, ndf: {args.hung_ndf}}}")
    cfg = load_config(base, [*overrides, *args.set])
    cfg.data.splits = _splits(args, kind, n_labeled, seed)
    if kind == "drive":
        cfg.data.root = str(args.data_root / "drive" / "train")
        cfg.data.unlabeled_dirs = [str(args.data_root / "drive" / "test" / "images")]
        cfg.augment.transforms = [
            {**t, "size": [args.size] * 2} if t["name"] == "crop" else t for t in cfg.augment.transforms
        ]
        cfg.augment.streams = ["labeled", "unlabeled"]  # crops for the unlabeled full-size images too
    else:
        cfg.data.root = str(args.data_root / "abdominal_ct_mr" / "ct")
        cfg.data.resize = [args.size] * 2
        scale = 256 / args.size
        cfg.data.spacing = [cfg.data.spacing[0], *(s * scale for s in cfg.data.spacing[1:])]
    return cfg


def run_one(args, task: str, method: str, seed: int) -> dict:
    run_dir = REPO / "runs" / "bench" / "semi" / f"{task}_{method}_s{seed}"
    cfg = config(args, task, method, seed)
    result = fit_or_reuse(cfg, run_dir)
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "labeled_cases": cfg.data.splits["labeled"],
        "best_dice": result["best_mean_dice"],
        "best_step": result["best_step"],
    }


def plot(rows: list[dict], methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from weakseg.engine.viz import save_figure

    ct = sorted({TASKS[r["task"]][1] for r in rows if TASKS[r["task"]][0] == "ct"})
    if not ct:
        return
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for m in methods:
        vals = [[r["best_dice"] for r in rows if r["method"] == m and r["task"] == f"ct{n}"] for n in ct]
        mean, std = np.array([np.mean(v) for v in vals]), np.array([np.std(v) for v in vals])
        ax.errorbar(ct, mean, yerr=std, marker="o", capsize=3, label=m)
    ax.set_xlabel("labeled CT training patients (of 16)")
    ax.set_ylabel("validation mean Dice")
    ax.set_xticks(ct)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=default_data_root())
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--size", type=int, default=128, help="CT slices resized to SIZE, DRIVE crops of SIZE")
    ap.add_argument("--batch-size", type=int, default=8, help="labeled and unlabeled samples per batch")
    ap.add_argument("--hung-ndf", type=int, default=64, help="filters of Hung's discriminator (paper: 64)")
    ap.add_argument("--set", action="append", default=[], help="extra config override")
    args = ap.parse_args()
    # seeds outermost: an interrupted run leaves whole seeds behind (rerun with the same flags to resume)
    rows = [run_one(args, t, m, s) for s in args.seeds for t in args.tasks for m in args.methods]
    cmd = "python benchmarks/semi.py " + " ".join(sys.argv[1:])
    write_json(REPO / "benchmarks" / "results" / "semi.json", {"command": cmd, "rows": rows})
    plot(rows, args.methods, REPO / "docs" / "img" / "semi_ct.png")
    lines = ["| task | " + " | ".join(args.methods) + " |", "|---|" + "---|" * len(args.methods)]
    for t in args.tasks:
        cells = [
            mean_std([r["best_dice"] for r in rows if r["task"] == t and r["method"] == m])
            for m in args.methods
        ]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    body = (
        "## Semi-supervised: supervised-only vs mean teacher vs DAN vs Hung et al.\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/semi.json`). Validation mean foreground Dice (CT: the 6 "
        "validation patients of split seed 0, slices stacked per patient; DRIVE: images 36-40), best of the "
        f"evaluations every {args.eval_every} of {args.steps} steps, mean ± std over seeds {args.seeds} (each seed "
        f"draws other labeled cases). CPU size: CT slices {args.size}x{args.size}, DRIVE crops {args.size}, "
        f"{args.batch_size} labeled + {args.batch_size} unlabeled per batch. ctN = N labeled CT patients (the "
        "other training patients unlabeled); drive2 = 2 labeled DRIVE images (13 training + 20 test images "
        "unlabeled). Method defaults of weakseg/methods/semi.py; Hung's self-training starts at a quarter of "
        f"the run, Hung's discriminator has ndf {args.hung_ndf}.\n\n"
        + "\n".join(lines)
        + "\n\n![Dice against labeled CT patients](img/semi_ct.png)\n"
    )
    update_results_md("semi", body)
    print(body)


if __name__ == "__main__":
    main()
