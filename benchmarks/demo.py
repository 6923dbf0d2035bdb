"""Time `weakseg demo` end to end on this machine and record its per-class Dice in docs/results.md.

    python benchmarks/demo.py

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

from common import REPO, update_results_md, write_json
from PIL import Image


def shrink_png(src: Path, dst: Path, width: int = 520) -> None:
    img = Image.open(src).convert("RGB")
    img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img.quantize(colors=128).save(dst, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench")
    args = ap.parse_args()
    weakseg = Path(sys.executable).with_name("weakseg")
    t0 = time.perf_counter()
    proc = subprocess.run([str(weakseg), "demo", "--out", str(args.out)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"weakseg demo failed:\n{proc.stderr[-3000:]}")
    out = proc.stdout
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
    write_json(
        REPO / "benchmarks" / "results" / "demo.json",
        {
            "command": "python benchmarks/demo.py",
            "seconds": seconds,
            "mean_dice": mean,
            "dice": per_class,
            "stdout_tail": out[-1500:],
        },
    )
    rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in per_class.items())
    body = (
        "## `weakseg demo` (built-in CT phantoms, 2D U-Net)\n\n"
        f"Command: `python benchmarks/demo.py` (runs `weakseg demo`; JSON: `benchmarks/results/demo.json`).\n"
        f"Wall time end to end: **{seconds / 60:.1f} min** on this machine's CPU (2 cores); "
        f"**mean foreground Dice {mean:.3f}** on the 4 held-out phantom cases.\n\n"
        "| class | Dice |\n|---|---|\n" + rows + "\n\n"
        "![demo curves](img/demo_curves.png) ![demo overlay](img/demo_overlay.png)\n"
    )
    update_results_md("demo", body)
    print(body)


if __name__ == "__main__":
    main()
