"""The Python API behind the CLI: train, evaluate and predict from configs and checkpoints.

cfg = load_config("configs/demo.yaml", overrides=["train.max_steps=200"])
result = Trainer(cfg).fit()
acc = evaluate(result["run_dir"] + "/best.pt")
predict(result["run_dir"] + "/best.pt", "scans/", "labels_out/")
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from weakseg.config import Config, apply_overrides, config_from_dict, set_values
from weakseg.data.dataset import interp_mode
from weakseg.engine.checkpoint import load_checkpoint
from weakseg.engine.evaluate import evaluate_dataset
from weakseg.engine.trainer import Trainer, load_method_state, resolve_amp, resolve_device
from weakseg.methods import BuildContext, Method, build_method
from weakseg.methods.infer import infer_window, predict_logits
from weakseg.metrics import MetricAccumulator
from weakseg.nets import pretrained_weights_disabled

__all__ = ["Trainer", "add_set_argument", "config_from_checkpoint", "evaluate", "load_trained", "predict"]


def add_set_argument(parser) -> None:
    """The ``--set KEY=VALUE`` option of every subcommand that reads a config (core and plug-ins alike)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=10 (repeatable)",
    )


def config_from_checkpoint(
    ckpt: dict, overrides: list[str] | None = None, updates: dict | None = None
) -> Config:
    """The checkpoint's config with ``updates`` (dotted key -> value, taken as is) and ``--set`` overrides."""
    values = set_values(copy.deepcopy(ckpt["config"]), updates or {})
    values = apply_overrides(values, overrides)
    return config_from_dict(values, source=f"checkpoint {ckpt['path']}")


def load_trained(
    checkpoint: str | Path,
    overrides: list[str] | None = None,
    device: str = "auto",
    updates: dict | None = None,
) -> tuple[Config, Method, torch.device]:
    """Rebuild the method stored in ``checkpoint`` (config included) and load its weights, in eval mode."""
    ckpt = load_checkpoint(checkpoint)
    cfg = config_from_checkpoint(ckpt, overrides, updates)
    dev = resolve_device(device)
    with pretrained_weights_disabled():  # the checkpoint holds the trained weights: no ImageNet file needed
        method = build_method(cfg)
    load_method_state(method, ckpt["state"], ckpt["path"])
    method.data_profile = ckpt.get("data_profile") or {}  # what the training images looked like
    return cfg, method.to(dev).eval(), dev


def frozen_initial(initial: str | dict, ctx: BuildContext) -> Method:
    """A trained method that another method runs frozen (``method.params.initial`` of ``refine``,
    ``self_train``). A checkpoint path is loaded, and ``ctx.record`` then records that method's config in its
    place, so the new run's checkpoints hold both and rebuild without the file; a config dict (that record)
    builds the method, whose weights then come from the new run's checkpoint."""
    owner = ctx.method
    if isinstance(initial, dict):
        init_cfg = config_from_dict(initial, "method.params.initial")
        with pretrained_weights_disabled():
            method = build_method(init_cfg)
    else:
        if not Path(initial).is_file():
            raise FileNotFoundError(
                f'method "{owner}": method.params.initial {initial} does not exist (a weakseg checkpoint of a '
                "trained segmentation method)"
            )
        ckpt = load_checkpoint(initial)
        init_cfg = config_from_checkpoint(ckpt)
        with pretrained_weights_disabled():
            method = build_method(init_cfg)
        load_method_state(method, ckpt["state"], str(initial))
        from weakseg.config import config_to_dict

        ctx.record("initial", config_to_dict(init_cfg))
    if not method.predicts:
        raise ValueError(f'method "{owner}": method.params.initial must be a segmentation checkpoint')
    if init_cfg.data.num_classes != ctx.num_classes or init_cfg.data.in_channels != ctx.in_channels:
        raise ValueError(
            f'method "{owner}": the initial network has {init_cfg.data.num_classes} classes and '
            f"{init_cfg.data.in_channels} channel(s), the data {ctx.num_classes} and {ctx.in_channels}"
        )
    for p in method.parameters():
        p.requires_grad_(False)
    return method


def recorded_config(cfg: Config) -> dict:
    """``cfg`` as a run folder's ``config.json`` records it: normalised through JSON, and a checkpoint path in
    ``method.params.initial`` (``refine``, ``self_train``) replaced by that checkpoint's config, as the method
    records it when built. Compare it with a run's ``config.json`` to tell whether the run is of ``cfg``."""
    import json

    from weakseg.config import config_to_dict

    wanted = json.loads(json.dumps(config_to_dict(cfg)))
    initial = wanted["method"]["params"].get("initial")
    if isinstance(initial, str) and Path(initial).is_file():
        wanted["method"]["params"]["initial"] = json.loads(
            json.dumps(config_to_dict(config_from_checkpoint(load_checkpoint(initial))))
        )
    return wanted


def evaluate(
    checkpoint: str | Path,
    data: str | Path | None = None,
    overrides: list[str] | None = None,
    out_csv: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> MetricAccumulator:
    """Score a checkpoint on its own validation split, or on every labeled case of the folder ``data``."""
    from weakseg.data.domains import datasets_for

    updates = {}
    if data is not None:
        source = load_checkpoint(checkpoint)["config"]["data"]["source"]
        updates = {
            "data.source": "folder" if source == "phantom" else source,
            "data.root": str(data),
            "data.val_fraction": 0.0,
            "data.test_fraction": 0.0,
            "data.labeled_fraction": 1.0,
            "data.splits": None,  # every labeled case of the folder
            "target": None,  # one domain: the folder's
        }
    cfg, method, dev = load_trained(checkpoint, overrides, device, updates)
    datasets = datasets_for(cfg)  # adaptation checkpoints: the target domain's validation split
    split = "labeled" if data is not None else "val"
    if len(datasets[split]) == 0:
        raise ValueError(
            f"{checkpoint}: its config has no validation cases (data.val_fraction is "
            f"{cfg.data.val_fraction}); pass --data DIR with images/ and masks/ to evaluate on"
        )
    acc, _ = evaluate_dataset(
        method,
        datasets[split],
        cfg.data.num_classes,
        cfg.data.class_names,
        dev,
        spacing=cfg.data.spacing,
        batch_size=cfg.train.eval_batch_size,
        amp_dtype=resolve_amp(cfg.train.amp, dev),
        progress=progress,
        window=infer_window(cfg),
    )
    if out_csv is not None:
        acc.write_csv(out_csv)
    return acc


_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".nii.gz")


def _inputs(path: Path) -> list[Path]:
    """The inputs of ``predict``: a file, a folder holding one DICOM series, or a folder of image files and
    DICOM series folders."""
    from weakseg.data.dicom import is_dicom_series

    if path.is_file() or (path.is_dir() and is_dicom_series(path)):
        return [path]
    if path.is_dir():
        series = sorted(p for p in path.iterdir() if p.is_dir() and is_dicom_series(p))
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(_SUFFIXES))
        if files or series:
            return files + series
        raise FileNotFoundError(f"{path} holds no images ({', '.join(_SUFFIXES)}) and no DICOM series")
    raise FileNotFoundError(f"input {path} does not exist")


_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})(?P<ending>\.nii(\.gz)?)$", re.I)


def _channel_files(cfg) -> bool:
    """The model reads one file per channel: trained on a multi-channel nnU-Net dataset."""
    return cfg.data.source == "nnunet" and cfg.data.in_channels > 1


def _channel_groups(files: list[Path], cfg) -> list[tuple[Path, tuple[Path, ...]]]:
    """(first file, further channel files) per input. A model trained on a multi-channel nnU-Net dataset reads
    ``CASE_0000`` ... ``CASE_{n-1}`` together (found beside any one of them); other inputs stand alone."""
    n = cfg.data.in_channels
    if not _channel_files(cfg):
        return [(f, ()) for f in files]
    groups: dict[tuple[Path, str, str], set[int]] = {}
    for f in files:
        m = _CHANNEL_FILE.match(f.name) if f.is_file() else None
        if m is None:
            raise ValueError(
                f"{f}: this model reads {n} channels, one NIfTI file each named CASE_0000{'...'}CASE_{n - 1:04d} "
                "(nnU-Net's layout); name the input files so"
            )
        groups.setdefault((f.parent, m["case"], m["ending"]), set())
    out = []
    for (folder, case, ending), _ in sorted(groups.items()):
        paths = [folder / f"{case}_{c:04d}{ending}" for c in range(n)]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"case {case} in {folder} lacks channel file(s) {missing}: this model reads {n} channels"
            )
        out.append((paths[0], tuple(paths[1:])))
    return out


def _out_name(src: Path, grouped: bool = False) -> str:
    if grouped:  # nnU-Net: the prediction of CASE_0000.nii.gz ... is CASE.nii.gz
        m = _CHANNEL_FILE.match(src.name)
        return m["case"] + m["ending"]
    from weakseg.data.readers import is_tiff, tiff_pages

    if src.is_dir():  # a DICOM series: its label volume as NIfTI
        return src.name + ".nii.gz"
    if is_tiff(src) and tiff_pages(src) > 1:  # a TIFF stack: a stack of label pages
        return src.stem + ".tif"
    return src.name if src.name.lower().endswith((".nii", ".nii.gz")) else src.stem + ".png"


def _labels_fn(method, resize: list[int] | None, dev: torch.device, amp, window=None):
    """Batch (B,C,...) -> labels (B,...) at the input's size; with ``data.resize`` the network sees resized
    inputs (as in training) and its logits are resampled back to the input size before the argmax."""

    def run(x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[2:])
        if resize is not None and tuple(resize) != size:
            x = F.interpolate(x, size=tuple(resize), mode=interp_mode(size, resize))
            logits = predict_logits(method, x.to(dev), amp, window).float()
            logits = F.interpolate(logits, size=size, mode=interp_mode(resize, size))
        else:
            logits = predict_logits(method, x.to(dev), amp, window)
        return logits.argmax(1).cpu()

    return run


def predict(
    checkpoint: str | Path,
    inputs: str | Path,
    output: str | Path,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = True,
    overrides: list[str] | None = None,
) -> list[Path]:
    """Segment an image file or a folder of them; write label PNGs (NIfTI keeps the input's affine)."""
    from tqdm.auto import tqdm

    from weakseg.data.io import (
        load_image_for_inference,
        network_input_size,
        predict_volume_slices,
        write_label,
    )
    from weakseg.data.profile import compare_to_profile

    cfg, method, dev = load_trained(checkpoint, overrides, device)
    amp = resolve_amp(cfg.train.amp, dev)
    groups = _channel_groups(_inputs(Path(inputs)), cfg)
    files = [g[0] for g in groups]
    grouped = _channel_files(cfg)
    output = Path(output)
    single = (
        len(files) == 1
        and Path(inputs).is_file()
        and output.suffix.lower()
        in (
            ".png",
            ".tif",
            ".tiff",
            ".nii",
            ".gz",
        )
    )  # one file or series
    targets = [output] if single else [output / _out_name(f, grouped) for f in files]
    clash = [t for t in targets if t.exists()]
    if clash and not overwrite:
        raise FileExistsError(
            f"{len(clash)} output file(s) already exist (e.g. {clash[0]}); nothing was written. "
            "Choose another output folder or pass --overwrite"
        )
    # all or nothing: labels go to a hidden staging folder beside the outputs and move into place once every
    # input has been segmented, so an error halfway leaves no partial set of predictions behind
    folder = output.parent if single else output
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".weakseg-predict-", dir=folder))
    except OSError as e:
        raise OSError(
            f"cannot write predictions into {folder}: {e.strerror or e}; nothing was written"
        ) from None
    try:
        staged = []
        for (src, extra), dst in tqdm(list(zip(groups, targets)), desc="predict", disable=not progress):
            image, meta = load_image_for_inference(src, cfg.data, extra)
            for diff in compare_to_profile(method.data_profile, image.numpy(), meta):
                tqdm.write(f"weakseg predict: warning: {src}: {diff}", file=sys.stderr)
            label = predict_volume_slices(
                image,
                meta,
                _labels_fn(method, network_input_size(cfg.data, meta), dev, amp, infer_window(cfg)),
                cfg.data,
            )
            tmp = stage / dst.name
            try:
                write_label(tmp, label.numpy(), meta, overwrite=overwrite)
            except OSError as e:  # disk full, permissions
                raise OSError(
                    f"cannot write predictions into {folder}: {e.strerror or e}; nothing was written"
                ) from None
            staged.append((tmp, dst))
        for tmp, dst in staged:
            os.replace(tmp, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if not any(dst.exists() for dst in targets):  # failed: remove the folders this call created
            for p in created:
                with contextlib.suppress(OSError):
                    p.rmdir()
    return [dst for _, dst in staged]
