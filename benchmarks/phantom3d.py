"""3D: a 3D U-Net trained on foreground-oversampled patches of the built-in 3D phantoms, evaluated on whole
validation volumes with Gaussian sliding windows.

    python benchmarks/phantom3d.py

CPU size: phantom volumes of --slices x --size x --size voxels, --patch^3 patches, batch 2. Writes the
validation Dice per organ and the time into docs/results.md.
"""

from __future__ import annotations

import subprocess
import sys
import time

from common import REPO, command_line, finish, fit_or_reuse, machine, parent_parser, script_parser

from weakseg.api import evaluate
from weakseg.config import load_config


def _peak_rss_mb(checkpoint: str, shape: tuple[int, ...], roi: int | None, stitch_mb: float) -> float:
    """Peak resident memory (MB) of a fresh process that runs inference on a random volume of ``shape``."""
    code = f"""
import resource, torch
from weakseg.api import load_trained
from weakseg.config import InferConfig
from weakseg.methods.infer import predict_logits
torch.set_num_threads(1)
cfg, method, dev = load_trained({checkpoint!r}, device="cpu")
x = torch.randn(1, 1, *{shape!r})
window = None if {roi!r} is None else InferConfig(roi_size=[{roi!r}] * 3, sw_batch_size=1, stitch_on_cpu_mb={stitch_mb!r})
with torch.no_grad():
    predict_logits(method, x, window=window)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    shared = parent_parser(
        size=96, steps=600, helps={"size": "in-plane size of the phantom volumes (voxels)"}
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument("--slices", type=int, default=48, help="slices of each phantom volume")
    ap.add_argument("--patch", type=int, default=48, help="training patches and sliding windows of PATCH^3")
    args = ap.parse_args()
    p = args.patch
    cfg = load_config(
        None,
        [
            "data.slice_axis=null",
            f"data.phantom_size={args.size}",
            f"data.phantom_slices={args.slices}",
            "data.phantom_cases=12",
            "data.val_fraction=0.25",
            f"data.patch_size=[{p}, {p}, {p}]",
            "model.params={channels: [16, 32, 64, 128], strides: [2, 2, 2], num_res_units: 1}",
            "augment.transforms=[{name: flip, axes: [2], p: 0.5}, {name: rotate, degrees: [-10, 10], p: 0.3}]",
            "data.swap_labels=[[2, 3]]",
            "optim.lr=0.002",
            f"train.max_steps={args.steps}",
            f"train.eval_every={max(1, args.steps // 3)}",
            "train.batch_size=2",
            "train.eval_batch_size=1",
            "train.name=phantom3d",
        ],
    )
    run_dir = REPO / "runs" / "bench" / "phantom3d"
    t0 = time.perf_counter()
    fit_or_reuse(cfg, run_dir)
    minutes = (time.perf_counter() - t0) / 60
    acc = evaluate(run_dir / "best.pt", progress=False)
    s = acc.summary()
    big = (160, 256, 256)  # a volume much larger than a patch
    memory = {
        "whole_volume_mb": _peak_rss_mb(str(run_dir / "best.pt"), big, None, 1024.0),
        "sliding_window_mb": _peak_rss_mb(str(run_dir / "best.pt"), big, p, 0.0),
        "volume": list(big),
    }
    cmd = command_line("phantom3d")
    organs = ["liver", "right_kidney", "left_kidney", "spleen"]
    body = (
        "## 3D U-Net on 3D phantoms (patches + sliding-window evaluation)\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/phantom3d.json`); {machine()}. Volumes {args.slices}x"
        f"{args.size}x{args.size}, {p}^3 patches (a third centred on foreground), batch 2, {args.steps} steps "
        f"({minutes:.1f} min including evaluation); whole validation volumes (3 cases) with Gaussian sliding "
        f"windows of {p}^3.\n\n| organ | Dice |\n|---|---|\n"
        + "\n".join(f"| {o} | {s[f'dice/{o}']:.3f} |" for o in organs)
        + f"\n| **mean** | **{s['mean_dice']:.3f}** |\n\n"
        f"Peak memory of inference on a {'x'.join(map(str, big))} volume (fresh process, resident set): whole "
        f"volume at once {memory['whole_volume_mb']:.0f} MB; sliding windows of {p}^3 (1 at a time, stitched in "
        f"CPU memory) {memory['sliding_window_mb']:.0f} MB.\n"
    )
    finish("phantom3d", {"command": cmd, "minutes": minutes, "summary": s}, body)


if __name__ == "__main__":
    main()
