"""The core subcommands: list, train, evaluate, predict, augment (preview), serve."""

from __future__ import annotations

import argparse
from pathlib import Path

from weakseg.api import add_set_argument

__all__ = ["LISTABLE", "add_core_commands"]

LISTABLE = ("networks", "losses", "methods", "transforms", "encoders")


def add_core_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list", help="what can be named in a config: networks, losses, methods, transforms, encoders"
    )
    p.add_argument("what", choices=LISTABLE, help="which registry to list")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="methods: one line per parameter, with its doc"
    )
    p.set_defaults(handler=_list)

    p = sub.add_parser("train", help="train a method from a YAML config")
    p.add_argument("config", nargs="?", help="YAML config (omit with --resume)")
    add_set_argument(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--until", type=int, help="stop after this step (resume later with --resume)")
    add_device_argument(p)
    p.set_defaults(handler=_train)

    p = sub.add_parser("evaluate", help="per-class and per-case metrics of a checkpoint")
    p.add_argument("checkpoint", help="a weakseg checkpoint (best.pt / last.pt of a run)")
    p.add_argument(
        "--data", help="folder with images/ and masks/ (default: the checkpoint's validation split)"
    )
    p.add_argument("--out", help="CSV of per-case metrics (default: beside the checkpoint)")
    add_set_argument(p)
    add_device_argument(p)
    p.set_defaults(handler=_evaluate)

    p = sub.add_parser("predict", help="segment an image file or folder with a checkpoint")
    p.add_argument("checkpoint", help="a weakseg checkpoint (best.pt / last.pt of a run)")
    p.add_argument("input", help="an image or volume file (PNG, TIFF, NIfTI), or a folder of them")
    p.add_argument("output", help="folder for the label files (one per input, same name)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_set_argument(p)
    add_device_argument(p)
    p.set_defaults(handler=_predict)

    p = sub.add_parser("serve", help="a local web page to correct segmentations with clicks or a box")
    p.add_argument("checkpoint", help="a refine checkpoint (trained with method.params.initial)")
    p.add_argument(
        "--data", required=True, help="folder with images/ (masks are saved to interactive_masks/)"
    )
    p.add_argument("--box", help="a box checkpoint for box mode (optional)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free one)")
    p.set_defaults(handler=_serve)

    p = sub.add_parser("augment", help="preview a config's augmentation: originals beside augmented samples")
    p.add_argument("config", help="YAML config whose augment section is previewed")
    p.add_argument("--n", type=int, default=16, help="number of samples (default 16)")
    p.add_argument("--out", default="augment_preview.png", help="PNG to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the augmentation draws (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    add_set_argument(p)
    p.set_defaults(handler=_augment)


def add_device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", help="auto (CUDA when present), cpu, cuda or cuda:N; train: overrides train.device"
    )


def _train(args) -> int:
    from weakseg.config import load_config
    from weakseg.engine.checkpoint import load_checkpoint
    from weakseg.engine.trainer import Trainer

    if args.resume:
        from weakseg.api import config_from_checkpoint

        cfg = config_from_checkpoint(load_checkpoint(Path(args.resume) / "last.pt"), _with_device(args))
        trainer = Trainer(cfg, run_dir=args.resume, resume=True)
    else:
        if not args.config:
            raise SystemExit("weakseg train: give a CONFIG file, or --resume RUN_DIR")
        cfg = load_config(args.config, _with_device(args))
        trainer = Trainer(cfg, overwrite=args.overwrite)
    try:
        result = trainer.fit(until=args.until)
    finally:
        trainer.dist.close()  # torchrun: leave the process group cleanly
    if trainer.dist.is_main:
        print(f"run folder: {result['run_dir']}")
    return 0


def _with_device(args) -> list[str]:
    return [*args.overrides, *([f"train.device={args.device}"] if args.device else [])]


def _evaluate(args) -> int:
    from weakseg.api import evaluate

    out = (
        Path(args.out)
        if args.out
        else Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "_eval.csv")
    )
    acc = evaluate(args.checkpoint, args.data, args.overrides, out_csv=out, device=args.device or "auto")
    print(acc.format_case_table())
    print()
    print(acc.format_table())
    print(f"per-case metrics: {out}")
    return 0


def _predict(args) -> int:
    from weakseg.api import predict

    written = predict(
        args.checkpoint,
        args.input,
        args.output,
        overwrite=args.overwrite,
        overrides=args.overrides,
        device=args.device or "auto",
    )
    print(f"wrote {len(written)} label file(s) to {args.output}")
    return 0


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
        from weakseg.methods.params import describe
    for name in registry.names():
        try:
            ctor = registry.get(name)
            if getattr(ctor, "params_class", None) is not None:  # a method's typed params, with their docs
                rows = describe(ctor)
                print(f"{name:16s} {', '.join(f'{k}={v}' for k, v, _ in rows)}")
                if args.verbose:
                    for k, v, doc in rows:
                        print(f"    {k:24s} {v:12s} {doc}")
                continue
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
    from weakseg.cli.preview import preview
    from weakseg.config import load_config

    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} exists; pass --overwrite or another --out")
    cfg = load_config(args.config, args.overrides)
    print(f"wrote {preview(cfg, args.n, args.out, args.seed)}")
    return 0
