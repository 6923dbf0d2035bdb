"""The ``weakseg synth`` subcommand (registered as an entry point of group ``weakseg.commands``): write a
synthetic dataset from a GAN or SynthSeg-style painting, check its authenticity and usefulness."""

from __future__ import annotations

import argparse
from pathlib import Path

from weakseg.api import add_set_argument

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthetic data: write a dataset from a GAN, check its authenticity")
    synth_sub = p.add_subparsers(dest="synth_command", required=True)
    g = synth_sub.add_parser(
        "generate", help="write images/ + masks/ + manifest.json from a cgan or dual_gan"
    )
    g.add_argument("checkpoint", nargs="?", help="a cgan or dual_gan checkpoint (none with --synthseg)")
    g.add_argument(
        "--synthseg", action="store_true",
        help="no GAN: paint the --labels maps with SynthSeg's random per-label intensities (needs --num-classes)",
    )  # fmt: skip
    g.add_argument(
        "--num-classes", type=int, help="--synthseg: classes of the label maps (background included)"
    )
    g.add_argument(
        "--deform", action="store_true",
        help="new layouts by deforming each --labels map (random rotation, zoom, elastic), --synthseg or a checkpoint",
    )  # fmt: skip
    g.add_argument(
        "--recombine", action="store_true",
        help="new layouts structure by structure: each class of a --labels map possibly from another map, moved "
        "and scaled on its own (before --deform)",
    )  # fmt: skip
    g.add_argument("--n", type=int, required=True, help="number of samples to write")
    g.add_argument("--out", required=True, help="new dataset folder")
    g.add_argument("--seed", type=int, default=0, help="noise seed of the sampled label maps (default 0)")
    g.add_argument("--labels", help="label map PNGs to condition on (needed for a cgan; cycled to --n)")
    g.add_argument(
        "--fov", help="field-of-view masks (a fov_channel model): each sample gets a random crop of one"
    )
    g.add_argument(
        "--context", help="images/ + masks/ to paint --labels into (cgan with condition label_and_context)"
    )
    g.add_argument("--batch-size", type=int, default=8, help="samples generated at once (default 8)")
    g.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    e = synth_sub.add_parser("evaluate", help="authenticity (real-vs-synthetic classifier) and usefulness")
    e.add_argument("--real", required=True, help="real dataset root (images/) or image folder")
    e.add_argument("--synthetic", required=True, help="synthetic dataset root (weakseg synth generate --out)")
    e.add_argument("--size", type=int, default=64, help="classifier input size (default 64)")
    e.add_argument("--steps", type=int, default=300, help="classifier training steps (default 300)")
    e.add_argument("--seed", type=int, default=0, help="seed of the classifier and its split (default 0)")
    e.add_argument("--case-regex", default=r"p(\d+)", help="case id in real file names (split by case)")
    e.add_argument(
        "--config", help="also train segmenters (real / synthetic / real + synthetic) with this config"
    )
    e.add_argument("--runs", default="runs/synth_usefulness", help="run folders of the usefulness segmenters")
    e.add_argument("--out", help="write the results as JSON here")
    e.add_argument("--overwrite", action="store_true", help="replace existing usefulness runs / --out")
    add_set_argument(e)
    p.set_defaults(handler=_synth)


def _synth(args) -> int:
    if args.synth_command == "generate" and args.synthseg:
        from gans.generate import generate_synthseg

        if args.checkpoint or not args.labels or args.num_classes is None:
            raise ValueError(
                "--synthseg paints label maps without a GAN: pass --labels DIR and --num-classes K, and no checkpoint"
            )
        out = generate_synthseg(args.labels, args.n, args.out, args.num_classes, args.seed, args.deform,
                                overwrite=args.overwrite, batch_size=args.batch_size,
                                recombine=args.recombine)  # fmt: skip
        print(f"wrote synthetic dataset {out} ({args.n} samples: images/, masks/, manifest.json)")
        return 0
    if args.synth_command == "generate":
        from gans.generate import generate_dataset

        if not args.checkpoint:
            raise ValueError("weakseg synth generate needs a cgan or dual_gan checkpoint, or --synthseg")
        out = generate_dataset(
            args.checkpoint,
            args.n,
            args.out,
            seed=args.seed,
            labels=args.labels,
            context=args.context,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
            deform=args.deform,
            fov=args.fov,
            recombine=args.recombine,
        )
        print(f"wrote synthetic dataset {out} ({args.n} samples: images/, masks/, manifest.json)")
        return 0
    import json

    from gans.checks import authenticity, usefulness
    from weakseg.config import load_config
    from weakseg.fileio import atomic_write_text

    if args.out and Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; pass --overwrite or another --out")
    result = {
        "authenticity": authenticity(
            args.real, args.synthetic, args.size, args.steps, args.seed, args.case_regex
        )
    }
    a = result["authenticity"]
    print(
        f"authenticity: held-out accuracy {a['accuracy']:.3f}, AUC {a['auc']:.3f} (0.5 = indistinguishable)"
    )
    if args.config:
        cfg = load_config(args.config, [f"data.root={args.real}", *args.overrides])
        result["usefulness"] = usefulness(cfg, args.synthetic, args.runs, overwrite=args.overwrite)
        for name, r in result["usefulness"].items():
            print(f"usefulness: {name:15s} best validation {r['key_metric']} {r['best']:.3f}")
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=2))
    return 0
