"""The ``weakseg adapt`` subcommand (registered as an entry point of group ``weakseg.commands``): translate a
labeled dataset with a CycleGAN checkpoint, or run a whole route of named stages from one YAML."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="domain adaptation tools (translate a dataset, run a whole route)")
    adapt_sub = p.add_subparsers(dest="adapt_command", required=True)
    t = adapt_sub.add_parser(
        "translate", help="write a translated copy of a labeled dataset (two-stage variant)"
    )
    t.add_argument("checkpoint", help="a cyclegan checkpoint (joint or translation-only)")
    t.add_argument("--input", required=True, help="folder with images/ (and masks/, copied)")
    t.add_argument("--output", required=True, help="new dataset folder")
    t.add_argument("--direction", help="e.g. ct2mr or mr2ct (default: source to target)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    r = adapt_sub.add_parser(
        "run", help="run a whole route (named stages in one YAML, e.g. joint then self_train)"
    )
    r.add_argument("route", help="route YAML: root + stages [{name, config, set}] (adapt/route.py)")
    r.add_argument("--set", action="append", default=[], metavar="STAGE:KEY=VALUE", help="override one stage")
    r.add_argument("--overwrite", action="store_true", help="retrain stages whose config changed")
    p.set_defaults(handler=_adapt)


def _adapt(args) -> int:
    if args.adapt_command == "run":
        from adapt.route import run_route

        results = run_route(args.route, args.set, overwrite=args.overwrite)
        for name, r in results.items():
            last = (r.get("last") or {}).get("mean_dice")
            print(
                f"stage {name}: {r.get('run_dir', '')} step {r['step']}"
                + (f", last mean Dice {last:.3f}" if last is not None else "")
            )
        return 0
    from adapt.translate import translate_dataset

    out = translate_dataset(
        args.checkpoint, args.input, args.output, args.direction, overwrite=args.overwrite
    )
    print(f"wrote translated dataset {out} (images/, masks/, manifest.json)")
    return 0
