"""The one Trainer: device, AMP, streams, LR schedules, evaluation, checkpoints, logging, resume.

It has no method-specific branch: a ``Method`` declares the streams it needs (``labeled``, ``unlabeled``,
...) and does its own updates through ``StepContext``. Everything else happens here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from weakseg.augment import build_augmentation
from weakseg.config import Config, config_to_dict
from weakseg.data.profile import data_profile
from weakseg.data.records import DataError
from weakseg.engine.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    get_rng_state,
    nonfinite_entries,
    set_rng_state,
)
from weakseg.engine.distributed import DistEnv
from weakseg.engine.evaluate import evaluate_dataset, infer_window
from weakseg.engine.loggers import NullLogger, RunLogger
from weakseg.engine.run_folder import RunFolder
from weakseg.engine.schedules import build_scheduler
from weakseg.engine.streams import SHAPE_KEY, build_streams, move_to_device
from weakseg.engine.viz import save_curves, save_overlays
from weakseg.fileio import atomic_write_text, remove_stale_temp_files
from weakseg.methods import Method, NonFiniteLossError, StepContext, build_method
from weakseg.nets import pretrained_weights_disabled
from weakseg.registry import suggest

__all__ = ["Trainer", "resolve_amp", "resolve_device", "seed_everything"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f'train.device is "{name}" but CUDA is not available; use "auto" or "cpu"')
    return device


class NonFiniteWeightsError(NonFiniteLossError):
    """The weights (or optimizer state) hold NaN/inf; nothing was saved, the last good checkpoint is kept."""

    def __init__(self, step: int, names: list[str], kept: Path | None) -> None:
        RuntimeError.__init__(
            self,
            f"the weights became non-finite at step {step} ({len(names)} tensor(s) with NaN/inf, e.g. "
            f"{', '.join(names[:3])}) although every loss term was finite; stopping without saving. "
            + (f"The last good checkpoint {kept} is kept (--resume continues from it). " if kept else
               "No checkpoint had been written yet. ")
            + "Lower optim.lr or enable optim.grad_clip.",
        )  # fmt: skip
        self.step, self.term, self.value = step, "weights", float("nan")


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA by default; fp16 uses a GradScaler; CPU trains in float32 unless asked."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto" and not torch.cuda.is_bf16_supported():
        return torch.float16  # pre-Ampere GPUs: fp16 with a GradScaler
    return torch.float16 if mode == "fp16" else torch.bfloat16


def load_method_state(method: Method, state: dict, source: str) -> None:
    """Load weights, turning torch's key/shape mismatch dump into an error that says what to do; weights with
    NaN or inf are refused (evaluating them would report a Dice of 0 as if it were a result)."""
    bad = nonfinite_entries(state)
    if bad:
        raise CheckpointError(
            f"checkpoint {source} holds non-finite weights ({len(bad)} tensor(s) with NaN/inf, e.g. "
            f"{', '.join(bad[:3])}): training diverged before it was written. Use an earlier checkpoint, or "
            "retrain with a lower optim.lr / optim.grad_clip"
        )
    try:
        method.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()][1:4]
        raise CheckpointError(
            f"checkpoint {source} does not match the network built from the config: "
            f"{' | '.join(lines)[:600]}. Use the config the checkpoint was trained with "
            "(drop the --set overrides of model.*)."
        ) from None


class Trainer:
    def __init__(
        self,
        cfg: Config,
        method: Method | None = None,
        datasets: dict | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.cfg = cfg
        t = cfg.train
        seed_everything(t.seed)
        self.folder = RunFolder(Path(run_dir or t.run_dir.format(name=t.name)))
        self.run_dir = self.folder.path
        ckpt = self.folder.check(resume, overwrite)
        if datasets is None:
            from weakseg.data.domains import datasets_for

            datasets = datasets_for(cfg)  # one domain, or source + target for adaptation methods
        self.datasets = datasets
        self.dist = DistEnv.from_env()  # torchrun: rank, world size, local rank
        self.device = self.dist.device(resolve_device(t.device))
        self.dist.init(self.device)
        self.amp_dtype = resolve_amp(t.amp, self.device)
        if method is None:
            # a resumed run takes its weights from the checkpoint: no ImageNet file needed to rebuild
            with pretrained_weights_disabled() if ckpt is not None else contextlib.nullcontext():
                method = build_method(cfg)
        self.method = method.to(self.device)
        self.channels_last = t.channels_last and cfg.data.spatial_dims == 2
        if self.channels_last:
            self.method.to(memory_format=torch.channels_last)
        if t.compile:
            for child in self.method.children():
                if any(True for _ in child.parameters()):
                    child.compile()  # nn.Module.compile: in place, so state_dict keys stay the same
        self.optimizers = self.method.configure_optimizers()
        self.schedulers = {k: build_scheduler(o, t.max_steps, cfg.optim) for k, o in self.optimizers.items()}
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        sample_aug, self.batch_aug = build_augmentation(cfg)
        self.streams = build_streams(cfg, self.method, datasets, sample_aug, self.device, self.dist)
        self._check_key_metric()
        self._check_crop_size()
        self._probe_datasets()
        self.step = 0
        self.best = {"value": None, "step": None}
        self.bad_evals = 0
        self.dist.barrier()  # every rank has checked the run folder before rank 0 changes it
        if ckpt is not None:
            self.data_profile = ckpt.get("data_profile") or {}
        else:  # what predict compares its inputs with (rank 0 saves it)
            split = next((s for s in ("labeled", "source") if s in datasets), None)
            self.data_profile = data_profile(datasets[split], cfg.data) if split and self.dist.is_main else {}
        if ckpt is None and self.dist.is_main:  # everything above is validated: only now touch the disk
            self.folder.start(overwrite, config_to_dict(cfg))
        if self.dist.is_main:
            self.logger = RunLogger(
                self.run_dir, t.wandb, config_to_dict(cfg), resume=ckpt is not None, tensorboard=t.tensorboard
            )
        else:
            self.logger = NullLogger()  # rank 0 alone writes metrics, pictures and checkpoints
        if ckpt is not None:
            if self.dist.is_main:  # a kill during a checkpoint write leaves its temp file behind
                remove_stale_temp_files(self.run_dir)
            self._restore(ckpt)
            self.logger.truncate(self.step)
            if self.step >= t.max_steps and self.dist.is_main:
                tqdm.write(
                    f"{self.run_dir} already finished at step {self.step} (train.max_steps = {t.max_steps}): "
                    "nothing to train. Raise train.max_steps to train on, or "
                    f"`weakseg evaluate {self.run_dir / 'best.pt'}`"
                )
        if self.dist.enabled:
            self._distribute()

    def _distribute(self) -> None:
        """Wrap each trainable network of the method in its own DDP (after the weights are restored)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        if self.cfg.train.sync_batchnorm:
            if self.device.type != "cuda":
                raise ValueError(
                    "train.sync_batchnorm needs CUDA (torch's SyncBatchNorm); set it to false on CPU"
                )
            self.method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        ids = [self.device.index] if self.device.type == "cuda" else None

        # no buffer sync in forward: rank 0 evaluates alone, and a buffer broadcast there would wait forever
        no_buffer_sync = (
            {"forward_sync_buffers": False}
            if "forward_sync_buffers" in inspect.signature(DDP).parameters  # newer torch
            else {"broadcast_buffers": False}
        )

        def wrap(module: torch.nn.Module) -> torch.nn.Module:
            unused = self.method.ddp_find_unused
            return DDP(module, device_ids=ids, find_unused_parameters=unused, **no_buffer_sync)

        self.method.distribute(wrap)

    # ------------------------------------------------------------------ run folder and checkpoints
    def _probe_datasets(self) -> None:
        """Decode the first and last sample of every training stream and of validation now, then check every file
        (``SegDataset.validate``), so that unreadable files, wrong sizes, label values or channel counts (e.g. an
        RGB target domain for a grey source) fail before the run folder exists or an old run is replaced."""
        domain = {"target": "target", "val": "target" if self.cfg.target is not None else "data"}
        for name in (*self.streams, "val"):
            dataset = self.datasets.get(name)
            if dataset is None or len(dataset) == 0:
                continue
            try:
                (
                    dataset[0],
                    dataset[len(dataset) - 1],
                )  # e.g. the unlabeled split ends with data.unlabeled_dirs
                if hasattr(dataset, "validate"):  # every file, not only the first and last
                    dataset.validate(f'checking the "{name}" files')
            except (DataError, ValueError, OSError) as e:
                section = domain.get(name, "data")
                where = (
                    ""
                    if section == "data"
                    else " (the config's target section; both domains need the same channels: data.* below "
                    "means target.*)"
                )
                raise type(e)(f'the "{name}" split{where}: {e}') from e

    def _check_crop_size(self) -> None:
        """A crop is the training input size: it must suit the network (checked now, not at step 1)."""
        div = max(1, int(self.method.size_divisor))
        for key, size in (
            ("data.patch_size", self.cfg.data.patch_size),
            ("infer.roi_size", self.cfg.infer.roi_size),
        ):
            if size is not None and any(int(s) % div for s in size):
                raise ValueError(
                    f"{key} {size} is not a multiple of the network's size divisor {div}; use multiples of {div} "
                    f"(e.g. {[max(div, int(s) // div * div) for s in size]})"
                )
        for t in self.cfg.augment.transforms:
            if t.get("name") == "crop" and any(int(s) % div for s in t.get("size", [])):
                raise ValueError(
                    f"augment crop size {t['size']} is not a multiple of the network's size divisor {div}; "
                    f"use multiples of {div} (e.g. {[max(div, int(s) // div * div) for s in t['size']]})"
                )

    def _check_key_metric(self) -> None:
        t, d = self.cfg.train, self.cfg.data
        names = [f"mean_{m}" for m in ("dice", "iou", "hd95", "assd")]
        names += [f"{m}/{c}" for m in ("dice", "iou", "hd95", "assd") for c in d.class_names[1:]]
        names += list(self.method.self_metrics)  # what the method measures of itself (Method.self_evaluate)
        if t.key_metric not in names:
            raise ValueError(
                f'train.key_metric "{t.key_metric}" is not a validation metric.{suggest(t.key_metric, names)} '
                f"Valid: {', '.join(names)}"
            )

    def state_dict(self) -> dict:
        return {
            "format": "weakseg",
            "format_version": 1,
            "config": config_to_dict(self.cfg),
            "method": self.cfg.method.name,
            "step": self.step,
            "state": self.method.plain_state_dict(),
            "world_size": self.dist.world,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "streams": {k: s.state_dict() for k, s in self.streams.items()},
            "rng": get_rng_state(),
            "best": dict(self.best),
            "bad_evals": self.bad_evals,
            "data_profile": self.data_profile,
        }

    def _restore(self, ckpt: dict) -> None:
        load_method_state(self.method, ckpt["state"], ckpt["path"])
        for k, o in self.optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(ckpt["schedulers"][k])
        if self.scaler and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        for k, s in self.streams.items():
            s.load_state_dict(ckpt["streams"][k])
        set_rng_state(ckpt["rng"])
        self.step, self.best, self.bad_evals = ckpt["step"], dict(ckpt["best"]), ckpt.get("bad_evals", 0)
        saved_world = ckpt.get("world_size", 1)
        if saved_world != self.dist.world and self.dist.is_main:
            tqdm.write(
                f"resuming a run of {saved_world} process(es) with {self.dist.world}: the global batch and the "
                "sample sequence continue unchanged; per-process BatchNorm statistics and batched augmentation "
                "draws differ from an uninterrupted run"
            )

    def save_checkpoint(self, name: str) -> Path:
        self.check_weights()  # a non-finite state never replaces a good checkpoint
        path = self.run_dir / name
        if self.dist.is_main:  # written once, by rank 0
            atomic_torch_save(self.state_dict(), path)
            if name == "last.pt":  # the new run can now be resumed: the run it replaces goes
                self.folder.drop_replaced()
        return path

    def _put_back_replaced(self) -> None:
        if self.folder.put_back_replaced(self.logger.close):
            tqdm.write(
                f"the new run failed before its first checkpoint: the earlier run in {self.run_dir} is restored"
            )

    def _augment_on_device(self, batch: dict[str, dict]) -> None:
        """Batched augmentation after the loader; seeded by (run seed, step, stream) for exact resume."""
        if self.batch_aug is None:
            return
        for i, name in enumerate(self.streams):
            if name in self.cfg.augment.streams:
                seed = self.cfg.train.seed * 1_000_003 + self.step * 101 + i + 7_919 * self.dist.rank
                g = torch.Generator().manual_seed(seed)
                batch[name] = self.batch_aug(batch[name], g)
                batch[name].pop(SHAPE_KEY, None)  # sizes before augmentation; meaningless after a crop

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        t, d = self.cfg.train, self.cfg.data
        acc, examples = evaluate_dataset(
            self.method,
            self.datasets["val"],
            d.num_classes,
            d.class_names,
            self.device,
            spacing=d.spacing,
            batch_size=t.eval_batch_size,
            amp_dtype=self.amp_dtype,
            window=infer_window(self.cfg),
        )
        summary = acc.summary()
        acc.write_csv(self.run_dir / "val_per_case.csv")
        if t.save_pictures:
            overlay = self.run_dir / f"overlay_step{self.step:06d}.png"
            save_overlays(
                examples, overlay, f"step {self.step}: mean Dice {summary['mean_dice']:.3f}", d.class_names
            )
            if overlay.is_file():
                self.logger.log_images([overlay], self.step)
        self._last_table = acc.format_table()
        return summary

    def _improved(self, value: float) -> bool:
        best = self.best["value"]
        if value != value:  # NaN (no class measurable) never counts as an improvement
            return False
        if best is None:
            return True
        return value > best if self.cfg.train.key_mode == "max" else value < best

    # ------------------------------------------------------------------ the loop
    def fit(self, until: int | None = None) -> dict:
        """Train to ``train.max_steps`` (or stop after step ``until``, e.g. to resume later)."""
        t = self.cfg.train
        stop = min(t.max_steps, until) if until else t.max_steps
        has_val = self.method.predicts and "val" in self.datasets and len(self.datasets["val"]) > 0
        ctx = StepContext(
            self.device,
            self.optimizers,
            max_steps=t.max_steps,
            amp_dtype=self.amp_dtype,
            scaler=self.scaler,
            grad_clip=self.cfg.optim.grad_clip,
            dist=self.dist if self.dist.enabled else None,
        )
        self.method.train()
        sums: dict[str, float] = {}
        n_sum = 0
        last_val: dict[str, float] = {}
        bar = tqdm(
            total=stop,
            initial=self.step,
            desc=t.name,
            disable=not t.progress or not self.dist.is_main,
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 30.0,
        )  # logs stay short when not a terminal
        try:
            while self.step < stop:
                batch = {
                    k: move_to_device(next(s), self.device, self.channels_last)
                    for k, s in self.streams.items()
                }
                self._augment_on_device(batch)
                ctx.step = self.step
                logs = self.method.train_step(batch, self.step, ctx)
                if self.scaler is not None:
                    self.scaler.update()  # once per iteration, after every optimizer of the method stepped
                for s in self.schedulers.values():
                    s.step()
                self.step += 1
                bar.update(1)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                n_sum += 1
                if self.step % t.log_every == 0 or self.step == stop:
                    means = self.dist.mean({k: v / n_sum for k, v in sums.items()}, self.device)  # over ranks
                    rec = {"step": self.step, "split": "train", **means}
                    rec["lr"] = next(iter(self.optimizers.values())).param_groups[0]["lr"]
                    self.logger.log(rec)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in rec.items() if k not in ("step", "split")})
                    sums, n_sum = {}, 0
                if self.step % t.eval_every == 0 or self.step == t.max_steps:
                    try:
                        last_val = self._eval_and_checkpoint(has_val)
                    except BaseException:
                        self.dist.broadcast_code(2, self.device)  # the others stop too instead of waiting
                        raise
                    early = bool(t.early_stop_patience) and self.bad_evals >= t.early_stop_patience
                    code = self.dist.broadcast_code(1 if early else 0, self.device)  # rank 0 decides
                    if code == 2:
                        raise RuntimeError(
                            f"rank 0 failed while evaluating at step {self.step}; see its error"
                        )
                    if code == 1:
                        if self.dist.is_main:
                            tqdm.write(
                                f"early stop at step {self.step}: no better {t.key_metric} for "
                                f"{self.bad_evals} evaluations"
                            )
                        break
                elif self.step == stop:  # paused by `until`: keep the trajectory, evaluate nothing extra
                    self.save_checkpoint("last.pt")
        except NonFiniteLossError as e:
            self.logger.log({"step": self.step, "split": "error", "message": str(e)})
            self._put_back_replaced()
            raise
        except BaseException:
            self._put_back_replaced()
            raise
        finally:
            bar.close()
            self.logger.close()
        result = {
            "run_dir": str(self.run_dir),
            "step": self.step,
            "best_step": self.best["step"],
            f"best_{t.key_metric}": self.best["value"],
            "last": last_val,
        }
        if self.dist.is_main:
            atomic_write_text(self.run_dir / "summary.json", json.dumps(result, indent=2))
        self.dist.barrier()
        return result

    def check_weights(self) -> None:
        """Raise ``NonFiniteWeightsError`` when a weight or optimizer state is NaN/inf: a finite but huge loss
        can break the weights without any loss term being non-finite, and such a state is never saved."""
        bad = nonfinite_entries(self.method.plain_state_dict())
        bad += nonfinite_entries(
            {k: o.state_dict()["state"] for k, o in self.optimizers.items()}, "optimizers"
        )
        if bad:
            kept = self.run_dir / "last.pt"
            raise NonFiniteWeightsError(self.step, bad, kept if kept.is_file() else None)

    def _eval_and_checkpoint(self, has_val: bool) -> dict[str, float]:
        t = self.cfg.train
        self.check_weights()  # before evaluating or saving anything
        summary: dict[str, float] = {}
        if not self.dist.is_main:  # rank 0 evaluates, draws and saves; the others wait in broadcast_code
            return summary
        if t.save_pictures:
            self.logger.log_images(
                self.method.save_pictures(self.datasets, self.run_dir, self.step), self.step
            )
        own = not has_val and t.key_metric in self.method.self_metrics
        if has_val or own:
            # a method without predictions can score itself (e.g. the label-map GAN against the real maps)
            summary = self.evaluate() if has_val else self.method.self_evaluate(self.datasets)
            self.logger.log({"step": self.step, "split": "val", **summary})
            value = summary[t.key_metric]
            if self._improved(value):
                self.best, self.bad_evals = {"value": value, "step": self.step}, 0
                self.save_checkpoint("best.pt")
            else:
                self.bad_evals += 1
            best = "none" if self.best["value"] is None else f"{self.best['value']:.4f}"
            tqdm.write(
                f"step {self.step}: {t.key_metric} {value:.4f} (best {best} at step {self.best['step']})"
            )
        self.save_checkpoint("last.pt")
        if t.save_pictures:
            save_curves(self.logger.records, t.key_metric, self.run_dir / "curves.png")
        return summary
