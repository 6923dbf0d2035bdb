"""CT <-> MR domain adaptation on abdominal_ct_mr: no adaptation, two-stage CycleGAN, joint CycleGAN +
segmentation (SynSeg-Net), supervised on the target (upper bound), appearance randomisation, SynthSeg
label-to-image, target self-training and their combination; both directions.

    python benchmarks/ct2mr.py --data-root ../shared/data

CPU size (stated in the table): slices resized 256 -> 128 (``data.resize``), ResNet-6 generators with
``--ngf`` filters, batch 1 for the GAN runs; the segmenter of every route is the ImageNet-encoder U-Net of
configs/ct_pretrained.yaml (``--network unet``: the 2D MONAI U-Net of configs/ct.yaml). Patients: the split of
configs/ct2mr.yaml (25% validation patients of each modality, split seed 0); CT labels train the CT->MR rows,
MR labels only evaluate them (and train the MR upper bound); the reverse for MR->CT.

Model selection (issue #5): (a) and the two-stage (b) select on source-domain validation patients (real
source images for (a), their translation for (b)); the joint (c) takes its last checkpoint; only (d), the
upper bound, selects on target validation patients. (e) and (f) select on the source validation patients,
(g) and (h) take their last checkpoint; they run with ``--seeds`` (3 by default; ``--row-seeds`` gives one
row in one direction its own), (a)-(d) with ``--seed``. Rows are evaluated on the target domain's validation
patients at 128 px (labels resampled by nearest neighbour), Dice and ASSD (mm, in-plane spacing x2) per organ.

Runs live in runs/bench/ct2mr_encoder_unet/ (``--network unet``: runs/bench/ct2mr/); finished runs are reused
and unfinished ones resumed, so the script can be stopped and continued, and ``--parts`` lets two processes
share the work (a final call without it reuses everything and writes the table).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from common import (
    REPO,
    command_line,
    default_data_root,
    finish,
    fit_or_reuse,
    parent_parser,
    parse,
    publish,
    script_parser,
)
from demo import shrink_png

from weakseg.config import Config, DataConfig, load_config

ORGANS = ["liver", "right_kidney", "left_kidney", "spleen"]
PARTS = ("sup_ct", "sup_mr", "cyclegan", "joint_ct2mr", "joint_mr2ct", "two_stage", "appearance", "synthseg",
         "self_train", "combined")  # fmt: skip
WEAK = [
    {"name": "rotate", "p": 0.5, "degrees": [-15, 15]},
    {"name": "scale", "p": 0.5, "factor": [0.85, 1.2]},
]
# (e) appearance randomisation of the source, (f) SynthSeg images drawn from the source labels
APPEARANCE = [
    *WEAK,
    {"name": "gin", "p": 0.5},
    {"name": "intensity_curve", "p": 0.5},
    {"name": "bias_field", "p": 0.5},
]
SYNTHSEG = [*WEAK, {"name": "label_to_image", "num_classes": 5}]
# the runs of rows (e)-(h), one per seed: run name -> (row, the checkpoint scored: selected on the source
# validation patients, or the last step)
SEEDED_RUNS = {"appearance": ("e_appearance", "best.pt"), "synthseg": ("f_label_to_image", "best.pt"),
               "self_train": ("g_self_train", "last.pt"), "combined": ("h_combined", "last.pt")}  # fmt: skip
SEEDED_ROWS = [row for row, _ in SEEDED_RUNS.values()]
OUT = REPO / "runs" / "bench" / "ct2mr"
PRETRAINED = REPO / "configs" / "ct_pretrained.yaml"


def out_dir(args) -> Path:
    """The run folders: runs/bench/ct2mr (core U-Net) or runs/bench/ct2mr_encoder_unet."""
    return OUT if args.network == "unet" else OUT.with_name(f"ct2mr_{args.network}")


def results_name(args) -> str:
    """ct2mr.json for the default segmenter (the ImageNet-encoder U-Net), ct2mr_unet.json for the core U-Net."""
    return "ct2mr" if args.network == "encoder_unet" else f"ct2mr_{args.network}"


def _with_network(args, cfg: Config) -> Config:
    """``--network encoder_unet``: configs/ct_pretrained.yaml's network (ImageNet EfficientNet-Lite0 U-Net),
    learning rate and fine-tuning keys (supervised runs), channels_last."""
    if args.network == "encoder_unet":
        pre = load_config(PRETRAINED)
        cfg.model = dataclasses.replace(pre.model, params=dict(pre.model.params))
        cfg.optim.lr = pre.optim.lr
        if cfg.method.name == "supervised":
            cfg.method.params = {**pre.method.params, **cfg.method.params}
        cfg.train.channels_last = True
    return cfg


def _sizes(args) -> list[str]:
    return [f"data.resize=[{args.size}, {args.size}]"]


def domain_cfgs(args) -> dict[str, DataConfig]:
    """The CT and MR data sections of configs/ct2mr.yaml at the benchmark's size and data root."""
    cfg = load_config(REPO / "configs" / "ct2mr.yaml", _sizes(args))
    cfg.data.root = str(args.data_root / "abdominal_ct_mr" / "ct")
    cfg.target.root = str(args.data_root / "abdominal_ct_mr" / "mr")
    scale = 256 / args.size
    for d, (z, xy) in ((cfg.data, (6.0, 1.17)), (cfg.target, (7.7, 1.25))):
        d.resize = [args.size] * 2
        d.spacing = [z, xy * scale, xy * scale]
    return {"ct": cfg.data, "mr": cfg.target}


def supervised_cfg(args, data: DataConfig, name: str) -> Config:
    cfg = load_config(
        REPO / "configs" / "ct.yaml",
        [
            f"train.max_steps={args.sup_steps}",
            f"train.eval_every={args.eval_every}",
            f"train.name={name}",
            f"train.seed={args.seed}",
            *args.set,
        ],
    )
    cfg.data = data
    return _with_network(args, cfg)


def augmented_cfg(args, data: DataConfig, name: str, transforms: list[dict], seed: int) -> Config:
    """A source-only U-Net (configs/ct.yaml) whose training images are randomised by ``transforms``."""
    cfg = supervised_cfg(args, data, name)
    cfg.train.seed = seed
    cfg.augment.backend, cfg.augment.transforms = "torch", [dict(t) for t in transforms]
    return cfg


def self_train_cfg(args, source: str, initial: Path, name: str, seed: int, transforms: list[dict]) -> Config:
    """Target self-training (adapt/selftrain.py) of ``initial``'s segmenter: source labels + target pseudo-labels."""
    domains = domain_cfgs(args)
    target = "mr" if source == "ct" else "ct"
    cfg = supervised_cfg(args, domains[source], name)
    cfg.target = domains[target]
    cfg.train.seed = seed
    cfg.method.name = "self_train"
    cfg.method.params = {"initial": str(initial), "threshold": 0.9, "round_steps": args.round_steps}
    cfg.augment.backend, cfg.augment.transforms = "torch", [dict(t) for t in transforms]
    cfg.augment.streams = ["source", "target"]
    return cfg


def gan_cfg(args, source: str, segment: bool, name: str) -> Config:
    domains = domain_cfgs(args)
    target = "mr" if source == "ct" else "ct"
    cfg = load_config(
        REPO / "configs" / "ct2mr.yaml",
        [
            *_sizes(args),
            f"train.max_steps={args.gan_steps}",
            f"train.eval_every={args.gan_eval_every}",
            f"train.name={name}",
            f"train.seed={args.seed}",
            f"method.params.ngf={args.ngf}",
            f"method.params.segment={str(segment).lower()}",
            f"method.params.domains=[{source}, {target}]",
            *args.set,
        ],
    )
    cfg.data, cfg.target = domains[source], domains[target]
    if segment and args.network == "encoder_unet":  # the joint route's segmenter: the pretrained U-Net
        pre = load_config(PRETRAINED)
        cfg.model = dataclasses.replace(pre.model, params=dict(pre.model.params))
        cfg.train.channels_last = True
    return cfg


def score(checkpoint: Path, data: DataConfig) -> dict:
    """Metrics of ``checkpoint`` on the validation patients of the domain ``data``."""
    from weakseg.api import load_trained
    from weakseg.data import build_datasets
    from weakseg.engine.evaluate import evaluate_dataset

    _, method, dev = load_trained(checkpoint, device="cpu")
    val = build_datasets(data)["val"]
    acc, _ = evaluate_dataset(method, val, data.num_classes, data.class_names, dev, spacing=data.spacing)
    return {"patients": val.case_ids, **acc.summary()}


def translated(args, cyclegan_dir: Path, domain: str, direction: str) -> Path:
    """Stage 1 of the two-stage route: the labeled ``domain`` folder translated by the pure CycleGAN."""
    from adapt.translate import translate_dataset

    out = out_dir(args) / "data" / f"{direction}"
    ckpt = cyclegan_dir / "last.pt"
    stamp = out / "manifest.json"
    if stamp.is_file() and stamp.stat().st_mtime >= ckpt.stat().st_mtime:
        return out
    src = args.data_root / "abdominal_ct_mr" / domain
    return translate_dataset(ckpt, src, out, direction=direction, overwrite=True, device="cpu")


def run(args) -> dict | None:
    domains = domain_cfgs(args)
    if args.parts:
        parts = args.parts
    elif args.rows or args.directions:  # only what the asked rows read
        parts = sorted({p for r in _rows(args) for s, t in _directions(args) for p in ROW_PARTS[r](s, t)})
    else:
        parts = list(PARTS)
    runs = {}
    if "sup_ct" in parts:
        runs["sup_ct"] = fit_or_reuse(supervised_cfg(args, domains["ct"], "sup_ct"), out_dir(args) / "sup_ct")
    if "sup_mr" in parts:
        runs["sup_mr"] = fit_or_reuse(supervised_cfg(args, domains["mr"], "sup_mr"), out_dir(args) / "sup_mr")
    if "cyclegan" in parts:
        fit_or_reuse(gan_cfg(args, "ct", False, "cyclegan"), out_dir(args) / "cyclegan")
    for source, target in _directions(args):
        name = f"joint_{source}2{target}"
        if name in parts:
            fit_or_reuse(gan_cfg(args, source, True, name), out_dir(args) / name)
    if "two_stage" in parts:
        for source, target in _directions(args):
            data = translated(args, out_dir(args) / "cyclegan", source, f"{source}2{target}")
            name = f"two_stage_{source}2{target}"
            cfg = supervised_cfg(args, dataclasses.replace(domains[source], root=str(data)), name)
            fit_or_reuse(cfg, out_dir(args) / name)
    for source, target in _directions(args):
        d = f"{source}2{target}"
        need = {run_name: set(_seeds(args, d, row)) for run_name, (row, _) in SEEDED_RUNS.items()}
        if "combined" in parts:  # (h) starts from (e)'s run of the same seed
            need["appearance"] |= need["combined"]
        for seed in sorted(set().union(*need.values())):
            if "appearance" in parts and seed in need["appearance"]:
                cfg = augmented_cfg(args, domains[source], f"appearance_{d}_s{seed}", APPEARANCE, seed)
                fit_or_reuse(cfg, out_dir(args) / f"appearance_{d}_s{seed}")
            if "synthseg" in parts and seed in need["synthseg"]:
                cfg = augmented_cfg(args, domains[source], f"synthseg_{d}_s{seed}", SYNTHSEG, seed)
                fit_or_reuse(cfg, out_dir(args) / f"synthseg_{d}_s{seed}")
            if "self_train" in parts and seed in need["self_train"]:  # (g): the joint model (c), self-trained
                cfg = self_train_cfg(
                    args,
                    source,
                    out_dir(args) / f"joint_{d}" / "last.pt",
                    f"self_train_{d}_s{seed}",
                    seed,
                    WEAK,
                )
                fit_or_reuse(cfg, out_dir(args) / f"self_train_{d}_s{seed}")
            if "combined" in parts and seed in need["combined"]:  # (h): (e) self-trained, randomisation kept
                init = out_dir(args) / f"appearance_{d}_s{seed}" / "best.pt"
                cfg = self_train_cfg(args, source, init, f"combined_{d}_s{seed}", seed, APPEARANCE)
                fit_or_reuse(cfg, out_dir(args) / f"combined_{d}_s{seed}")
    if args.parts:
        return None
    results = {}
    for source, target in _directions(args):
        d = f"{source}2{target}"
        fixed = {
            "a_no_adaptation": out_dir(args) / f"sup_{source}" / "best.pt",
            "b_two_stage": out_dir(args) / f"two_stage_{d}" / "best.pt",
            "c_joint": out_dir(args) / f"joint_{d}" / "last.pt",
            "d_supervised_target": out_dir(args) / f"sup_{target}" / "best.pt",
        }
        results[d] = {k: score(ckpt, domains[target]) for k, ckpt in fixed.items() if k in _rows(args)}
        for run_name, (key, ckpt) in SEEDED_RUNS.items():  # the new rows, one run per seed
            if key in _rows(args):
                per_seed = [
                    score(out_dir(args) / f"{run_name}_{d}_s{seed}" / ckpt, domains[target])
                    for seed in _seeds(args, d, key)
                ]
                results[d][key] = _mean_rows(per_seed)
    return results


def _rows(args) -> list[str]:
    return args.rows or list(ROW_NAMES)


def _seeds(args, direction: str, row: str) -> list[int]:
    """The seeds of ``row`` in ``direction``: ``--row-seeds DIRECTION:ROW=0,1,2`` where given, else ``--seeds``."""
    return args.row_seeds.get((direction, row), args.seeds)


def _row_seeds(text: str) -> tuple[tuple[str, str], list[int]]:
    """``ct2mr:e_appearance=0,1,2`` -> ``(("ct2mr", "e_appearance"), [0, 1, 2])``."""
    where, _, seeds = text.partition("=")
    direction, _, row = where.partition(":")
    if direction not in ("ct2mr", "mr2ct") or row not in SEEDED_ROWS or not seeds:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected DIRECTION:ROW=SEEDS with DIRECTION ct2mr or mr2ct, ROW one of "
            f"{', '.join(SEEDED_ROWS)} and SEEDS comma-separated integers, e.g. ct2mr:e_appearance=0,1,2"
        )
    try:
        values = [int(x) for x in seeds.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: seeds must be comma-separated integers, e.g. 0,1,2"
        ) from None
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is listed twice; give each once, e.g. 0,1,2")
    return (direction, row), values


def _directions(args) -> list[tuple[str, str]]:
    return [tuple(d.split("2")) for d in (args.directions or ["ct2mr", "mr2ct"])]


# the runs each row reads, per direction (source, target)
ROW_PARTS = {
    "a_no_adaptation": lambda s, t: [f"sup_{s}"],
    "b_two_stage": lambda s, t: ["cyclegan", "two_stage"],
    "c_joint": lambda s, t: [f"joint_{s}2{t}"],
    "d_supervised_target": lambda s, t: [f"sup_{t}"],
    "e_appearance": lambda s, t: ["appearance"],
    "f_label_to_image": lambda s, t: ["synthseg"],
    "g_self_train": lambda s, t: [f"joint_{s}2{t}", "self_train"],
    "h_combined": lambda s, t: ["appearance", "combined"],
}


def _mean_rows(rows: list[dict]) -> dict:
    """The mean of each metric over seeds, with the per-seed mean Dice kept."""
    import numpy as np

    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if isinstance(rows[0][k], float)}
    out["patients"] = rows[0]["patients"]
    out["seeds_mean_dice"] = [r["mean_dice"] for r in rows]
    return out


def summary(results: dict) -> dict:
    """``{direction: {row: {mean, std, seeds, target_labels_used}}}``: only (d) reads target labels."""
    import numpy as np

    out = {}
    for d, rows in results.items():
        out[d] = {}
        for key, r in rows.items():
            seeds = r.get("seeds_mean_dice", [r["mean_dice"]])
            out[d][key] = {"mean": float(np.mean(seeds)), "std": float(np.std(seeds)), "seeds": seeds,
                           "target_labels_used": key == "d_supervised_target"}  # fmt: skip
    return out


ROW_NAMES = {
    "a_no_adaptation": "(a) no adaptation: trained on {s}, selected on {s} val",
    "b_two_stage": "(b) two-stage: CycleGAN {s}->{t}, then U-Net on translated {s}",
    "c_joint": "(c) joint CycleGAN + U-Net (SynSeg-Net), last checkpoint",
    "d_supervised_target": "(d) upper bound: trained on {t} labels",
    "e_appearance": "(e) appearance randomisation (GIN, curves, bias) of {s}, selected on {s} val",
    "f_label_to_image": "(f) SynthSeg images from {s} labels, selected on {s} val",
    "g_self_train": "(g) (c) + target self-training on {t}, last checkpoint",
    "h_combined": "(h) (e) + target self-training with appearance randomisation, last checkpoint",
}


def table(direction: str, rows: dict) -> str:
    import numpy as np

    s, t = direction.split("2")
    head = "| row | seeds | " + " | ".join(ORGANS) + " | mean Dice | mean ASSD (mm) |"
    lines = [head, "|" + "---|" * (len(ORGANS) + 4)]
    for key, r in rows.items():
        cells = [f"{r[f'dice/{o}']:.3f} / {r[f'assd/{o}']:.1f}" for o in ORGANS]
        name = ROW_NAMES[key].format(s=s.upper(), t=t.upper())
        seeds = r.get("seeds_mean_dice", [r["mean_dice"]])
        dice = f"{np.mean(seeds):.3f} ± {np.std(seeds):.3f}" if len(seeds) > 1 else f"{seeds[0]:.3f}"
        lines.append(
            f"| {name} | {len(seeds)} | " + " | ".join(cells) + f" | {dice} | {r['mean_assd']:.1f} |"
        )
    # the acceptance: a row without target labels at >= 0.75, mean of 3 seeds
    decided = {
        k: r for k, r in rows.items() if k != "d_supervised_target" and len(r.get("seeds_mean_dice", [])) >= 3
    }
    if decided:
        best = max(decided, key=lambda k: decided[k]["mean_dice"])
        dice = decided[best]["mean_dice"]
        verdict = (
            f"best row without {t.upper()} labels on 3 seeds: {best[0]} at {dice:.3f}, "
            f"{'meets' if dice >= 0.75 else 'below'} the target (>= 0.75, mean of 3 seeds)"
        )
    else:
        verdict = f"no row without {t.upper()} labels has 3 seeds (the 0.75 target is judged on a mean of 3)"
    if "d_supervised_target" in rows:
        verdict += f"; (d), trained on {t.upper()} labels: {rows['d_supervised_target']['mean_dice']:.3f}"
    lines += ["", f"{s.upper()}->{t.upper()}: {verdict}."]
    return "\n".join(lines)


def main() -> None:
    shared = parent_parser(
        data_root=default_data_root(),
        size=128,
        ngf=16,
        gan_steps=2500,
        eval_every=250,
        seeds=[0, 1, 2],
        set=[],
        helps={
            "size": "slices resized to SIZE x SIZE",
            "ngf": "generator filters (CycleGAN: 64)",
            "gan_steps": "training steps of each GAN run",
            "eval_every": "validation every N steps of the U-Net runs",
            "seeds": "seeds of rows (e)-(h)",
            "set": "extra override for every run",
        },
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument(
        "--gan-eval-every", type=int, default=500, help="validation every N steps of the GAN runs"
    )
    ap.add_argument("--sup-steps", type=int, default=1500, help="training steps of each U-Net run")
    ap.add_argument("--seed", type=int, default=0, help="seed of rows (a)-(d)")
    ap.add_argument("--round-steps", type=int, default=500, help="self-training: steps per teacher round")
    ap.add_argument("--parts", nargs="+", choices=PARTS, help="train only these runs (no table)")
    ap.add_argument(
        "--network", choices=("unet", "encoder_unet"), default="encoder_unet",
        help="the segmenter of every route: the ImageNet-encoder U-Net (configs/ct_pretrained.yaml; runs in "
        "runs/bench/ct2mr_encoder_unet, JSON ct2mr.json) or the core U-Net (configs/ct.yaml; runs/bench/ct2mr, "
        "ct2mr_unet.json)",
    )  # fmt: skip
    ap.add_argument(
        "--rows", nargs="+", choices=ROW_NAMES,
        help="train and score only these rows, into benchmarks/results/ct2mr_rows.json (ct2mr.json and the docs are "
        "left alone)",
    )  # fmt: skip
    ap.add_argument(
        "--directions",
        nargs="+",
        choices=("ct2mr", "mr2ct"),
        help="only these directions (with --rows or --parts)",
    )
    ap.add_argument(
        "--row-seeds", nargs="+", action="extend", type=_row_seeds, default=[], metavar="DIRECTION:ROW=SEEDS",
        help="other seeds for one of rows (e)-(h) in one direction, e.g. ct2mr:e_appearance=0,1,2 (the rows that "
        "decide the acceptance get 3 seeds, the others --seeds)",
    )  # fmt: skip
    args = parse(ap, require="abdominal_ct_mr/mr/images")
    args.row_seeds = dict(args.row_seeds)
    results = run(args)
    if results is None:
        return
    cmd = command_line("ct2mr")
    if args.rows or args.directions:  # a part of the table (a rerun of recorded rows): its own JSON only
        finish(
            f"{results_name(args)}_rows", {"command": cmd, "summary": summary(results), "results": results}
        )
        return
    finish(results_name(args), {"command": cmd, "summary": summary(results), "results": results})
    grids = []
    for name in ("cyclegan", "joint_ct2mr", "joint_mr2ct"):
        pics = sorted((out_dir(args) / name).glob("translation_step*.png"))
        if pics:
            dst = REPO / "docs" / "img" / f"{results_name(args)}_{name}.png"
            shrink_png(pics[-1], dst, width=560)
            grids.append(f"![{name}](img/{dst.name})")
    net = (
        "U-Nets of configs/ct.yaml"
        if args.network == "unet"
        else "encoder U-Nets of configs/ct_pretrained.yaml"
    )
    body = (
        f"## Domain adaptation CT <-> MR (abdominal_ct_mr), {args.network}\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/{results_name(args)}.json`). CPU size: slices {args.size}x{args.size}, "
        f"ResNet-6 generators with {args.ngf} filters, PatchGAN 64, batch 1, {args.gan_steps} GAN steps "
        f"(constant then linear LR decay); {net}, batch 8, {args.sup_steps} steps. "
        f"Scored on the target's validation patients (MR {', '.join(results['ct2mr']['c_joint']['patients'])}; "
        f"CT {', '.join(results['mr2ct']['c_joint']['patients'])}). "
        "Cells: Dice / ASSD (mm), means over the row's seeds; mean Dice ± std over seeds where a row has several. "
        f"Rows (a)-(d) run seed {args.seed}; one seed, so differences of a few points are within run-to-run noise.\n\n"
        "### CT -> MR (CT labels; MR labels for scoring and row d only)\n\n"
        + table("ct2mr", results["ct2mr"])
        + "\n\n### MR -> CT (MR labels; CT labels for scoring and row d only)\n\n"
        + table("mr2ct", results["mr2ct"])
        + "\n\nTranslation grids at the end of training (real -> translated -> reconstructed, with the "
        "segmenter's output on the target modality):\n\n" + "\n".join(grids) + "\n"
    )
    publish(results_name(args), body)


if __name__ == "__main__":
    main()
