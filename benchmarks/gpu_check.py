"""GPU check: the CUDA path of the trainer end to end, with step throughput and peak memory.

    bash benchmarks/gpu_check.sh                      # on a machine with one GPU, under 8 minutes
    python benchmarks/gpu_check.py --quick --device cpu   # a seconds-long dry run of the same code on CPU

Built-in phantoms only (no data needed). Each case trains with the real ``Trainer`` (AMP bf16 on CUDA, pinned
memory, non-blocking copies, batched augmentation on the device): ``--warmup`` steps, then ``--steps`` timed
steps (``fit(until=...)``, no evaluation inside the timed part); reported as steps/s, samples/s and the peak
CUDA memory of the case. Cases: supervised 2D U-Net 256x256 (plain, channels_last, torch.compile), CycleGAN +
segmenter 2D 256x256 (ResNet-9, 64 filters, batch 1), mean teacher 2D 256x256 (8 + 8), supervised 3D U-Net on
96^3 patches; augmentation throughput of the batched GPU pipeline (2D 256, 3D 96^3). Writes JSON
(``--out``) and, with ``--results-md``, the docs/results.md section.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import REPO, parent_parser, script_parser, update_results_md

sys.path.insert(0, str(REPO))  # weakseg without an install (the device machine)

from weakseg.config import load_config  # noqa: E402
from weakseg.engine.trainer import Trainer  # noqa: E402

UNET_2D = "{channels: [32, 64, 128, 256, 512], strides: [2, 2, 2, 2], num_res_units: 2}"
UNET_3D = "{channels: [16, 32, 64, 128, 256], strides: [2, 2, 2, 2], num_res_units: 1}"
AUG_2D = (
    "[{name: flip, axes: [0, 1], p: 0.5}, {name: rotate, degrees: [-15, 15], p: 0.5}, "
    "{name: scale, factor: [0.9, 1.1], p: 0.5}, {name: elastic_grid, sigma: 10, grid: 3, p: 0.5}, "
    "{name: gamma, gamma: [0.8, 1.2], p: 0.3}]"
)
AUG_3D = (
    "[{name: flip, axes: [0, 1, 2], p: 0.5}, {name: rotate, degrees: [-15, 15], p: 0.5}, "
    "{name: scale, factor: [0.9, 1.1], p: 0.5}, {name: elastic_grid, sigma: 6, grid: 3, p: 0.5}]"
)


def cases(quick: bool) -> dict[str, list[str]]:
    size, size3 = (64, 32) if quick else (256, 96)
    common = [
        "data.source=phantom",
        "train.progress=false",
        "train.save_pictures=false",
        "train.log_every=10",
    ]
    d2 = [*common, f"data.phantom_size={size}", "data.phantom_cases=6", "data.phantom_slices=8"]
    sup = [
        *d2,
        "model.network=unet",
        f"model.params={UNET_2D}",
        "train.batch_size=16",
        f"augment.transforms={AUG_2D}",
    ]
    out = {
        "supervised_2d": sup,
        "supervised_2d_channels_last": [*sup, "train.channels_last=true"],
        "supervised_2d_compile": [*sup, "train.compile=true"],
        "cyclegan_seg_2d": [
            *d2,
            "target={phantom_modality: mr}",
            "method.name=cyclegan",
            "method.params={generator: resnet_9, ngf: 64, ndf: 64}",
            f"model.params={UNET_2D}",
            "train.batch_size=1",
        ],
        "mean_teacher_2d": [
            *d2,
            "data.labeled_fraction=0.5",
            "method.name=mean_teacher",
            f"model.params={UNET_2D}",
            "train.batch_size=8",
            "train.stream_batch_sizes={unlabeled: 8}",
        ],
        "supervised_3d": [
            *common,
            "data.slice_axis=null",
            f"data.phantom_size={size3 + 32}",
            f"data.phantom_slices={size3 + 16}",
            "data.phantom_cases=4",
            f"data.patch_size=[{size3}, {size3}, {size3}]",
            f"model.params={UNET_3D}",
            "train.batch_size=2",
        ],
    }
    if quick:
        out.pop("supervised_2d_compile")  # compiling on CPU needs a C toolchain and minutes
    return out


def samples_per_step(cfg) -> int:
    extra = sum(cfg.train.stream_batch_sizes.values())
    return cfg.train.batch_size * (2 if cfg.method.name == "cyclegan" else 1) + extra


def run_case(name: str, overrides: list[str], args, root: Path) -> dict:
    cfg = load_config(None, [*overrides, f"train.device={args.device}", f"train.max_steps={10**6}"])
    cuda = torch.cuda.is_available() and args.device != "cpu"
    trainer = Trainer(cfg, run_dir=root / name)
    t0 = time.perf_counter()
    trainer.fit(until=args.warmup)  # compile, cuDNN autotune, loader start-up
    warm = time.perf_counter() - t0
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.fit(until=args.warmup + args.steps)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    steps_s = args.steps / seconds
    return {
        "steps_per_s": steps_s,
        "samples_per_s": steps_s * samples_per_step(cfg),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "warmup_s": warm,
        "amp": str(trainer.amp_dtype),
    }


def augment_throughput(args) -> dict:
    from weakseg.augment import build_augmentation
    from weakseg.keys import Keys

    dev = torch.device(
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    out = {}
    for name, dims, shape, batch in (("2d_256", 2, (256, 256), 32), ("3d_96", 3, (96, 96, 96), 4)):
        if args.quick:
            shape, batch = tuple(s // 4 for s in shape), 4
        cfg = load_config(None, [f"augment.transforms={AUG_2D}"])
        if dims == 3:
            cfg = load_config(
                None, ["data.source=nifti", "data.slice_axis=null", f"augment.transforms={AUG_3D}"]
            )
        _, aug = build_augmentation(cfg)
        batch_t = {
            Keys.IMAGE: torch.randn(batch, 1, *shape, device=dev),
            Keys.LABEL: torch.randint(0, 5, (batch, *shape), device=dev),
        }
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            aug(dict(batch_t), g)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        n = 5 if args.quick else 50
        t0 = time.perf_counter()
        for _ in range(n):
            aug(dict(batch_t), g)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        out[name] = {
            "samples_per_s": n * batch / (time.perf_counter() - t0),
            "batch": batch,
            "shape": list(shape),
        }
    return out


def main() -> None:
    shared = parent_parser(
        warmup=20,
        steps=60,
        helps={
            "warmup": "untimed steps of each case first (compile, cuDNN autotune, loader start-up)",
            "steps": "timed training steps of each case",
        },
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument("--device", default="auto", help="training device: auto, cuda or cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CPU dry run)")
    ap.add_argument("--cases", nargs="+", help="only these cases")
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results" / "gpu_check.json",
        help="the JSON written",
    )
    ap.add_argument("--results-md", action="store_true", help="also write the docs/results.md section")
    args = ap.parse_args()
    if args.quick:
        args.warmup, args.steps = min(args.warmup, 2), min(args.steps, 3)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else "CPU"
    results: dict = {"device": device, "torch": torch.__version__, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in cases(args.quick).items():
            if args.cases and name not in args.cases:
                continue
            t0 = time.perf_counter()
            try:
                results["cases"][name] = run_case(name, overrides, args, Path(tmp))
            except Exception as e:  # one failing case must not hide the others' numbers
                results["cases"][name] = {"error": f"{type(e).__name__}: {e}"[:500]}
            print(f"{name}: {results['cases'][name]} ({time.perf_counter() - t0:.0f} s)", flush=True)
    results["augmentation"] = augment_throughput(args)
    print(f"augmentation: {results['augmentation']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.results_md:
        rows = ["| case | steps/s | samples/s | peak memory (GiB) |", "|---|---|---|---|"]
        for name, r in results["cases"].items():
            if "error" in r:
                rows.append(f"| {name} | failed: {r['error'][:80]} | | |")
                continue
            mem = "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}"
            rows.append(f"| {name} | {r['steps_per_s']:.2f} | {r['samples_per_s']:.1f} | {mem} |")
        aug = ", ".join(
            f"{k}: {v['samples_per_s']:.0f} samples/s (batch {v['batch']})"
            for k, v in results["augmentation"].items()
        )
        update_results_md(
            "gpu_check",
            f"## GPU check ({device})\n\nCommand: `bash benchmarks/gpu_check.sh` (JSON: `benchmarks/results/gpu_check.json`); "
            f"{args.warmup} warm-up steps, then {args.steps} timed steps of the real trainer, AMP {results['cases'].get('supervised_2d', {}).get('amp', '')}.\n\n"
            + "\n".join(rows)
            + f"\n\nBatched augmentation on the device: {aug}.\n",
        )


if __name__ == "__main__":
    main()
