"""Does augmentation help with 5 labeled EM sections? ISBI 2012 membranes, U-Net, three pipelines, 3 seeds.

    python benchmarks/augment_em.py --data-root ../shared/data

Split in contiguous blocks (adjacent sections are correlated): sections 00-04 labeled, 20-29 validation.
Pipelines (all with a random 256x256 crop, so every run sees the same amount of pixels per step):
``none`` (crop only), ``traditional`` (flips, rotation, scale, brightness, contrast, gamma, noise) and
``traditional+elastic`` (plus the U-Net paper's elastic deformation: 3x3 grid, sigma 10 px). The transforms
run batched on the training device (backend ``torch``). Runs live in runs/bench/augment_em/ and are reused.
"""

from __future__ import annotations

import argparse

from common import REPO, command_line, default_data_root, finish, fit_or_reuse, mean_std, parent_parser, parse

from weakseg.config import load_config

PIPELINES = {"none": "crop", "traditional": "no elastic", "traditional+elastic": "all"}


def transforms_for(pipeline: str, base: list[dict]) -> list[dict]:
    if pipeline == "none":
        return [t for t in base if t["name"] == "crop"]
    if pipeline == "traditional":
        return [t for t in base if not t["name"].startswith("elastic")]
    return base


def run_one(args, pipeline: str, seed: int) -> dict:
    run_dir = REPO / "runs" / "bench" / "augment_em" / f"{pipeline}_s{seed}"
    cfg = load_config(
        REPO / "configs" / "em.yaml",
        [
            f"train.seed={seed}",
            f"train.max_steps={args.steps}",
            f"train.name=em_{pipeline}_s{seed}",
            *args.set,
        ],
    )
    cfg.data.root = str(args.data_root / "isbi2012_em" / "train")
    cfg.augment.transforms = transforms_for(pipeline, cfg.augment.transforms)
    result = fit_or_reuse(cfg, run_dir)
    return {
        "pipeline": pipeline,
        "seed": seed,
        "best_dice": result["best_mean_dice"],
        "best_step": result["best_step"],
        "last_dice": result["last"].get("mean_dice"),
        "transforms": [t["name"] for t in cfg.augment.transforms],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[parent_parser(data_root=default_data_root(), seeds=[0, 1, 2], steps=800, set=[])],
    )
    ap.add_argument(
        "--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES), help="pipelines to train"
    )
    args = parse(ap, require="isbi2012_em/train/images")
    rows = [run_one(args, p, s) for p in args.pipelines for s in args.seeds]
    cmd = command_line("augment_em")
    lines = [
        "| pipeline | transforms | membrane Dice, best on validation | membrane Dice, last step |",
        "|---|---|---|---|",
    ]
    for p in args.pipelines:
        rs = [r for r in rows if r["pipeline"] == p]
        lines.append(
            f"| {p} | {', '.join(rs[0]['transforms'])} | {mean_std([r['best_dice'] for r in rs])} | "
            f"{mean_std([r['last_dice'] for r in rs])} |"
        )
    body = (
        "## Augmentation with 5 labeled EM sections (ISBI 2012)\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/augment_em.json`).\n"
        f"U-Net (16-256 channels), Dice+CE, {args.steps} steps of batch 4 random 256x256 crops; sections "
        "00-04 labeled, 20-29 validation (contiguous blocks); membrane Dice on the 10 validation sections, "
        f"mean ± std over seeds {args.seeds}. Validation picks the best step, so 'best' is optimistic; "
        "'last' is the plain end of training.\n\n" + "\n".join(lines) + "\n"
    )
    finish("augment_em", {"command": cmd, "rows": rows}, body)


if __name__ == "__main__":
    main()
