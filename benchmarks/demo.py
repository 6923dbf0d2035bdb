"""Time `weakseg demo` end to end on this machine and record its per-class Dice in docs/results.md.

    python benchmarks/demo.py            # weakseg demo
    python benchmarks/demo.py --adapt    # weakseg demo --adapt (CT -> MR phantoms)

Runs the real command in a subprocess (same as a user would), so the time includes start-up, phantom
rendering, training, evaluation and pictures. Copies the curves and the last overlay into docs/img/.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, finish
from PIL import Image


def shrink_png(src: Path, dst: Path, width: int = 520) -> None:
    img = Image.open(src).convert("RGB")
    img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img.quantize(colors=128).save(dst, optimize=True)


def run_demo(out_dir: Path, extra: list[str]) -> tuple[str, float]:
    """Run ``weakseg demo [extra]`` as a user would; its stdout and wall seconds."""
    weakseg = Path(sys.executable).with_name("weakseg")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(weakseg), "demo", *extra, "--out", str(out_dir)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"weakseg demo {' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout, seconds


def record_adapt(out: str, seconds: float) -> None:
    m = re.search(
        r"^MR validation mean Dice: no adaptation ([0-9.]+), joint CycleGAN \+ U-Net ([0-9.]+)$", out, re.M
    )
    before, after = float(m.group(1)), float(m.group(2))
    run_dir = Path(re.search(r"^run folder: (\S+)", out, re.M).group(1))
    grids = sorted((run_dir / "joint").glob("translation_step*.png"))
    shrink_png(grids[-1], REPO / "docs" / "img" / "demo_adapt_translation.png", width=560)
    payload = {
        "command": "python benchmarks/demo.py --adapt",
        "seconds": seconds,
        "mr_dice_no_adaptation": before,
        "mr_dice_joint": after,
        "stdout_tail": out[-1500:],
    }
    body = (
        "## `weakseg demo --adapt` (CT phantoms with labels -> MR phantoms without)\n\n"
        "Command: `python benchmarks/demo.py --adapt` (runs `weakseg demo --adapt`; JSON: "
        f"`benchmarks/results/demo_adapt.json`). Wall time end to end: **{seconds / 60:.1f} min** on this "
        "machine's CPU (2 cores). Mean foreground Dice on the MR validation phantoms: U-Net trained on CT only "
        f"(selected on CT validation) **{before:.3f}**; joint CycleGAN + U-Net (last checkpoint, no MR labels "
        f"used) **{after:.3f}**.\n\n![demo --adapt translation grid](img/demo_adapt_translation.png)\n"
    )
    finish("demo_adapt", payload, body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "runs" / "bench",
        help="parent folder of the demo run (weakseg demo --out)",
    )
    ap.add_argument("--adapt", action="store_true", help="time weakseg demo --adapt instead")
    args = ap.parse_args()
    out, seconds = run_demo(args.out, ["--adapt"] if args.adapt else [])
    if args.adapt:
        return record_adapt(out, seconds)
    mean = float(re.search(r"^mean foreground Dice: ([0-9.]+)$", out, re.M).group(1))
    per_class = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(liver|right_kidney|left_kidney|spleen)\s+([0-9.]+)", out, re.M)
    }
    run_dir = Path(re.search(r"^run folder: (\S+)", out, re.M).group(1))
    overlays = sorted(run_dir.glob("overlay_step*.png"))
    img = REPO / "docs" / "img"
    shrink_png(run_dir / "curves.png", img / "demo_curves.png")
    shrink_png(overlays[-1], img / "demo_overlay.png", width=420)
    payload = {
        "command": "python benchmarks/demo.py",
        "seconds": seconds,
        "mean_dice": mean,
        "dice": per_class,
        "stdout_tail": out[-1500:],
    }
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in per_class.items())
    body = (
        "## `weakseg demo` (built-in CT phantoms, 2D U-Net)\n\n"
        f"Command: `python benchmarks/demo.py` (runs `weakseg demo`; JSON: `benchmarks/results/demo.json`).\n"
        f"Wall time end to end: **{seconds / 60:.1f} min** on this machine's CPU (2 cores); "
        f"**mean foreground Dice {mean:.3f}** on the 4 held-out phantom cases.\n\n"
        "| class | Dice |\n|---|---|\n" + rows + "\n\n"
        "![demo curves](img/demo_curves.png) ![demo overlay](img/demo_overlay.png)\n"
    )
    finish("demo", payload, body)


if __name__ == "__main__":
    main()
