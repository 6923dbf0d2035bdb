"""2D U-Net on abdominal CT (BTCV) at several labeled fractions; per-organ Dice/HD95 on CT validation
patients, and the same models applied to MR (CHAOS) without adaptation: the domain-adaptation baseline.

    python benchmarks/supervised_ct.py --data-root ../shared/data

Runs live in runs/bench/supervised_ct/<fraction>_s<seed>; a finished run is reused, an unfinished one is
resumed (``--resume`` semantics), so the script can be continued in a later session.
"""

from __future__ import annotations

from common import (
    REPO,
    command_line,
    default_data_root,
    finish,
    fit_or_reuse,
    mean_std,
    parent_parser,
    parse,
    script_parser,
)

from weakseg.api import evaluate
from weakseg.config import load_config
from weakseg.data import build_datasets

ORGANS = ["liver", "right_kidney", "left_kidney", "spleen"]


def run_one(args, fraction: float, seed: int) -> dict:
    run_dir = REPO / "runs" / "bench" / "supervised_ct" / f"f{fraction:g}_s{seed}"
    steps = args.steps if fraction >= 0.5 else args.steps_low
    overrides = [
        f"data.root={args.data_root / 'abdominal_ct_mr' / 'ct'}",
        f"data.labeled_fraction={fraction}",
        f"data.split_seed={seed}",
        f"train.seed={seed}",
        f"train.max_steps={steps}",
        f"train.eval_every={args.eval_every}",
        f"train.name=ct_f{fraction:g}_s{seed}",
        *args.set,
    ]
    cfg = load_config(REPO / "configs" / "ct.yaml", overrides)
    fit_or_reuse(cfg, run_dir)
    ct = evaluate(run_dir / "best.pt", progress=False).summary()
    mr = evaluate(
        run_dir / "best.pt",
        data=args.data_root / "abdominal_ct_mr" / "mr",
        progress=False,
        overrides=["data.spacing=[7.7, 1.25, 1.25]"],
    ).summary()
    splits = build_datasets(cfg.data)
    return {
        "fraction": fraction,
        "seed": seed,
        "steps": steps,
        "run_dir": str(run_dir.relative_to(REPO)),
        "labeled_patients": len(splits["labeled"].case_ids),
        "val_patients": len(splits["val"].case_ids),
        "ct_val": ct,
        "mr_no_adaptation": mr,
    }


def table(rows: list[dict], key: str) -> str:
    head = (
        "| labeled CT patients | "
        + " | ".join(f"{o} Dice" for o in ORGANS)
        + " | mean Dice | mean HD95 (mm) |"
    )
    lines = [head, "|" + "---|" * (len(ORGANS) + 3)]
    for frac in sorted({r["fraction"] for r in rows}, reverse=True):
        rs = [r[key] for r in rows if r["fraction"] == frac]
        cells = [mean_std([r[f"dice/{o}"] for r in rs]) for o in ORGANS]
        n = rows[[r["fraction"] for r in rows].index(frac)]["labeled_patients"]
        lines.append(
            f"| {frac:.0%} ({n}) | " + " | ".join(cells) + f" | {mean_std([r['mean_dice'] for r in rs])} | "
            f"{mean_std([r['mean_hd95'] for r in rs])} |"
        )
    return "\n".join(lines)


def main() -> None:
    shared = parent_parser(
        data_root=default_data_root(),
        seeds=[0],
        steps=2000,
        eval_every=250,
        set=[],
        helps={"seeds": "seeds, each also the split seed", "steps": "training steps at fractions >= 50%%"},
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=[1.0, 0.25, 0.1],
        help="labeled fractions of the training patients",
    )
    ap.add_argument("--steps-low", type=int, default=1000, help="training steps at smaller fractions")
    args = parse(ap, require="abdominal_ct_mr/ct/images")
    rows = [run_one(args, f, s) for f in args.fractions for s in args.seeds]
    cmd = command_line("supervised_ct")
    body = (
        "## Supervised 2D U-Net on abdominal CT, and on MR without adaptation\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/supervised_ct.json`).\n"
        "Split by patient (22 CT patients: 25% validation, seed = split seed); labeled fraction of the training "
        "patients; model selected on CT validation mean Dice. Metrics per patient volume (stacked slices), "
        f"mean ± std over seeds {args.seeds}.\n\n"
        "### CT validation patients\n\n" + table(rows, "ct_val") + "\n\n"
        "### MR (all 15 CHAOS patients), same models, no adaptation — the baseline domain adaptation must beat\n\n"
        + table(rows, "mr_no_adaptation")
        + "\n"
    )
    finish("supervised_ct", {"command": cmd, "rows": rows}, body)


if __name__ == "__main__":
    main()
