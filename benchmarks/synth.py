"""Synthetic labeled data that helps: three generator routes on DRIVE and abdominal CT, each used for
synthetic-only, mixed (real + synthetic) and pre-train-then-fine-tune segmenters, against real-only.

    python benchmarks/synth.py --data-root ../shared/data

Per task, the few labeled training cases (DRIVE: --drive-labeled images of 21-35; CT: --ct-labeled patients of
the 16 training patients of split seed 0) are all the labels anything here sees. Routes, each writing --n
synthetic pairs at the CPU size (--size; DRIVE random crops, CT slices resized):

* ``dual_gan``: noise -> label map -> image (the dual GAN trained on the few cases, data-efficient: DiffAugment
  on both critics, EMA generators, the checkpoint whose sampled maps' statistics are nearest the real maps'),
  the route whose label maps come from noise;
* ``deform_gan``: the real maps recombined structure by structure (each class possibly from another map, moved
  and scaled on its own) and randomly deformed (rotation, zoom, elastic), painted by that dual GAN's stage 2;
* ``synthseg``: the same kind of maps painted by SynthSeg's random per-label intensities (no GAN).

Rows per route and seed: ``synthetic`` (synthetic only), ``real_synthetic`` (half of each epoch real, half
synthetic), ``pretrain_finetune`` (the synthetic row's best checkpoint fine-tuned on the real cases,
``model.init_from``); and ``real`` once per seed. Segmenters: the task config's U-Net, --seg-steps steps each,
best validation mean Dice on the fixed real validation cases (DRIVE 36-40; CT the 6 validation patients).
Authenticity per route: ``gans.checks.authenticity`` between real training patches at the same scale and the
synthetic images. Runs live in runs/bench/synth/ and are reused or resumed.
"""

from __future__ import annotations

import copy
import random
import shutil
from pathlib import Path

import numpy as np
from common import (
    REPO,
    command_line,
    default_data_root,
    finish,
    fit_or_reuse,
    git_commit,
    mean_std,
    parent_parser,
    script_parser,
)
from PIL import Image

from weakseg.config import Config, load_config
from weakseg.data import build_datasets

OUT = REPO / "runs" / "bench" / "synth"
ROUTES = ("dual_gan", "deform_gan", "synthseg")
ROWS = ("synthetic", "real_synthetic", "pretrain_finetune")


def base_config(args, task: str) -> Config:
    """The real-data config of ``task`` at CPU size, labeled cases = the few real ones, fixed validation."""
    if task == "drive":
        cfg = load_config(REPO / "configs" / "drive.yaml")
        cfg.data.root = str(args.data_root / "drive" / "train")
        pool = sorted(cfg.data.splits["labeled"])
        labeled = sorted(random.Random(7).sample(pool, args.drive_labeled))
        cfg.data.splits = {"labeled": labeled, "val": cfg.data.splits["val"]}
        cfg.augment.transforms = [
            {**t, "size": [args.size] * 2} if t["name"] == "crop" else t for t in cfg.augment.transforms
        ]
    else:
        cfg = load_config(REPO / "configs" / "ct.yaml")
        cfg.data.root = str(args.data_root / "abdominal_ct_mr" / "ct")
        sets = build_datasets(cfg.data)
        labeled = sorted(random.Random(7).sample(sets["labeled"].case_ids, args.ct_labeled))
        cfg.data.splits = {"labeled": labeled, "val": sets["val"].case_ids}
        cfg.data.resize = [args.size] * 2
        scale = 256 / args.size
        cfg.data.spacing = [cfg.data.spacing[0], *(s * scale for s in cfg.data.spacing[1:])]
    cfg.train.batch_size = args.batch_size
    return cfg


def gan_config(args, task: str) -> Config:
    cfg = base_config(args, task)
    cfg.method.name = "dual_gan"
    cfg.method.params = {
        "num_downs": int(np.log2(args.size)),
        "ngf": args.ngf,
        "ndf": 64,
        "label_size": args.size,
        "label_ngf": args.ngf,
        # vessel trees are texture-like: spatial noise (8x8 at 128 px), 70x70 patch critic; organ layouts are
        # global: one 4x4 code, a 142x142 patch critic (the whole map: 70x70 patches passed maps without organs).
        # Real maps blurred by 0.7 px (thin vessels) or 1 px for the critic; CT's also mixed 10% with the uniform
        # distribution (without, the generator saturated on maps without organs by step 600 and stayed there).
        # DRIVE: the field of view as the image stage's extra input (the border is no longer painted at random)
        **(
            {"label_noise_size": args.size // 16, "z_dim": 32, "label_smooth": 0.7, "fov_channel": True}
            if task == "drive"
            else {
                "label_noise_size": 4,
                "z_dim": 64,
                "label_smooth": 1.0,
                "label_d_layers": 4,
                "label_epsilon": 0.1,
            }
        ),
        # data-efficient GAN training on a few images (Zhao et al. 2020): DiffAugment on both critics, EMA
        # generators sampling
        "diffaugment": ["translation", "cutout", "color"],
        "label_diffaugment": ["translation", "cutout"],
        "ema_decay": 0.999,
        "label_ema_decay": 0.999,
    }
    # best.pt: the checkpoint whose sampled label maps' statistics are nearest the real maps', not the last
    cfg.train.key_metric, cfg.train.key_mode = "label_stat_distance", "min"
    cfg.optim.name, cfg.optim.lr, cfg.optim.betas = "adam", 2e-4, [0.5, 0.999]
    cfg.optim.schedule, cfg.optim.grad_clip = "constant_linear", None
    cfg.train.max_steps, cfg.train.eval_every = args.gan_steps, max(1, args.gan_steps // 4)
    cfg.train.batch_size = args.gan_batch_size
    cfg.train.name = f"{task}_dual_gan"
    if task == "drive":
        cfg.augment.transforms = [t for t in cfg.augment.transforms if t["name"] in ("crop", "flip")]
    return cfg


def _real_samples(args, cfg: Config, out: Path, key: str, seed: int) -> Path:
    """The few labeled cases' ``key`` ("image" or "label") at the synthetic scale, as PNGs in ``out/images``
    or ``out/masks``: DRIVE --n random --size crops (``seed``), CT every resized slice."""
    sub = "images" if key == "image" else "masks"
    if (out / sub).is_dir():
        return out
    sets = build_datasets(cfg.data)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / sub).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ds = sets["labeled"]
    count = args.n if cfg.data.resize is None else len(ds)
    for i in range(count):
        array = ds[i % len(ds)][key].numpy()
        if cfg.data.resize is None:  # DRIVE: a random crop at the GAN's scale
            y = rng.integers(0, array.shape[-2] - args.size + 1)
            x = rng.integers(0, array.shape[-1] - args.size + 1)
            array = array[..., y : y + args.size, x : x + args.size]
        if key == "image":
            pixels = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
            pic = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
        else:
            pic = array.astype(np.uint8)
        Image.fromarray(pic).save(tmp / sub / f"real_p{i:05d}.png")
    tmp.rename(out)
    return out


def real_patches(args, cfg: Config, out: Path) -> Path:
    """Real training images at the synthetic images' scale, for the authenticity classifier."""
    return _real_samples(args, cfg, out, "image", seed=0)


def real_label_maps(args, cfg: Config, out: Path) -> Path:
    """The few real label maps at the synthetic scale, the maps the deform_gan and synthseg routes deform
    (recombine) and paint."""
    return _real_samples(args, cfg, out, "label", seed=1)


def _fresh(folder: Path, source: Path) -> bool:
    """A generated dataset is complete and newer than what it came from."""
    manifest = folder / "manifest.json"
    return manifest.is_file() and manifest.stat().st_mtime >= source.stat().st_mtime


def real_fovs(args, cfg: Config, out: Path) -> Path | None:
    """DRIVE: the field-of-view masks of the few labeled images (what a fov_channel generator paints into)."""
    if not cfg.data.root or not (Path(cfg.data.root) / "fov").is_dir():
        return None
    if not out.is_dir():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for case in cfg.data.splits["labeled"]:
            shutil.copyfile(Path(cfg.data.root) / "fov" / f"drive_{case}.png", tmp / f"drive_{case}.png")
        tmp.rename(out)
    return out


def make_route(args, task: str, route: str, gan: Path, maps: Path, base: Config) -> Path:
    from gans.generate import generate_dataset, generate_synthseg

    out = args.runs_dir / "data" / f"{task}_{route}"
    if route == "synthseg":
        if not (out / "manifest.json").is_file():
            generate_synthseg(
                maps, args.n, out, base.data.num_classes, seed=0, deform=True,
                in_channels=base.data.in_channels, overwrite=True, recombine=True,
            )  # fmt: skip
    elif not _fresh(out, gan):
        labels = None if route == "dual_gan" else maps
        fov = real_fovs(args, base, args.runs_dir / "data" / f"{task}_fov") if task == "drive" else None
        generate_dataset(
            gan, args.n, out, seed=0, labels=labels, deform=labels is not None, overwrite=True, device="cpu",
            fov=fov, recombine=labels is not None,
        )  # fmt: skip
    return out


def _row_config(args, base: Config, task: str, route: str, row: str, seed: int, synth: Path) -> Config:
    cfg = copy.deepcopy(base)
    if row == "synthetic":
        cfg.data.splits = {"labeled": [], "val": base.data.splits["val"]}
    if row in ("synthetic", "real_synthetic"):
        cfg.data.extra_labeled_roots = [str(synth)]
    if row == "real_synthetic":  # half of each epoch real, else the few real cases are rarely drawn
        cfg.data.extra_labeled_share = 0.5
    if row == "pretrain_finetune":  # the synthetic row's best checkpoint, fine-tuned on the real cases
        cfg.model.init_from = str(args.runs_dir / f"{task}_{route}_synthetic_s{seed}" / "best.pt")
    cfg.train.seed = seed
    cfg.train.max_steps, cfg.train.eval_every = args.seg_steps, args.eval_every
    cfg.train.name = f"{task}_real_s{seed}" if row == "real" else f"{task}_{route}_{row}_s{seed}"
    return cfg


def run_task(args, task: str) -> dict:
    from gans.checks import authenticity

    base = base_config(args, task)
    if args.real_only:  # the real-only rows alone (a rerun of recorded rows): no generator
        rows = []
        for seed in args.seeds:
            cfg = _row_config(args, base, task, "", "real", seed, Path())
            result = fit_or_reuse(cfg, args.runs_dir / cfg.train.name)
            rows.append({"route": None, "row": "real", "seed": seed, "best_dice": result["best_mean_dice"]})
        return {"labeled_real_cases": base.data.splits["labeled"], "authenticity": {}, "rows": rows}
    gan_dir = args.runs_dir / f"{task}_dual_gan"
    fit_or_reuse(gan_config(args, task), gan_dir)
    gan = gan_dir / "best.pt"
    real = real_patches(args, base, args.runs_dir / "data" / f"{task}_real_patches")
    maps = real_label_maps(args, base, args.runs_dir / "data" / f"{task}_real_maps")
    rows, auth, synth = [], {}, {}
    for route in args.routes:
        synth[route] = make_route(args, task, route, gan, maps, base)
        auth[route] = authenticity(
            real, synth[route], size=64, steps=args.auth_steps, seed=0, case_regex=r"p(\d+)"
        )
    for seed in args.seeds:
        cfg = _row_config(args, base, task, "", "real", seed, Path())
        rows.append(
            {
                "route": None,
                "row": "real",
                "seed": seed,
                "best_dice": fit_or_reuse(cfg, args.runs_dir / cfg.train.name)["best_mean_dice"],
            }
        )
        for route in args.routes:
            for row in ROWS:  # synthetic first: pretrain_finetune starts from its best checkpoint
                cfg = _row_config(args, base, task, route, row, seed, synth[route])
                result = fit_or_reuse(cfg, args.runs_dir / cfg.train.name)
                rows.append({"route": route, "row": row, "seed": seed, "best_dice": result["best_mean_dice"]})
    route_grid(synth, args.runs_dir / f"synth_routes_{task}.png", task)
    if not args.no_write:
        grids = sorted(gan_dir.glob("synthesis_step*.png"))
        if grids:
            shutil.copyfile(grids[-1], REPO / "docs" / "img" / f"synth_{task}.png")
        shutil.copyfile(
            args.runs_dir / f"synth_routes_{task}.png", REPO / "docs" / "img" / f"synth_routes_{task}.png"
        )
    return {"labeled_real_cases": base.data.splits["labeled"], "authenticity": auth, "rows": rows}


def route_grid(synth: dict[str, Path], path: Path, task: str, n: int = 4) -> None:
    """The first ``n`` pairs of each route, image and label overlay side by side, one row per route."""
    from weakseg.data.readers import read_image_file, read_mask_file
    from weakseg.methods.pictures import label_overlay, save_image_grid, scaled_rgb

    rows = []
    for route, folder in synth.items():
        row = []
        for name in sorted((folder / "images").iterdir())[:n]:
            image = read_image_file(name).astype(np.float32) / 255.0
            label = read_mask_file(folder / "masks" / name.name)
            row += [(f"{route}", scaled_rgb(image)), ("label", label_overlay(image, label))]
        rows.append(row)
    save_image_grid(rows, path, title=f"{task}: synthetic pairs of each route")


def _stats(values: list[float]) -> dict:
    v = np.array(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std()), "seeds": [float(x) for x in v]}


def summary(results: dict) -> dict:
    """``{task: {"real_only": stats, route: {"real", "synthetic", "real_synthetic", "pretrain_finetune": stats,
    "authenticity_auc"}}}``, stats ``{"mean", "std", "seeds"}`` of the best validation Dice by seed."""
    out = {}
    for task, r in results.items():

        def of(route, row, rows=r["rows"]):
            by_seed = sorted(rows, key=lambda x: x["seed"])
            return _stats([x["best_dice"] for x in by_seed if (x["route"], x["row"]) == (route, row)])

        real = of(None, "real")
        out[task] = {"real_only": real}
        for route in r["authenticity"]:
            out[task][route] = {"real": real, **{row: of(route, row) for row in ROWS},
                                "authenticity_auc": float(r["authenticity"][route]["auc"])}  # fmt: skip
    return out


def main() -> None:
    shared = parent_parser(
        data_root=default_data_root(),
        size=128,
        ngf=32,
        gan_steps=1200,
        eval_every=100,
        batch_size=8,
        seeds=[0, 1, 2],
        helps={
            "size": "DRIVE crops and CT slices of SIZE x SIZE",
            "ngf": "generator filters (pix2pix: 64)",
            "eval_every": "validation every N steps of the segmenters",
            "batch_size": "batch size of the segmenters",
            "seeds": "segmenter seeds (one GAN per task)",
        },
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument(
        "--tasks", nargs="+", default=["drive", "ct"], choices=["drive", "ct"], help="tasks to run"
    )
    ap.add_argument(
        "--runs-dir", type=Path, default=OUT, help="run folders and generated datasets (reused or resumed)"
    )
    ap.add_argument(
        "--no-write", action="store_true", help="train/reuse and print; leave the JSON and docs alone"
    )
    ap.add_argument("--routes", nargs="+", default=list(ROUTES), choices=ROUTES, help="generator routes")
    ap.add_argument(
        "--real-only", action="store_true",
        help="only the real-only rows (no generator), into benchmarks/results/synth_real.json",
    )  # fmt: skip
    ap.add_argument("--gan-batch-size", type=int, default=8, help="also the label GAN's batch-norm batch")
    ap.add_argument("--n", type=int, default=200, help="synthetic pairs per task")
    ap.add_argument("--drive-labeled", type=int, default=4, help="labeled real DRIVE images")
    ap.add_argument("--ct-labeled", type=int, default=2, help="labeled real CT patients")
    ap.add_argument("--seg-steps", type=int, default=600, help="training steps of each segmenter")
    ap.add_argument(
        "--auth-steps", type=int, default=300, help="training steps of the authenticity classifier"
    )
    args = ap.parse_args()
    results = {task: run_task(args, task) for task in args.tasks}
    summ = summary(results)
    cmd = command_line("synth")
    lines = [
        "| task (real labeled cases) | route | authenticity accuracy / AUC | real only | synthetic only | "
        "real + synthetic | pre-train -> fine-tune | best gain (points) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, r in results.items():
        for route, a in r["authenticity"].items():
            cells = [summ[task][route][row] for row in ("real", *ROWS)]
            gain = max(
                100 * (summ[task][route][row]["mean"] - summ[task]["real_only"]["mean"]) for row in ROWS[1:]
            )
            lines.append(
                f"| {task} ({len(r['labeled_real_cases'])}) | {route} | {a['accuracy']:.3f} / {a['auc']:.3f} | "
                + " | ".join(mean_std(c["seeds"]) for c in cells)
                + f" | {gain:+.1f} |"
            )
    pictures = "\n".join(
        f"![{t} synthesis](img/synth_{t}.png) ![{t} routes](img/synth_routes_{t}.png)" for t in results
    )
    body = (
        "## Synthetic data: dual GAN, deformed real maps, SynthSeg; mixed and pre-train -> fine-tune\n\n"
        f"Command: `{cmd}` at commit `{git_commit()[:10]}` (JSON: `benchmarks/results/synth.json`). CPU size: "
        f"{args.size}x{args.size} (DRIVE crops, CT slices resized), pix2pix U-Net {args.ngf} filters, {args.gan_steps} "
        f"GAN steps of batch {args.gan_batch_size} on the few labeled cases only (DiffAugment on both critics, "
        "EMA generators, best.pt by the label-map statistics), "
        f"{args.n} synthetic pairs per route. Segmenters: the task config's U-Net, {args.seg_steps} steps, best "
        f"validation mean Dice on the real validation cases, mean ± std over seeds {args.seeds}; real + synthetic "
        "draws half of each epoch from each (`data.extra_labeled_share: 0.5`); pre-train -> fine-tune starts "
        "from the synthetic-only run's best checkpoint (`model.init_from`) and trains on the real cases. Best "
        "gain: the better of mixed and pre-train -> fine-tune minus real only. Authenticity: a small CNN told real "
        "from synthetic 64x64 images (held-out half; 0.5 = indistinguishable). Anchor (Guibas et al., "
        "DRIVE-like data): F1 0.888 synthetic-only vs 0.899 real.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + pictures
        + "\n"
    )
    if args.no_write:
        print(body)
        return
    if args.real_only:
        finish("synth_real", {"command": cmd, "summary": summ, "results": results})
        return
    finish("synth", {"command": cmd, "summary": summ, "results": results}, body)


if __name__ == "__main__":
    main()
