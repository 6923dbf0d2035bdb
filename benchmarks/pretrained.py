"""Transfer learning: ImageNet EfficientNet-Lite0 U-Net vs the same network from scratch vs the core U-Net.

    python benchmarks/pretrained.py --data-root ../shared/data

Tasks: abdominal CT with 10% and 100% of the training patients labeled (configs/ct.yaml split, 25% of
patients for validation) and DRIVE (configs/drive.yaml: 15 training images, 5 validation images).
Models: ``pretrained`` (configs/ct_pretrained.yaml recipe: ImageNet weights, encoder frozen for the first
steps, encoder LR x0.1), ``scratch`` (same network, random init, no freezing, one LR) and ``unet`` (the core
MONAI U-Net). Model selection on validation mean Dice. Runs live in runs/bench/pretrained/ and are reused
(finished) or resumed (unfinished), so the script can be continued later.
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
    script_parser,
)

from weakseg.config import Config, load_config

RECIPE = REPO / "configs" / "ct_pretrained.yaml"  # the pretrained network, fine-tuning and LR
TASKS = {
    "ct10": ("abdominal_ct_mr/ct", 0.1),
    "ct100": ("abdominal_ct_mr/ct", 1.0),
    "drive": ("drive/train", None),
}
MODELS = ("pretrained", "scratch", "unet")


def config(args, task: str, model: str, seed: int) -> Config:
    folder, fraction = TASKS[task]
    base = "drive.yaml" if task == "drive" else "ct.yaml"
    overrides = [
        f"train.seed={seed}",
        f"train.max_steps={args.steps}",
        f"train.eval_every={args.eval_every}",
        f"train.name={task}_{model}_s{seed}",
        *args.set,
    ]
    if fraction is not None:
        overrides += [f"data.labeled_fraction={fraction}", f"data.split_seed={seed}"]
    cfg = load_config(REPO / "configs" / base, overrides)
    cfg.data.root = str(args.data_root / folder)
    if args.size and task == "drive":  # DRIVE: smaller random crops, full images at evaluation
        cfg.augment.transforms = [
            {**t, "size": [args.size] * 2} if t["name"] == "crop" else t for t in cfg.augment.transforms
        ]
        cfg.train.batch_size = args.batch_size
    elif args.size:  # CT: slices resampled from 256 to size; in-plane spacing scaled to match
        scale = 256 / args.size
        cfg.data.resize = [args.size] * 2
        cfg.data.spacing = [cfg.data.spacing[0], *(s * scale for s in cfg.data.spacing[1:])]
        cfg.train.batch_size = args.batch_size
    if model != "unet":  # model, method and optimizer sections from the recipe
        recipe = load_config(RECIPE)
        cfg.model, cfg.method, cfg.optim = recipe.model, recipe.method, recipe.optim
        freeze = cfg.method.params.get("freeze_encoder_steps", 0)  # at most a quarter of a short run
        cfg.method.params = {**cfg.method.params, "freeze_encoder_steps": min(freeze, args.steps // 4)}
        if model == "scratch":
            cfg.model.params = {**cfg.model.params, "weights": "none"}
            cfg.method.params = {}
    return cfg


def run_one(args, task: str, model: str, seed: int) -> dict:
    run_dir = REPO / "runs" / "bench" / "pretrained" / f"{task}_{model}_s{seed}"
    cfg = config(args, task, model, seed)
    result = fit_or_reuse(cfg, run_dir)
    return {
        "task": task,
        "model": model,
        "seed": seed,
        "steps": args.steps,
        "size": args.size,
        "best_dice": result["best_mean_dice"],
        "best_step": result["best_step"],
    }


def main() -> None:
    shared = parent_parser(
        data_root=default_data_root(),
        seeds=[0, 1, 2],
        steps=1500,
        eval_every=250,
        size=0,
        batch_size=8,
        set=[],
        helps={
            "size": "CPU-sized runs: CT slices resized to SIZE, DRIVE crops of SIZE; 0: the task configs' sizes",
            "batch_size": "batch size with --size",
        },
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS), help="tasks to run")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), help="models to train")
    args = ap.parse_args()
    rows = [run_one(args, t, m, s) for t in args.tasks for m in args.models for s in args.seeds]
    cmd = command_line("pretrained")
    lines = ["| task | " + " | ".join(args.models) + " |", "|---|" + "---|" * len(args.models)]
    for t in args.tasks:
        cells = [
            mean_std([r["best_dice"] for r in rows if r["task"] == t and r["model"] == m])
            for m in args.models
        ]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    size_note = (
        f"; CPU size: CT slices resized to {args.size}x{args.size}, DRIVE random crops of {args.size}, "
        f"batch {args.batch_size}"
        if args.size
        else ""
    )
    body = (
        "## Transfer learning: ImageNet encoder vs scratch vs core U-Net\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/pretrained.json`).\n"
        f"Mean foreground Dice on validation (CT: 6 patients, volumes of stacked slices; DRIVE: 5 images), "
        f"best of the evaluations every {args.eval_every} steps, {args.steps} steps, mean ± std over seeds "
        f"{args.seeds}{size_note}. "
        "pretrained = configs/ct_pretrained.yaml's network and fine-tuning (EfficientNet-Lite0 "
        "U-Net, ImageNet weights, encoder frozen for min(200, steps/4) steps, encoder LR x0.1, lr 1e-3); scratch = the same network "
        "from random init with one LR; unet = the core MONAI U-Net with its task config's optimizer "
        "(lr 2e-3). Learning rates were not tuned per model.\n\n" + "\n".join(lines) + "\n"
    )
    finish("pretrained", {"command": cmd, "rows": rows}, body)


if __name__ == "__main__":
    main()
