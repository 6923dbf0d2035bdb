"""``weakseg demo``: train and evaluate on the built-in phantoms (``--adapt``: CT -> MR transfer). The runs'
configs are configs/demo.yaml, configs/demo_adapt_ct_only.yaml and configs/demo_adapt.yaml."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from weakseg.api import add_set_argument
from weakseg.cli.configs import config_path

__all__ = ["add_demo_command", "demo_adapt_configs", "demo_config"]


def _config(name: str, overrides: list[str] | None = None):
    from weakseg.config import load_config

    return load_config(config_path(name), overrides)


def demo_config(overrides: list[str] | None = None):
    """The config of ``weakseg demo`` (configs/demo.yaml)."""
    return _config("demo.yaml", overrides)


def demo_adapt_configs(overrides: list[str] | None = None):
    """(CT-only U-Net, joint CycleGAN + U-Net) configs of ``weakseg demo --adapt``."""
    return _config("demo_adapt_ct_only.yaml", overrides), _config("demo_adapt.yaml", overrides)


def add_demo_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="train and evaluate on built-in phantoms (about 2.5 minutes on 2 CPU cores)"
    )
    p.add_argument("--out", default="runs", help="parent folder of the demo run (default: runs)")
    p.add_argument(
        "--adapt",
        action="store_true",
        help="domain adaptation instead: CT-labeled phantoms -> MR phantoms, CT-only U-Net vs joint CycleGAN + "
        "U-Net, both scored on MR (about 6 minutes on 2 CPU cores)",
    )
    add_set_argument(p)
    p.set_defaults(handler=_demo)


def _demo(args) -> int:
    from weakseg.api import evaluate
    from weakseg.engine.trainer import Trainer

    if args.adapt:
        return _demo_adapt(args)
    cfg = demo_config(args.overrides)
    run_dir = Path(args.out) / f"{cfg.train.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(
        f"weakseg demo: {cfg.model.network} on built-in {cfg.data.phantom_modality.upper()} phantoms, "
        f"{cfg.train.max_steps} steps; run folder {run_dir}"
    )
    result = Trainer(cfg, run_dir=run_dir).fit()
    acc = evaluate(Path(result["run_dir"]) / "best.pt", out_csv=run_dir / "best_eval.csv", progress=False)
    print(acc.format_table())
    summary = acc.summary()
    print(f"run folder: {run_dir} (best.pt, last.pt, metrics.csv, curves.png, overlay_step*.png)")
    print(f"mean foreground Dice: {summary['mean_dice']:.3f}")
    return 0


def _demo_adapt(args) -> int:
    """CT-labeled phantoms -> unlabeled MR phantoms: a U-Net trained on CT only (no adaptation, selected on CT
    validation) against the joint CycleGAN + U-Net (last checkpoint), both scored on MR validation phantoms."""
    from weakseg.api import evaluate
    from weakseg.engine.trainer import Trainer

    parent = Path(args.out) / f"demo_adapt-{time.strftime('%Y%m%d-%H%M%S')}"
    sup, joint = demo_adapt_configs(args.overrides)
    print(
        f"weakseg demo --adapt: CT phantoms with labels -> MR phantoms without; (1) U-Net on CT only, "
        f"{sup.train.max_steps} steps; (2) CycleGAN + U-Net, {joint.train.max_steps} steps; folder {parent}"
    )
    Trainer(sup, run_dir=parent / "ct_only").fit()
    Trainer(joint, run_dir=parent / "joint").fit()
    mr = [
        "data.phantom_modality=mr",
        f"data.phantom_seed={joint.target.phantom_seed}",
    ]  # the joint run's MR val
    before = evaluate(parent / "ct_only" / "best.pt", overrides=mr, progress=False).summary()["mean_dice"]
    after_acc = evaluate(parent / "joint" / "last.pt", progress=False)
    after = after_acc.summary()["mean_dice"]
    print(after_acc.format_table())
    print(f"run folder: {parent} (joint/translation_step*.png: CT -> MR -> CT and MR -> CT -> MR)")
    print(f"MR validation mean Dice: no adaptation {before:.3f}, joint CycleGAN + U-Net {after:.3f}")
    return 0
