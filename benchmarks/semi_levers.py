"""The levers of semi-supervised learning (issue #15's ablation): FixMatch with one lever changed at a time
against the benchmarks/semi.py row, and the full-label ceiling at the same length; by default on the
ImageNet-encoder U-Net on CT with 2 labeled patients (``--task ct2 --network encoder_unet``), or on another
semi.py task and network (``--task drive2 --network unet``).

    python benchmarks/semi_levers.py --data-root ../shared/data
    python benchmarks/semi_levers.py --data-root ../shared/data --task drive2 --network unet --plan threshold_0.8:0,1,2

Every run is benchmarks/semi.py's ct2 + encoder_unet run (2 labeled patients drawn with the seed, the other 14
unlabeled, the 6 validation patients of split seed 0, 2000 steps of 8 + 8 samples at 128 px, 1 thread) with the
lever's config overrides. Levers that change what supervised-only sees too (length, the encoder's learning rate)
get their own supervised run, so that the gain is always paired by seed and setting. ``full_labels``: all 16
training patients labeled (no unlabeled pool), the ceiling a semi-supervised run can approach. Runs live beside
semi.py's (``--runs-dir``, the same folders for the ``base`` lever) and are reused or resumed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
)
from semi import _curve, config, run_name

# lever -> (overrides of every run of the lever, whether supervised-only needs its own run under them)
LEVERS: dict[str, tuple[list[str], bool]] = {
    "base": (
        [],
        False,
    ),  # semi.py's rows: threshold 0.95, 1:1 unlabeled, no ramp-up, DEFAULT_STRONG, cutmix 0.5
    "threshold_0.8": (["method.params.threshold=0.8"], False),
    "unlabeled_2x": (["train.stream_batch_sizes={unlabeled: 16}"], False),
    "warmup_500": (["method.params.rampup_steps=500"], False),
    "cutmix_1.0": (["method.params.cutmix_p=1.0"], False),
    "cutmix_0.0": (["method.params.cutmix_p=0.0"], False),  # intensity perturbations only
    # levers that helped on seed 0, in pairs
    "warmup_500_threshold_0.8": (["method.params.rampup_steps=500", "method.params.threshold=0.8"], False),
    "warmup_500_cutmix_1.0": (["method.params.rampup_steps=500", "method.params.cutmix_p=1.0"], False),
    # pseudo-labels from an EMA teacher (AugSeg, U2PL), alone and with the warm-up
    "ema_0.99": (["method.params.ema_decay=0.99"], False),
    "warmup_500_ema_0.99": (["method.params.rampup_steps=500", "method.params.ema_decay=0.99"], False),
    "encoder_lr_1.0": (["method.params.encoder_lr_scale=1.0"], True),
    "steps_4000": (["train.max_steps=4000"], True),
}
DEFAULT_PLAN = ["full_labels:0", "threshold_0.8:0", "warmup_500:0", "unlabeled_2x:0", "cutmix_1.0:0"]


def _args_with(args: argparse.Namespace, overrides: list[str]) -> argparse.Namespace:
    out = argparse.Namespace(**vars(args))
    out.set = [*args.set, *overrides]
    return out


def run_lever(args: argparse.Namespace, lever: str, method: str, seed: int) -> dict:
    """One run of ``lever``: benchmarks/semi.py's ``--task``/``--network`` ``method`` run with the lever's
    overrides (``full_labels``: the ct16 task, every training patient labeled)."""
    task = "ct16" if lever == "full_labels" else args.task
    overrides = [] if lever == "full_labels" else LEVERS[lever][0]
    name = run_name(task, args.network, method, seed) + (
        "" if lever in ("base", "full_labels") else f"_{lever}"
    )
    cfg = config(_args_with(args, [*overrides, f"train.name={name}"]), task, args.network, method, seed)
    run_dir = args.runs_dir / name
    result = fit_or_reuse(cfg, run_dir)
    return {
        "task": task,
        "network": args.network,
        "lever": lever,
        "method": method,
        "seed": seed,
        "overrides": overrides,
        "best_dice": result["best_mean_dice"],
        "best_step": result["best_step"],
        "last_dice": (result.get("last") or {}).get("mean_dice"),
        "curve": _curve(run_dir),
    }


def _parse_plan(entries: list[str]) -> list[tuple[str, list[int]]]:
    plan = []
    for e in entries:
        lever, _, seeds = e.partition(":")
        if lever not in (*LEVERS, "full_labels") or not seeds:
            raise SystemExit(
                f"--plan {e!r}: expected LEVER:SEED[,SEED] with LEVER one of {[*LEVERS, 'full_labels']}"
            )
        plan.append((lever, [int(s) for s in seeds.split(",")]))
    return plan


def table(rows: list[dict]) -> list[str]:
    """One line per lever: FixMatch's and supervised-only's best (last) validation Dice and the paired gain."""
    lines = [
        "| lever | overrides | seeds | supervised | FixMatch | gain (points) | FixMatch last step |",
        "|---|---|---|---|---|---|---|",
    ]
    for lever in dict.fromkeys(r["lever"] for r in rows):
        rs = [r for r in rows if r["lever"] == lever]
        if lever == "full_labels":
            v = [r["best_dice"] for r in rs]
            seeds = [r["seed"] for r in rs]
            lines.append(f"| full_labels (16 labeled, supervised) | | {seeds} | {mean_std(v)} | | | |")
            continue
        sup = {r["seed"]: r for r in rs if r["method"] == "supervised"}
        fix = {r["seed"]: r for r in rs if r["method"] == "fixmatch"}
        seeds = sorted(set(sup) & set(fix))
        if not seeds:
            continue
        gain = [100 * (fix[s]["best_dice"] - sup[s]["best_dice"]) for s in seeds]
        over = ", ".join(f"`{o}`" for o in rs[0]["overrides"]) or "(semi.py's row)"
        lines.append(
            f"| {lever} | {over} | {seeds} | {mean_std([sup[s]['best_dice'] for s in seeds])} | "
            f"{mean_std([fix[s]['best_dice'] for s in seeds])} | {sum(gain) / len(gain):+.1f} | "
            f"{mean_std([fix[s]['last_dice'] for s in seeds])} |"
        )
    return lines


def main() -> None:
    shared = parent_parser(
        data_root=default_data_root(), steps=2000, eval_every=200, size=128, batch_size=8, set=[], threads=1,
        helps={"size": "CT slices resized to SIZE, DRIVE crops of SIZE", "batch_size": "labeled and unlabeled samples per batch",
               "threads": "torch CPU threads (the recorded rows: 1)"},
    )  # fmt: skip
    ap = script_parser(__doc__, shared)
    ap.add_argument(
        "--task", default="ct2", choices=["ct2", "ct4", "drive2"], help="benchmarks/semi.py's task"
    )
    ap.add_argument("--network", default="encoder_unet", choices=["unet", "encoder_unet"], help="its network")
    ap.add_argument(
        "--plan", nargs="+", default=DEFAULT_PLAN, help="LEVER:SEEDS entries, e.g. threshold_0.8:0"
    )
    ap.add_argument("--hung-ndf", type=int, default=32, help=argparse.SUPPRESS)  # semi.config reads it
    ap.add_argument("--no-write", action="store_true", help="train/reuse only; leave the JSON and docs alone")
    ap.add_argument(
        "--runs-dir", type=Path, default=REPO / "runs" / "bench" / "semi",
        help="run folders, shared with benchmarks/semi.py (its ct2/encoder_unet runs are the base lever's)",
    )  # fmt: skip
    args = parse(ap, absolute_data_root=True, set_threads=True)
    plan = _parse_plan(args.plan)
    if not args.task.startswith("ct") and any(lever == "full_labels" for lever, _ in plan):
        raise SystemExit(f"--plan full_labels: the full-label ceiling is a CT task (ct16), not {args.task}")
    rows: list[dict] = []
    for lever, seeds in plan:
        for s in seeds:
            if lever == "full_labels":
                rows.append(run_lever(args, lever, "supervised", s))
                continue
            own_supervised = LEVERS[lever][1]
            rows.append(
                run_lever(args, lever if own_supervised else "base", "supervised", s) | {"lever": lever}
            )
            rows[-1]["overrides"] = LEVERS[lever][0]
            rows.append(run_lever(args, lever, "fixmatch", s))
    if args.no_write:
        return
    cmd = command_line("semi_levers")
    name = (
        "semi_levers"
        if (args.task, args.network) == ("ct2", "encoder_unet")
        else f"semi_levers_{args.task}_{args.network}"
    )
    body = (
        f"## Semi-supervised levers: {args.network} on {args.task}\n\n"
        f"Command: `{cmd}` at commit `{git_commit()[:10]}` (JSON: `benchmarks/results/{name}.json`). "
        f"benchmarks/semi.py's {args.task} + {args.network} FixMatch run with one lever changed; supervised-only is "
        "semi.py's row unless the lever changes what it sees too. Best validation mean Dice (CT: the 6 validation "
        f"patients; DRIVE: images 36-40), {args.steps} steps unless the lever says otherwise, {args.size} px, batch {args.batch_size} "
        f"+ {args.batch_size}, {args.threads} thread(s). Gain: FixMatch minus supervised, paired by seed.\n\n"
        + "\n".join(table(rows))
        + "\n"
    )
    finish(name, {"command": cmd, "rows": rows}, body)


if __name__ == "__main__":
    main()
