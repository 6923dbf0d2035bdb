"""Semi-supervised segmentation with few labels: supervised-only against the weak-strong consistency,
cross-pseudo-supervision and copy-paste methods, and the older mean teacher / DAN / Hung et al.

    python benchmarks/semi.py --data-root ../shared/data

Tasks: abdominal CT with 2 or 4 labeled training patients (configs/ct.yaml; the 6 validation patients of split
seed 0 are fixed, the other 16 are the training pool: each seed draws other labeled patients, the rest are
unlabeled) and DRIVE with 2 labeled training images (configs/drive.yaml: images 36-40 validate; the other 13
training images and the 20 test images, whose labels are withheld, are the unlabeled pool). Every method of a
(task, network, seed) sees the same labeled cases, steps, batch and augmentation. Networks: the core ``unet``
(configs/ct.yaml) and ``encoder_unet`` with the ImageNet EfficientNet-Lite0 encoder and its fine-tuning keys
(configs/ct_pretrained.yaml). The weak view of every method is the config's batched geometric augmentation
(both streams). Model selection on validation mean Dice; the last evaluation is reported beside it. Runs live
in runs/bench/semi/ (``--runs-dir``) and are reused or resumed (rerun the same command after an
interruption).

``--plan`` names the (task, network, method, seeds) rows to run, e.g. ``--plan ct2:unet:supervised,fixmatch:0,1,2``.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from common import (
    REPO,
    command_line,
    default_data_root,
    finish,
    fit_or_reuse,
    git_commit,
    mean_std,
    parent_parser,
    parse,
    script_parser,
    update_results_md,
)

from weakseg.config import Config, load_config
from weakseg.data import build_datasets

METHODS = ("supervised", "fixmatch", "unimatch", "cps", "bcp", "mean_teacher", "dan", "hung")
NETWORKS = ("unet", "encoder_unet")
TASKS = {"ct2": ("ct", 2), "ct4": ("ct", 4), "ct16": ("ct", 16), "drive2": ("drive", 2)}  # ct16: all labeled
# the default plan of the issue: new methods with 3 seeds, the older ones with 1, on the core U-Net; the
# pretrained encoder and DRIVE with supervised + the two best new methods (--best), 3 seeds
DEFAULT_PLAN = [
    "ct2:unet:supervised,fixmatch,unimatch,cps,bcp:0,1,2",
    "ct2:unet:mean_teacher,dan,hung:0",
    "ct2:encoder_unet:supervised,BEST:0,1,2",
    "drive2:unet:supervised,BEST:0,1,2",
]
# weak view: one geometric draw per sample for image and label (labeled) or image (unlabeled)
CT_AUGMENT = [
    {"name": "rotate", "p": 0.5, "degrees": [-15, 15]},
    {"name": "scale", "p": 0.5, "factor": [0.85, 1.2]},
]


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


def run_name(task: str, network: str, method: str, seed: int) -> str:
    return f"{task}_{network}_{method}_s{seed}"


def config(args, task: str, network: str, method: str, seed: int) -> Config:
    kind, n_labeled = TASKS[task]
    base = REPO / "configs" / ("drive.yaml" if kind == "drive" else "ct.yaml")
    overrides = [
        f"method.name={method}",
        f"train.seed={seed}",
        f"train.max_steps={args.steps}",
        f"train.eval_every={args.eval_every}",
        f"train.batch_size={args.batch_size}",
        f"train.stream_batch_sizes={{unlabeled: {args.batch_size}}}",
        f"train.name={run_name(task, network, method, seed)}",
        "train.save_pictures=false",
    ]
    params: dict = {}
    if method == "hung":  # paper: self-training from 5k of 20k iterations
        params.update(semi_start=args.steps // 4, ndf=args.hung_ndf)
    if network == "encoder_unet":
        pre = load_config(REPO / "configs" / "ct_pretrained.yaml")
        # NHWC: the EfficientNet's depthwise convolutions train ~25% faster on CPU too (measured, 1 thread)
        overrides += [f"optim.lr={pre.optim.lr}", "model.network=encoder_unet", "train.channels_last=true"]
        params.update(pre.method.params)  # freeze_encoder_steps, encoder_lr_scale
    cfg = load_config(base, [*overrides, *args.set])
    if network == "encoder_unet":
        cfg.model.params = dict(pre.model.params)
    cfg.method.params = {**params, **cfg.method.params}
    cfg.data.splits = _splits(args, kind, n_labeled, seed)
    cfg.augment.streams = ["labeled", "unlabeled"]  # the weak view of the unlabeled images
    if kind == "drive":
        cfg.data.root = str(args.data_root / "drive" / "train")
        cfg.data.unlabeled_dirs = [str(args.data_root / "drive" / "test" / "images")]
        cfg.augment.transforms = [
            {**t, "size": [args.size] * 2} if t["name"] == "crop" else t for t in cfg.augment.transforms
        ]
    else:
        cfg.data.root = str(args.data_root / "abdominal_ct_mr" / "ct")
        cfg.data.resize = [args.size] * 2
        scale = 256 / args.size
        cfg.data.spacing = [cfg.data.spacing[0], *(s * scale for s in cfg.data.spacing[1:])]
        cfg.augment.backend = "torch"
        cfg.augment.transforms = [dict(t) for t in CT_AUGMENT]
    return cfg


def run_one(args, task: str, network: str, method: str, seed: int) -> dict:
    run_dir = args.runs_dir / run_name(task, network, method, seed)
    cfg = config(args, task, network, method, seed)
    result = fit_or_reuse(cfg, run_dir)
    return {
        "task": task,
        "network": network,
        "method": method,
        "seed": seed,
        "labeled_cases": cfg.data.splits["labeled"],
        "best_dice": result["best_mean_dice"],
        "best_step": result["best_step"],
        "last_dice": (result.get("last") or {}).get("mean_dice"),
        "threads": torch.get_num_threads(),
        "curve": _curve(run_dir),
    }


def _curve(run_dir: Path) -> list[list[float]]:
    """[step, validation mean Dice] of every evaluation of a run (its metrics.jsonl)."""
    import json

    path = run_dir / "metrics.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()] if path.is_file() else []
    return [[r["step"], r["mean_dice"]] for r in rows if r.get("split") == "val" and "mean_dice" in r]


def plateau(rows: list[dict]) -> str:
    """How supervised-only ends: its Dice over the second half of each run (the plateau check)."""
    lines = []
    for r in sorted(
        (r for r in rows if r["method"] == "supervised"), key=lambda r: (r["task"], r["network"], r["seed"])
    ):
        half = [d for step, d in r["curve"] if step >= r["curve"][-1][0] / 2] if r["curve"] else []
        if half:
            lines.append(
                f"{r['task']}/{r['network']} seed {r['seed']}: {min(half):.3f}-{max(half):.3f}, last {half[-1]:.3f}"
            )
    return "; ".join(lines)


def _parse_plan(entries: list[str]) -> list[tuple[str, str, list[str], list[int]]]:
    plan = []
    for e in entries:
        parts = e.split(":")
        if len(parts) != 4:
            raise SystemExit(f"--plan {e!r}: expected TASK:NETWORK:METHOD[,METHOD]:SEED[,SEED]")
        task, net, methods, seeds = parts
        if task not in TASKS or net not in NETWORKS:
            raise SystemExit(f"--plan {e!r}: task one of {list(TASKS)}, network one of {list(NETWORKS)}")
        ms = methods.split(",")
        bad = [m for m in ms if m not in (*METHODS, "BEST")]
        if bad:
            raise SystemExit(f"--plan {e!r}: unknown method(s) {bad}; choose from {list(METHODS)} or BEST")
        plan.append((task, net, ms, [int(s) for s in seeds.split(",")]))
    return plan


def best_new(rows: list[dict], k: int = 2) -> list[str]:
    """The ``k`` new methods with the highest mean best Dice on ct2 + unet (the primary task)."""
    new = ("fixmatch", "unimatch", "cps", "bcp")
    means = {}
    for m in new:
        v = [r["best_dice"] for r in rows if (r["task"], r["network"], r["method"]) == ("ct2", "unet", m)]
        if v:
            means[m] = sum(v) / len(v)
    return sorted(means, key=means.get, reverse=True)[:k]


def summary(rows: list[dict]) -> dict:
    import numpy as np

    out: dict = {}
    for r in rows:
        out.setdefault(r["task"], {}).setdefault(r["network"], {}).setdefault(r["method"], []).append(r)
    for nets in out.values():
        for methods in nets.values():
            for m, rs in methods.items():
                v = np.array([x["best_dice"] for x in sorted(rs, key=lambda x: x["seed"])])
                last = np.array([x["last_dice"] for x in rs if x["last_dice"] is not None])
                methods[m] = {"mean": float(v.mean()), "std": float(v.std()), "seeds": [float(x) for x in v],
                              "last_mean": float(last.mean()) if len(last) else None}  # fmt: skip
    return out


def table(rows: list[dict], key: str) -> list[str]:
    groups = sorted({(r["task"], r["network"]) for r in rows})
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    lines = ["| task | network | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for task, net in groups:
        cells = []
        for m in methods:
            v = [r[key] for r in rows if (r["task"], r["network"], r["method"]) == (task, net, m)]
            cells.append(f"{mean_std(v)} (n={len(v)})" if v else "")
        lines.append(f"| {task} | {net} | " + " | ".join(cells) + " |")
    return lines


def gains(rows: list[dict]) -> list[str]:
    """Per (task, network): each method's mean best Dice minus supervised-only's, in Dice points, over the
    seeds both have (paired by seed: the same labeled cases)."""
    import numpy as np

    lines = ["| task | network | method | gain over supervised (points) | seeds |", "|---|---|---|---|---|"]
    for task, net in sorted({(r["task"], r["network"]) for r in rows}):
        sup = {
            r["seed"]: r["best_dice"]
            for r in rows
            if (r["task"], r["network"], r["method"]) == (task, net, "supervised")
        }
        for m in METHODS[1:]:
            own = {
                r["seed"]: r["best_dice"]
                for r in rows
                if (r["task"], r["network"], r["method"]) == (task, net, m)
            }
            both = sorted(set(own) & set(sup))
            if both:
                diff = np.array([100 * (own[s] - sup[s]) for s in both])
                spread = f" ± {diff.std():.1f}" if len(diff) > 1 else ""
                lines.append(f"| {task} | {net} | {m} | {diff.mean():+.1f}{spread} | {both} |")
    return lines


def main() -> None:
    shared = parent_parser(
        data_root=default_data_root(),
        steps=2000,
        eval_every=200,
        size=128,
        batch_size=8,
        set=[],
        threads=1,
        helps={
            "size": "CT slices resized to SIZE, DRIVE crops of SIZE",
            "batch_size": "labeled and unlabeled samples per batch",
            "threads": "torch CPU threads (the recorded rows: 1; another count changes the float sums, so the numbers)",
        },
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument("--plan", nargs="+", default=DEFAULT_PLAN, help="TASK:NETWORK:METHODS:SEEDS entries")
    ap.add_argument("--hung-ndf", type=int, default=32, help="filters of Hung's discriminator (paper: 64)")
    ap.add_argument("--no-write", action="store_true", help="train/reuse only; leave the JSON and docs alone")
    ap.add_argument(
        "--runs-dir", type=Path, default=REPO / "runs" / "bench" / "semi",
        help="run folders (reused when finished with the same config, resumed when not); keep them outside the "
        "checkout to carry them between sessions",
    )  # fmt: skip
    args = parse(ap, absolute_data_root=True, set_threads=True)
    rows: list[dict] = []
    for task, net, methods, seeds in _parse_plan(args.plan):
        methods = [x for m in methods for x in (best_new(rows) if m == "BEST" else [m])]
        # seeds outermost: an interrupted run leaves whole seeds behind
        rows += [run_one(args, task, net, m, s) for s in seeds for m in methods]
    if args.no_write:
        return
    commit = git_commit()
    cmd = command_line("semi")
    body = (
        "## Semi-supervised: weak-strong consistency, CPS, copy-paste and the older methods\n\n"
        f"Command: `{cmd}` at commit `{commit[:10]}` (JSON: `benchmarks/results/semi.json`). Validation mean "
        "foreground Dice (CT: the 6 validation patients of split seed 0, slices stacked per patient; DRIVE: "
        f"images 36-40). Every run: {args.steps} steps of {args.batch_size} labeled + {args.batch_size} "
        f"unlabeled samples, evaluated every {args.eval_every}; CT slices {args.size}x{args.size}, DRIVE crops "
        f"{args.size}, {args.threads} CPU thread(s) per process. ctN = N labeled CT patients of 16 (the rest unlabeled), drive2 = 2 labeled DRIVE images. "
        "Mean ± std over seeds (n = number of seeds; each seed draws other labeled cases).\n\n"
        "Best validation Dice (model selection on the validation patients):\n\n"
        + "\n".join(table(rows, "best_dice"))
        + "\n\nDice at the last step:\n\n"
        + "\n".join(table(rows, "last_dice"))
        + "\n"
    )
    guide = (
        f"`{cmd}` (commit `{commit[:10]}`; the same tables in [results.md](results.md)). Best validation Dice, "
        f"mean ± std over seeds; {args.steps} steps, {args.size} px, batch {args.batch_size} + {args.batch_size}.\n\n"
        + "\n".join(table(rows, "best_dice"))
        + "\n\nPaired by seed (the same labeled patients), the gain of each method over supervised-only:\n\n"
        + "\n".join(gains(rows))
        + "\n\nPlateau check, supervised-only's validation Dice over the second half of each run (min-max, last): "
        + plateau(rows)
        + ".\n"
    )
    finish("semi", {"command": cmd, "summary": summary(rows), "rows": rows}, body)
    update_results_md("semi-table", guide, REPO / "docs" / "semi.md")


if __name__ == "__main__":
    main()
