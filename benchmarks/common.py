"""Shared helpers of the benchmark scripts: the arguments they have in common, data-root lookup, JSON output
and docs/results.md sections."""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS_MD = REPO / "docs" / "results.md"
RESULTS_DIR = REPO / "benchmarks" / "results"

__all__ = [
    "REPO",
    "RESULTS_DIR",
    "command_line",
    "default_data_root",
    "finish",
    "fit_or_reuse",
    "git_commit",
    "machine",
    "mean_std",
    "parent_parser",
    "parse",
    "publish",
    "update_results_md",
    "write_json",
]

# the arguments of two or more scripts: keyword of parent_parser -> (flag, argparse keywords, help)
SHARED_ARGS: dict[str, tuple[str, dict, str]] = {
    "data_root": ("--data-root", {"type": Path}, "folder of the data sets (abdominal_ct_mr/, drive/, ...)"),
    "seeds": ("--seeds", {"type": int, "nargs": "+"}, "training seeds, one run each"),
    "steps": ("--steps", {"type": int}, "training steps of each run"),
    "eval_every": ("--eval-every", {"type": int}, "validation every N training steps"),
    "size": ("--size", {"type": int}, "image size in pixels (CPU size)"),
    "batch_size": ("--batch-size", {"type": int}, "training batch size"),
    "threads": ("--threads", {"type": int}, "torch CPU threads"),
    "warmup": ("--warmup", {"type": int}, "untimed warm-up steps before the timed ones"),
    "samples": ("--samples", {"type": int}, "samples in the picture, one row each"),
    "episodes": ("--episodes", {"type": int}, "(validation image, class) episodes"),
    "clicks": ("--clicks", {"type": int}, "simulated clicks per episode, at most"),
    "ngf": ("--ngf", {"type": int}, "generator filters"),
    "gan_steps": ("--gan-steps", {"type": int}, "training steps of the GAN"),
    "set": ("--set", {"action": "append", "metavar": "KEY=VALUE"}, "extra config override (repeatable)"),
}


def parent_parser(helps: dict[str, str] | None = None, **defaults) -> argparse.ArgumentParser:
    """A parser (``add_help=False``, for ``ArgumentParser(parents=[...])``) holding the arguments of
    ``SHARED_ARGS`` named by the keywords, in their order, each with the keyword's value as its default.
    ``helps`` replaces the help text of some of them; every help but --set's ends with the default."""
    helps = helps or {}
    unknown = sorted((set(defaults) | set(helps)) - set(SHARED_ARGS))
    if unknown:
        raise TypeError(f"no shared benchmark argument {unknown}; choose from {sorted(SHARED_ARGS)}")
    parser = argparse.ArgumentParser(add_help=False)
    for key, default in defaults.items():
        flag, kwargs, text = SHARED_ARGS[key]
        text = helps.get(key, text)
        if kwargs.get("action") != "append":
            text += " (default: %(default)s)"
        parser.add_argument(flag, default=default, help=text, **kwargs)
    return parser


def script_parser(doc: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A benchmark's parser: its module docstring as the description (kept as written), the shared
    arguments of ``parents`` (``parent_parser(...)``) first."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, parents=list(parents)
    )


def parse(
    parser: argparse.ArgumentParser,
    absolute_data_root: bool = False,
    set_threads: bool = False,
    require: str | None = None,
) -> argparse.Namespace:
    """``parser.parse_args()``, then: ``absolute_data_root`` makes --data-root absolute (one spelling of the path
    in every config, so that runs are reused whatever the working directory); ``set_threads`` gives torch
    --threads CPU threads; ``require`` (a folder under --data-root) exits with a message when it is missing.
    ``absolute_data_root`` is off by default: most scripts' recorded runs hold --data-root as typed, and a
    changed spelling would change their configs (and retrain them)."""
    args = parser.parse_args()
    if absolute_data_root:
        args.data_root = args.data_root.resolve()
    if set_threads:
        torch.set_num_threads(args.threads)
    if require is not None and not (args.data_root / require).is_dir():
        raise SystemExit(f"{args.data_root}/{require} not found; pass --data-root")
    return args


def command_line(script: str) -> str:
    """``python benchmarks/<script>.py`` and this process's arguments, as the JSON and the docs quote it."""
    return f"python benchmarks/{script}.py " + " ".join(sys.argv[1:])


def default_data_root() -> Path:
    return REPO.parent / "shared" / "data"


def machine() -> str:
    dev = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU, {torch.get_num_threads()} threads"
    )
    return f"{platform.node() or 'host'}: {dev}; torch {torch.__version__}; python {sys.version.split()[0]}"


def mean_std(values: list[float]) -> str:
    import numpy as np

    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def git_commit() -> str:
    """HEAD of the checkout, with ``+dirty`` when tracked files differ from it (the rows may then not
    reproduce from that commit alone)."""
    import subprocess

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def write_json(path: Path, payload: dict) -> None:
    """Write a results JSON with when, where (machine, torch threads) and at which commit it was made."""
    from weakseg.fileio import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "commit": git_commit(),
        "torch_threads": torch.get_num_threads(),
        **payload,
    }
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def update_results_md(section: str, body: str, path: Path = RESULTS_MD) -> None:
    """Replace (or append) the block between ``<!-- section:start -->`` and ``<!-- section:end -->`` of
    docs/results.md (or of the guide ``path``: guides quote their tables from the same run, never typed)."""
    from weakseg.fileio import atomic_write_text

    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.is_file() else "# Measured results\n\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def publish(section: str, body: str, path: Path = RESULTS_MD, echo: bool = True) -> None:
    """The ``section`` block of docs/results.md (or of ``path``) set to ``body``, which is also printed."""
    update_results_md(section, body, path)
    if echo:
        print(body)


def finish(
    name: str, payload: dict, body: str | None = None, section: str | None = None, echo: bool = True
) -> None:
    """Write benchmarks/results/<name>.json (``write_json``: payload with time, machine and commit), then with
    ``body`` the <section> (default: <name>) block of docs/results.md, printed too; then the numbers README and
    the guides quote (benchmarks/quote.py) are rewritten from the JSON."""
    write_json(RESULTS_DIR / f"{name}.json", payload)
    if body is not None:
        publish(section or name, body, echo=echo)
    from quote import QuoteError, requote

    try:  # the numbers README and the guides quote from this JSON (benchmarks/quote.py)
        for change in requote():
            print(f"requoted {change}")
    except QuoteError as e:
        print(f"warning: a quoted number no longer resolves: {e}", file=sys.stderr)


def _normalised(cfg) -> dict:
    from weakseg.config import config_to_dict

    return json.loads(json.dumps(config_to_dict(cfg)))


def _as_recorded(cfg, saved: Path) -> dict | None:
    """``cfg`` as its run folder records it. A ``refine`` run records its first network's config in place of
    the ``method.params.initial`` checkpoint path (weakseg/interactive/refine.py): the path is resolved the same
    way, and None (no match) when that checkpoint is newer than the run (the first network was retrained)."""
    from weakseg.api import recorded_config

    initial = cfg.method.params.get("initial")
    if (
        isinstance(initial, str)
        and Path(initial).is_file()
        and Path(initial).stat().st_mtime > saved.stat().st_mtime
    ):
        return None
    return recorded_config(cfg)


def fit_or_reuse(cfg, run_dir: Path) -> dict:
    """Train ``cfg`` in ``run_dir``: reuse a finished run with the same config, resume an unfinished one,
    start over when the config changed. Returns the trainer's summary."""
    from weakseg.config import config_from_dict
    from weakseg.engine.trainer import Trainer

    saved = run_dir / "config.json"
    # read back through the config schema: keys added to weakseg since that run take their defaults
    same = saved.is_file() and _normalised(config_from_dict(json.loads(saved.read_text()))) == _as_recorded(
        cfg, saved
    )
    summary = run_dir / "summary.json"
    if same and summary.is_file() and json.loads(summary.read_text())["step"] >= cfg.train.max_steps:
        print(f"reusing finished run {run_dir}")
        return json.loads(summary.read_text())
    resume = same and (run_dir / "last.pt").is_file()
    return Trainer(cfg, run_dir=run_dir, resume=resume, overwrite=not resume).fit()
