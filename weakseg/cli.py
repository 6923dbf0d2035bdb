"""``weakseg <subcommand>``: train, evaluate, predict, augment (preview), adapt, synth, serve, demo."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["DEMO_OVERRIDES", "demo_config", "main"]

# The demo is the defaults (built-in CT phantoms, 2D U-Net, Dice+CE) plus these; configs/demo.yaml mirrors them.
DEMO_OVERRIDES = [
    "train.name=demo",
    "train.max_steps=1200",
    "train.eval_every=300",
    "train.batch_size=8",
    "optim.lr=0.002",
]


# `weakseg demo --adapt`: CT -> MR phantoms at 64 px. Both runs share these; configs/demo_adapt.yaml mirrors
# the joint run. The MR phantoms use another anatomy seed than the CT ones (unpaired domains).
DEMO_ADAPT_COMMON = [
    "data.phantom_size=64",
    "data.phantom_cases=16",
    "data.val_fraction=0.25",
    "model.params={channels: [16, 32, 64, 128], strides: [2, 2, 2], num_res_units: 1}",
]
DEMO_ADAPT_SUPERVISED = [
    *DEMO_ADAPT_COMMON,
    "train.name=demo_adapt_ct_only",
    "train.max_steps=400",
    "train.eval_every=100",
    "optim.lr=0.002",
]
DEMO_ADAPT_JOINT = [
    *DEMO_ADAPT_COMMON,
    "target={phantom_modality: mr, phantom_seed: 1}",
    "method.name=cyclegan",
    "method.params={generator: resnet_6, ngf: 16, ndf: 32, domains: [ct, mr]}",
    "optim={name: adam, lr: 0.0002, betas: [0.5, 0.999], schedule: constant_linear, grad_clip: null}",
    "train.name=demo_adapt_joint",
    "train.max_steps=1200",
    "train.eval_every=300",
    "train.batch_size=2",
]


def demo_config():
    from weakseg.config import load_config

    return load_config(None, DEMO_OVERRIDES)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=10 (repeatable)",
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="weakseg", description=__doc__)
    from weakseg import __version__

    ap.add_argument("--version", action="version", version=f"weakseg {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "list", help="what can be named in a config: networks, losses, methods, transforms, encoders"
    )
    p.add_argument("what", choices=LISTABLE, help="which registry to list")

    p = sub.add_parser("train", help="train a method from a YAML config")
    p.add_argument("config", nargs="?", help="YAML config (omit with --resume)")
    _common(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--until", type=int, help="stop after this step (resume later with --resume)")

    p = sub.add_parser("evaluate", help="per-class and per-case metrics of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument(
        "--data", help="folder with images/ and masks/ (default: the checkpoint's validation split)"
    )
    p.add_argument("--out", help="CSV of per-case metrics (default: beside the checkpoint)")
    _common(p)

    p = sub.add_parser("predict", help="segment an image file or folder with a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _common(p)

    p = sub.add_parser("adapt", help="domain adaptation tools (translate a dataset, run a whole route)")
    adapt_sub = p.add_subparsers(dest="adapt_command", required=True)
    t = adapt_sub.add_parser(
        "translate", help="write a translated copy of a labeled dataset (two-stage variant)"
    )
    t.add_argument("checkpoint")
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
    g.add_argument("--deform", action="store_true", help="--synthseg: new layouts by deforming each real map")
    g.add_argument("--n", type=int, required=True, help="number of samples to write")
    g.add_argument("--out", required=True, help="new dataset folder")
    g.add_argument("--seed", type=int, default=0, help="noise seed of the sampled label maps (default 0)")
    g.add_argument("--labels", help="label map PNGs to condition on (needed for a cgan; cycled to --n)")
    g.add_argument(
        "--context", help="images/ + masks/ to paint --labels into (cgan with condition label_and_context)"
    )
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    e = synth_sub.add_parser("evaluate", help="authenticity (real-vs-synthetic classifier) and usefulness")
    e.add_argument("--real", required=True, help="real dataset root (images/) or image folder")
    e.add_argument("--synthetic", required=True, help="synthetic dataset root (weakseg synth generate --out)")
    e.add_argument("--size", type=int, default=64, help="classifier input size (default 64)")
    e.add_argument("--steps", type=int, default=300, help="classifier training steps (default 300)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--case-regex", default=r"p(\d+)", help="case id in real file names (split by case)")
    e.add_argument(
        "--config", help="also train segmenters (real / synthetic / real + synthetic) with this config"
    )
    e.add_argument("--runs", default="runs/synth_usefulness", help="run folders of the usefulness segmenters")
    e.add_argument("--out", help="write the results as JSON here")
    e.add_argument("--overwrite", action="store_true", help="replace existing usefulness runs / --out")
    _common(e)

    p = sub.add_parser("serve", help="a local web page to correct segmentations with clicks or a box")
    p.add_argument("checkpoint", help="a refine checkpoint (trained with method.params.initial)")
    p.add_argument(
        "--data", required=True, help="folder with images/ (masks are saved to interactive_masks/)"
    )
    p.add_argument("--box", help="a box checkpoint for box mode (optional)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000)

    p = sub.add_parser("augment", help="preview a config's augmentation: originals beside augmented samples")
    p.add_argument("config")
    p.add_argument("--n", type=int, default=16, help="number of samples (default 16)")
    p.add_argument("--out", default="augment_preview.png", help="PNG to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    _common(p)

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
    _common(p)
    return ap


def _train(args) -> int:
    from weakseg.config import load_config
    from weakseg.engine.checkpoint import load_checkpoint
    from weakseg.engine.trainer import Trainer

    if args.resume:
        from weakseg.api import config_from_checkpoint

        cfg = config_from_checkpoint(load_checkpoint(Path(args.resume) / "last.pt"), args.overrides)
        trainer = Trainer(cfg, run_dir=args.resume, resume=True)
    else:
        if not args.config:
            raise SystemExit("weakseg train: give a CONFIG file, or --resume RUN_DIR")
        cfg = load_config(args.config, args.overrides)
        trainer = Trainer(cfg, overwrite=args.overwrite)
    try:
        result = trainer.fit(until=args.until)
    finally:
        trainer.dist.close()  # torchrun: leave the process group cleanly
    if trainer.dist.is_main:
        print(f"run folder: {result['run_dir']}")
    return 0


def _evaluate(args) -> int:
    from weakseg.api import evaluate

    out = (
        Path(args.out)
        if args.out
        else Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "_eval.csv")
    )
    acc = evaluate(args.checkpoint, args.data, args.overrides, out_csv=out)
    print(acc.format_case_table())
    print()
    print(acc.format_table())
    print(f"per-case metrics: {out}")
    return 0


def _predict(args) -> int:
    from weakseg.api import predict

    written = predict(
        args.checkpoint, args.input, args.output, overwrite=args.overwrite, overrides=args.overrides
    )
    print(f"wrote {len(written)} label file(s) to {args.output}")
    return 0


LISTABLE = ("networks", "losses", "methods", "transforms", "encoders")


def _list(args) -> int:
    """One name a line, with what it takes (networks, methods: their parameters; transforms: kind, defaults)."""
    import inspect

    from weakseg.registry import accepted_params

    if args.what == "transforms":
        from weakseg.augment.spec import TRANSFORMS

        for name, spec in TRANSFORMS.items():
            params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
            print(f"{name:16s} {spec.kind:9s} {params}  ({'/'.join(spec.backends)}) {spec.doc}")
        return 0
    if args.what == "encoders":
        from weakseg.nets import ENCODERS

        for name in ENCODERS.names():
            print(name)
        return 0
    if args.what == "networks":
        from weakseg.nets import NETWORKS as registry
    elif args.what == "losses":
        from weakseg.losses import LOSSES as registry
    else:
        from weakseg.methods import METHODS as registry
    for name in registry.names():
        try:
            ctor = registry.get(name)
            params, _ = accepted_params(
                ctor, ("cfg", "spatial_dims", "in_channels", "out_channels", "num_classes")
            )
            sig = inspect.signature(ctor).parameters
            shown = [
                f"{p}={sig[p].default!r}" if p in sig and sig[p].default is not inspect._empty else p
                for p in params
            ]
            print(f"{name:16s} {', '.join(shown)}")
        except ImportError as e:  # a plug-in whose optional dependency is missing
            print(f"{name:16s} (unavailable: {e})")
    return 0


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


def _synth(args) -> int:
    if args.synth_command == "generate" and args.synthseg:
        from gans.generate import generate_synthseg

        if args.checkpoint or not args.labels or args.num_classes is None:
            raise ValueError(
                "--synthseg paints label maps without a GAN: pass --labels DIR and --num-classes K, and no checkpoint"
            )
        out = generate_synthseg(args.labels, args.n, args.out, args.num_classes, args.seed, args.deform,
                                overwrite=args.overwrite, batch_size=args.batch_size)  # fmt: skip
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


def _serve(args) -> int:
    from weakseg.interactive.server import SegmentationSession, make_server

    server = make_server(SegmentationSession(args.checkpoint, args.data, args.box), args.host, args.port)
    print(f"weakseg serve: open http://{args.host}:{server.server_port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _augment(args) -> int:
    from weakseg.augment.preview import preview
    from weakseg.config import load_config

    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; pass --overwrite or another --out")
    cfg = load_config(args.config, args.overrides)
    print(f"wrote {preview(cfg, args.n, args.out, args.seed)}")
    return 0


def _demo(args) -> int:
    from weakseg.api import evaluate
    from weakseg.config import load_config
    from weakseg.engine.trainer import Trainer

    if args.adapt:
        return _demo_adapt(args)
    cfg = load_config(None, DEMO_OVERRIDES + args.overrides)
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
    from weakseg.config import load_config
    from weakseg.engine.trainer import Trainer

    parent = Path(args.out) / f"demo_adapt-{time.strftime('%Y%m%d-%H%M%S')}"
    sup = load_config(None, DEMO_ADAPT_SUPERVISED + args.overrides)
    joint = load_config(None, DEMO_ADAPT_JOINT + args.overrides)
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {
        "list": _list,
        "train": _train,
        "evaluate": _evaluate,
        "predict": _predict,
        "augment": _augment,
        "adapt": _adapt,
        "synth": _synth,
        "serve": _serve,
        "demo": _demo,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130
    except (ValueError, KeyError, OSError, RuntimeError) as e:
        if os.environ.get("WEAKSEG_TRACEBACK"):  # developers: see the whole stack
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"weakseg {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except Exception as e:  # not an input problem we know of: a bug in weakseg (or a library under it)
        if os.environ.get("WEAKSEG_TRACEBACK"):
            raise
        print(
            f"weakseg {args.command}: internal error, probably a bug in weakseg: {type(e).__name__}: {e}\n"
            "Please report it with the command you ran; WEAKSEG_TRACEBACK=1 shows the whole stack.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
