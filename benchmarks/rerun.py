"""Re-run one recorded row of every results JSON from a clean checkout and compare it with the record.

    python benchmarks/rerun.py --data-root ../shared/data            # every JSON (about 90 CPU minutes)
    python benchmarks/rerun.py --data-root ../shared/data --only demo semi

The committed state (HEAD) is cloned into --clone (no run folders, nothing reused), and there each benchmark runs
its narrowest command for one row with the recorded settings (``ROWS``: the command, the thread count the
record was made at, where the value sits in the record and in the re-run's JSON, and the tolerance: exact for
trained quality figures, a ratio band for speed). Writes benchmarks/results/rerun.json and the table of
docs/reliability.md ("Benchmark rows reproduce").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common import REPO, RESULTS_DIR, default_data_root, finish, git_commit, update_results_md
from quote import QuoteError, select


@dataclass(frozen=True)
class Row:
    name: str  # the results JSON (benchmarks/results/<name>.json) whose row is re-run
    args: str  # benchmarks/<script>.py arguments; {data} = --data-root, {tmp} = a scratch folder
    path: str  # the value in the record (quote.py path syntax)
    script: str = ""  # default: the name
    rerun_json: str = ""  # the JSON the narrowed command writes (default: the name)
    rerun_path: str = ""  # default: path
    tolerance: float = 1e-6  # absolute, or relative with ``relative``
    relative: bool = False
    threads: int | None = None  # OMP_NUM_THREADS of the record when the script has no --threads
    ratio: str = ""  # a second path: the value is path / ratio (speed figures)


ROWS = [
    Row("demo", "--out {tmp}/demo", "mean_dice", tolerance=5e-4),
    Row("demo_adapt", "--adapt --out {tmp}/demo", "mr_dice_joint", script="demo", tolerance=5e-4),
    Row("pretrained", "--data-root {data} --steps 400 --eval-every 100 --size 128 --batch-size 8 --tasks ct10 "
        "--models unet --seeds 0", "rows.task=ct10.model=unet.seed=0.best_dice", threads=2),
    Row("semi", "--data-root {data} --plan ct2:unet:supervised:0 --runs-dir {tmp}/semi",
        "rows.task=ct2.network=unet.method=supervised.seed=0.best_dice"),
    Row("supervised_ct", "--data-root {data} --steps 3000 --steps-low 1500 --eval-every 250 --fractions 0.1 "
        "--seeds 0", "rows[fraction=0.1].seed=0.ct_val.mean_dice", threads=2),
    Row("augment_em", "--data-root {data} --seeds 0 --pipelines none", "rows.pipeline=none.seed=0.best_dice", threads=2),
    Row("phantom3d", "", "summary.mean_dice", threads=2),
    Row("interactive", "--data-root {data} --tasks ct", "results.ct.refine.noc85", threads=1),
    Row("ct2mr", "--data-root {data} --rows a_no_adaptation --directions ct2mr", "results.ct2mr.a_no_adaptation.mean_dice",
        rerun_json="ct2mr_rows", threads=1),
    Row("synth", "--data-root {data} --tasks drive --seeds 0 --real-only", "results.drive.rows.row=real.seed=0.best_dice",
        rerun_json="synth_real", threads=2),
    Row("augment_speed", "--threads 2", "results.dims=2.elastic=grid.library=ours, BatchAugment (cpu, batched).vs_fastest_peer",
        tolerance=0.35, relative=True),
    Row("trainer_overhead", "", "ratio", tolerance=0.05, threads=2),
    Row("serve_latency", "--data-root {data} --threads 2", "stats.refine.median_ms", ratio="stats.grabcut.median_ms",
        tolerance=0.3, relative=True, threads=2),
]  # fmt: skip


def _value(data: dict, row: Row, path: str, where: str) -> float:
    value = float(select(data, path, where))
    return value / float(select(data, row.ratio, where)) if row.ratio else value


def run_row(row: Row, clone: Path, data_root: Path, scratch: Path) -> dict:
    """Run ``row``'s narrowed command in ``clone``; its value against the record of this checkout."""
    recorded = json.loads((RESULTS_DIR / f"{row.name}.json").read_text())
    cmd = [sys.executable, f"benchmarks/{row.script or row.name}.py",
           *row.args.format(data=data_root, tmp=scratch).split()]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(clone)}
    if row.threads is not None:
        env["OMP_NUM_THREADS"] = str(row.threads)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True)
    minutes = (time.perf_counter() - start) / 60
    out = {"json": row.name, "command": " ".join(["python", *cmd[1:]]).replace(str(data_root), "../shared/data"),
           "threads": row.threads, "minutes": round(minutes, 1), "recorded_commit": recorded.get("commit")}  # fmt: skip
    out["recorded"] = _value(recorded, row, row.path, f"{row.name}.json")
    if done.returncode != 0:
        return {**out, "rerun": None, "match": False, "error": done.stderr.strip().splitlines()[-3:]}
    fresh = json.loads((clone / "benchmarks" / "results" / f"{row.rerun_json or row.name}.json").read_text())
    try:
        out["rerun"] = _value(
            fresh, row, row.rerun_path or row.path, f"re-run {row.rerun_json or row.name}.json"
        )
    except QuoteError as e:
        return {**out, "rerun": None, "match": False, "error": [str(e)]}
    diff = abs(out["rerun"] - out["recorded"])
    limit = row.tolerance * abs(out["recorded"]) if row.relative else row.tolerance
    return {**out, "difference": diff, "tolerance": limit, "match": diff <= limit}


def table(rows: list[dict]) -> str:
    lines = ["| results JSON | one-row command (clean checkout) | threads | recorded | re-run | match |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        fresh = "failed: " + " ".join(r.get("error", [])) if r["rerun"] is None else f"{r['rerun']:.6g}"
        lines.append(f"| {r['json']} | `{r['command']}` | {r['threads'] or 'default'} | {r['recorded']:.6g} | "
                     f"{fresh} | {'yes' if r['match'] else '**no**'} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data-root", type=Path, default=default_data_root(), help="the shared data (default: %(default)s)"
    )
    ap.add_argument(
        "--clone", type=Path, default=Path("/tmp/weakseg-rerun"), help="where HEAD is cloned (replaced)"
    )
    ap.add_argument("--only", nargs="+", choices=[r.name for r in ROWS], help="re-run only these JSONs' rows")
    args = ap.parse_args()
    rows = [r for r in ROWS if not args.only or r.name in args.only]
    if args.clone.exists():
        shutil.rmtree(args.clone)
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(args.clone)], check=True)
    scratch = args.clone / "scratch"
    results = []
    for row in rows:
        print(f"rerun {row.name} ...", flush=True)
        results.append(run_row(row, args.clone, args.data_root.resolve(), scratch))
        print(f"  {results[-1]}", flush=True)
    previous = (
        json.loads((RESULTS_DIR / "rerun.json").read_text())["rows"]
        if (RESULTS_DIR / "rerun.json").is_file()
        else []
    )
    merged = list(
        ({r["json"]: r for r in previous} | {r["json"]: r for r in results}).values()
    )  # --only keeps the rest
    body = (
        f"`python benchmarks/rerun.py --data-root ../shared/data` at commit `{git_commit()[:10]}`: HEAD cloned, "
        "each results JSON's narrowest one-row command run there (nothing reused), its value against the record "
        "(exact for trained figures, a band for speed ratios).\n\n" + table(merged) + "\n"
    )
    finish("rerun", {"command": "python benchmarks/rerun.py --data-root ../shared/data", "rows": merged})
    update_results_md("rerun", body, REPO / "docs" / "reliability.md")
    print(body)


if __name__ == "__main__":
    main()
