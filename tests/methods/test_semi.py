"""Semi-supervised methods on tiny phantoms: one step each with finite losses, the discriminator frozen in the
segmenter's step, no unlabeled sample in a supervised loss, the exact EMA update, reproducible runs, clear
errors on bad data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.catalogue import bad_input
from tests.methods.conftest import LossSpy
from tests.methods.conftest import semi_cfg as _cfg
from weakseg.data import build_datasets
from weakseg.engine.streams import BatchStream
from weakseg.engine.trainer import Trainer
from weakseg.keys import Keys
from weakseg.methods import StepContext, build_method
from weakseg.methods.semi import sigmoid_rampup

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = ("mean_teacher", "dan", "hung")


def _batch(splits, n_labeled: int = 2, n_unlabeled: int = 3) -> dict:
    return {
        "labeled": next(BatchStream(splits["labeled"], n_labeled, seed=0, size_divisor=4)),
        "unlabeled": next(BatchStream(splits["unlabeled"], n_unlabeled, seed=1, size_divisor=4)),
    }


class RecordingContext(StepContext):
    """Records the discriminator's gradients right after the segmenter's backward."""

    def backward(self, loss, opt_name, terms=None):
        super().backward(loss, opt_name, terms)
        if opt_name == "net" and hasattr(self.method, "disc"):
            self.d_grads = [p.grad for p in self.method.disc.parameters()]


@pytest.mark.parametrize("method_name", METHODS)
def test_one_step_finite_and_discriminator_frozen(tiny_cfg_path, splits, method_name):
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path, method_name))
    ctx = RecordingContext(torch.device("cpu"), method.configure_optimizers(), max_steps=10)
    ctx.method = method
    batch = _batch(splits)
    assert Keys.LABEL not in batch["unlabeled"]
    logs = method.train_step(batch, 0, ctx)
    assert logs and all(math.isfinite(v) for v in logs.values())
    if method_name != "mean_teacher":
        assert all(g is None for g in ctx.d_grads), "the segmenter's step must not give D a gradient"
        assert logs["D_D"] > 0 and all(p.requires_grad for p in method.disc.parameters())
    logits = method.predict(batch["labeled"][Keys.IMAGE])
    assert logits.shape == (2, 5, 32, 32)


@pytest.mark.parametrize("method_name", METHODS)
def test_unlabeled_samples_never_reach_the_supervised_loss(tiny_cfg_path, splits, method_name):
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path, method_name))
    batch = _batch(splits, n_labeled=2, n_unlabeled=3)
    method.sup_loss = spy = LossSpy(method.sup_loss)
    for step in range(2):  # hung's self-training term starts at step 0 here: it must not use sup_loss either
        method.train_step(batch, step, StepContext(torch.device("cpu"), method.configure_optimizers()))
    seen = spy.seen
    assert seen and all(n == 2 and torch.equal(label, batch["labeled"][Keys.LABEL]) for n, label in seen)


def test_ema_update_is_exact(tiny_cfg_path, splits):
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path, "mean_teacher", "method.params={ema_decay: 0.9}"))
    ctx = StepContext(torch.device("cpu"), method.configure_optimizers())
    batch = _batch(splits)
    for step in range(3):
        teacher = [t.detach().clone() for t in method.teacher.parameters()]
        method.train_step(batch, step, ctx)
        a = min(1 - 1 / (step + 1), 0.9)
        for old, new, student in zip(teacher, method.teacher.parameters(), method.net.parameters()):
            assert torch.equal(new, old.mul(a).add(student.detach(), alpha=1 - a))  # same op order: bitwise
    assert not any(p.requires_grad for p in method.teacher.parameters())
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5)) and sigmoid_rampup(10, 10) == 1.0


def test_hung_self_training_mask_follows_the_threshold(tiny_cfg_path, splits):
    batch = _batch(splits)
    for threshold, expected in ((0.0, 1.0), (1.0, 0.0)):
        torch.manual_seed(0)
        method = build_method(_cfg(tiny_cfg_path, "hung", f"method.params={{threshold: {threshold}}}"))
        logs = method.train_step(batch, 0, StepContext(torch.device("cpu"), method.configure_optimizers()))
        assert logs["confident_fraction"] == expected
        assert (logs["semi"] > 0) == (expected > 0)


@pytest.mark.parametrize("method_name", METHODS)
def test_same_seed_same_numbers(tiny_cfg_path, tmp_path, method_name):
    cfg = _cfg(tiny_cfg_path, method_name, "train.max_steps=3", "train.eval_every=3")
    runs = [Trainer(cfg, run_dir=tmp_path / f"r{i}").fit() for i in range(2)]
    assert runs[0]["last"] == runs[1]["last"]
    a, b = (torch.load(tmp_path / f"r{i}" / "last.pt", weights_only=True)["state"] for i in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unlabeled_batch_size(tiny_cfg_path, tmp_path):
    cfg = _cfg(tiny_cfg_path, "mean_teacher", "train.stream_batch_sizes={unlabeled: 3}", "train.max_steps=1")
    trainer = Trainer(cfg, run_dir=tmp_path / "r")
    assert next(trainer.streams["unlabeled"])[Keys.IMAGE].shape[0] == 3
    assert next(trainer.streams["labeled"])[Keys.IMAGE].shape[0] == 2


def _folder(root: Path, cases: range, rgb: bool = False, masks: bool = True) -> Path:
    (root / "images").mkdir(parents=True)
    if masks:
        (root / "masks").mkdir()
    for c in cases:
        shape = (32, 32, 3) if rgb else (32, 32)
        Image.fromarray(np.full(shape, 40 * (c % 5), np.uint8)).save(root / "images" / f"x_p{c:02d}.png")
        if masks:
            Image.fromarray(np.eye(32, dtype=np.uint8)).save(root / "masks" / f"x_p{c:02d}.png")
    return root


def _folder_cfg(tiny_cfg_path, root: Path, *more: str):
    return _cfg(
        tiny_cfg_path,
        "mean_teacher",
        "data.source=folder",
        f"data.root={root}",
        "data.num_classes=2",
        "data.class_names=[bg, fg]",
        "data.val_fraction=0.25",
        *more,
    )


def test_unlabeled_dirs_join_the_unlabeled_split(tiny_cfg_path, tmp_path):
    labeled = _folder(tmp_path / "train", range(4))
    extra = _folder(tmp_path / "test", range(10, 13), masks=False)
    cfg = _folder_cfg(
        tiny_cfg_path, labeled, "data.labeled_fraction=1.0", f"data.unlabeled_dirs=[{extra / 'images'}]"
    )
    sets = build_datasets(cfg.data)
    assert sets["unlabeled"].case_ids == ["10", "11", "12"] and not sets["unlabeled"].labeled
    clash = _folder(tmp_path / "clash", range(2), masks=False)
    cfg.data.unlabeled_dirs = [str(clash / "images")]
    with pytest.raises(ValueError, match="has case ids that other data also uses"):
        build_datasets(cfg.data)


@pytest.mark.parametrize("problem", ["no_unlabeled", "no_labeled", "rgb_unlabeled"])
def test_bad_semi_data_fails_before_training(tiny_cfg_path, tmp_path, problem):
    labeled = _folder(tmp_path / "train", range(4))
    more = {
        "no_unlabeled": ["data.labeled_fraction=1.0"],
        "no_labeled": ["data.splits={unlabeled: ['00', '01'], val: ['02']}"],
        "rgb_unlabeled": [  # the grey unlabeled cases come first, the RGB folder last
            "data.labeled_fraction=0.5",
            f"data.unlabeled_dirs=[{_folder(tmp_path / 'rgb', range(10, 12), rgb=True, masks=False) / 'images'}]",
        ],
    }[problem]
    expected = {
        "no_unlabeled": 'needs a non-empty "unlabeled" split.*data.unlabeled_dirs',
        "no_labeled": 'needs a non-empty "labeled" split',
        "rgb_unlabeled": 'the "unlabeled" split: image .*rgb/images/x_p1[01].png is colour \\(RGB\\) with 3 channel',
    }[problem]
    run = tmp_path / "run"
    with bad_input(f"semi-supervised data: {problem.replace('_', ' ')}", ValueError, expected):
        Trainer(_folder_cfg(tiny_cfg_path, labeled, *more), run_dir=run)
    assert not run.exists()


@pytest.mark.parametrize(
    ("method_name", "params", "match"),
    [
        ("mean_teacher", "{ema_decay: 1.5}", "ema_decay must be a number in \\[0, 1\\]"),
        ("mean_teacher", "{predict_with: both}", "predict_with must be teacher or student"),
        ("hung", "{threshold: -1}", "threshold must be a number in \\[0, 1\\]"),
        ("dan", "{adv_start: -3}", "adv_start must be an integer >= 0"),
        ("dan", "{d_betas: [0.9]}", "d_betas must be two numbers"),
        ("hung", "{lamda_semi: 1}", "lambda_semi"),
        # the consistency and copy-paste methods
        ("fixmatch", "{threshold: 1.0}", "threshold must be a confidence in \\(0, 1\\)"),
        ("unimatch", "{threshold: 0}", "threshold must be a confidence in \\(0, 1\\)"),
        ("fixmatch", "{threshold: 1.5}", "threshold must be a confidence"),
        ("fixmatch", "{cutmix_p: 2}", "cutmix_p must be in \\[0, 1\\]"),
        (
            "fixmatch",
            "{strong: [{name: rotate, degrees: [-5, 5]}]}",
            'strong\\[0\\] is "rotate", a geometric',
        ),
        ("fixmatch", "{strong: [{name: gama}]}", "gama"),
        ("unimatch", "{fp_dropout: 1.0}", "fp_dropout must be a number in \\[0, 0.99\\]"),
        ("cps", "{predict_with: c}", "predict_with must be a \\| b"),
        ("bcp", "{box_fraction: 1.2}", "box_fraction must be a fraction in \\(0, 1\\)"),
        ("bcp", "{alpah: 0.5}", "alpha"),
        ("supervised", "{freeze_encoder_step: 3}", 'Did you mean "freeze_encoder_steps"'),
    ],
)
def test_bad_params_are_clear(tiny_cfg_path, method_name, params, match):
    with bad_input(f"method {method_name}, method.params: {params}", ValueError, match):
        build_method(_cfg(tiny_cfg_path, method_name, f"method.params={params}"))
