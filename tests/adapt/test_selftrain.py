"""Target self-training: target labels are never read, the student starts from the initial's segmenter and
trains on translated source images, pseudo-labels follow the threshold (and the EMA agreement), rounds
resume exactly, bad params are clear."""

from __future__ import annotations

import math

import pytest
import torch

from tests.methods.test_consistency import NoLabels
from tests.methods.test_methods import method_cfg
from weakseg.data import datasets_for
from weakseg.engine.streams import BatchStream
from weakseg.engine.trainer import Trainer
from weakseg.keys import Keys
from weakseg.methods import StepContext, build_method

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def joint_ckpt(tmp_path_factory):
    """A joint CycleGAN + U-Net trained 1 step on CT -> MR phantoms."""
    from tests.conftest import REPO

    run = tmp_path_factory.mktemp("joint") / "run"
    cfg = method_cfg("cyclegan", REPO / "configs" / "tiny.yaml", "train.max_steps=1", "train.eval_every=1",
                     "train.save_pictures=false")  # fmt: skip
    Trainer(cfg, run_dir=run).fit()
    return run / "last.pt"


def _batch(cfg, method) -> dict:
    sets = datasets_for(cfg)
    return {
        "source": next(BatchStream(sets["source"], 2, seed=0, size_divisor=method.size_divisor)),
        "target": NoLabels(next(BatchStream(sets["target"], 2, seed=1, size_divisor=method.size_divisor))),
    }


def test_starts_from_the_initial_segmenter_translates_and_never_reads_target_labels(
    tiny_cfg_path, joint_ckpt
):
    cfg = method_cfg("self_train", tiny_cfg_path, f"method.params={{initial: {joint_ckpt}, threshold: 0.3}}")
    torch.manual_seed(0)
    method = build_method(cfg)
    seg = method.initial.seg.state_dict()
    assert all(torch.equal(v, method.net.state_dict()[k]) for k, v in seg.items())
    assert isinstance(
        cfg.method.params["initial"], dict
    )  # the run records the initial's config, not the path
    calls = []
    real = method.initial.translate
    method.initial.translate = lambda x, *a: calls.append(x.shape) or real(x, *a)
    batch = _batch(cfg, method)  # NoLabels: reading a target label raises
    ctx = StepContext(torch.device("cpu"), method.configure_optimizers(), max_steps=10)
    logs = method.train_step(batch, 0, ctx)
    assert all(math.isfinite(v) for v in logs.values()) and calls == [batch["source"][Keys.IMAGE].shape]


@pytest.mark.parametrize("agreement", [False, True])
def test_pseudo_labels_follow_threshold_and_agreement(tiny_cfg_path, agreement):
    cfg = method_cfg(
        "self_train", tiny_cfg_path, f"method.params={{threshold: 0.5, agreement: {str(agreement).lower()}}}"
    )
    torch.manual_seed(0)
    method = build_method(cfg)
    x = _batch(cfg, method)["target"][Keys.IMAGE]
    label, mask = method.pseudo_labels(x)
    prob = method.teacher(x).softmax(1)
    assert torch.equal(label, prob.argmax(1))
    if agreement:
        with torch.no_grad():
            method.ema.model[0].conv.weight.mul_(-1)  # an EMA that disagrees somewhere
        _, masked = method.pseudo_labels(x)
        assert bool((masked <= (prob.max(1).values >= 0.5)).all()) and masked.sum() < mask.sum()
    else:
        assert torch.equal(mask, prob.max(1).values >= 0.5)


def test_rounds_resume_exactly(tiny_cfg_path, tmp_path):
    sets = ["train.max_steps=6", "train.eval_every=2", "train.save_pictures=false",
            "method.params={round_steps: 2, agreement: true, threshold: 0.3}"]  # fmt: skip
    cfg = method_cfg("self_train", tiny_cfg_path, *sets)
    Trainer(cfg, run_dir=tmp_path / "a").fit()
    Trainer(cfg, run_dir=tmp_path / "b").fit(until=4)  # paused right after a round boundary
    Trainer(cfg, run_dir=tmp_path / "b", resume=True).fit()
    a, b = (torch.load(tmp_path / r / "last.pt", weights_only=True)["state"] for r in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.startswith("teacher.") for k in a)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ("{threshold: 1.0}", "threshold must be a confidence in \\(0, 1\\)"),
        ("{round_steps: -1}", "round_steps must be an integer >= 0"),
        ("{initial: /no/such.pt}", "does not exist"),
        ("{agreement: 1}", "agreement must be true or false"),
    ],
)
def test_bad_params(tiny_cfg_path, params, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        build_method(method_cfg("self_train", tiny_cfg_path, f"method.params={params}"))
