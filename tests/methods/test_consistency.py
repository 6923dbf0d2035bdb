"""fixmatch, unimatch, cps and bcp on tiny phantoms: finite steps on both network families, unlabeled labels
never read, pseudo-labels from the weak view and the loss on the strong one, CPS's crossed targets, BCP's
mixing on a hand-made case, reproducible runs, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from tests.catalogue import bad_input
from tests.methods.conftest import LossSpy
from tests.methods.conftest import semi_cfg as _cfg
from weakseg.data import build_datasets
from weakseg.engine.streams import BatchStream
from weakseg.engine.trainer import Trainer
from weakseg.keys import Keys
from weakseg.methods import StepContext, build_method, consistency
from weakseg.methods import cps as cps_module
from weakseg.methods.bcp import fixed_boxes
from weakseg.methods.cps import cross_pseudo_loss
from weakseg.methods.mixing import bcp_mix, box_masks
from weakseg.nets import build_network
from weakseg.nets.perturb import feature_dropout, perturbation_sites

pytestmark = pytest.mark.usefixtures("one_thread")

NEW = ("fixmatch", "unimatch", "cps", "bcp")
ENCODER_UNET = [
    "model.network=encoder_unet",
    "model.params={encoder: resnet18, weights: none, decoder_channels: [16, 8, 8, 8, 8]}",
    "data.phantom_size=64",
]


class NoLabels(dict):
    """An unlabeled batch whose label, if a method ever asked for it, raises."""

    def __getitem__(self, key):
        if key == Keys.LABEL:
            raise AssertionError("a method read the label of an unlabeled sample")
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key == Keys.LABEL:
            raise AssertionError("a method read the label of an unlabeled sample")
        return super().get(key, default)


def _batch(splits, n_labeled: int = 2, n_unlabeled: int = 2, div: int = 4) -> dict:
    unlabeled = next(BatchStream(splits["unlabeled"], n_unlabeled, seed=1, size_divisor=div))
    return {
        "labeled": next(BatchStream(splits["labeled"], n_labeled, seed=0, size_divisor=div)),
        "unlabeled": NoLabels(unlabeled),
    }


@pytest.mark.parametrize("network", ["unet", "encoder_unet"])
@pytest.mark.parametrize("name", NEW)
def test_one_step_finite_on_both_networks(tiny_cfg_path, name, network):
    more = [*ENCODER_UNET, "method.params={freeze_encoder_steps: 1, encoder_lr_scale: 0.1}"]
    cfg = _cfg(tiny_cfg_path, name, *(more if network == "encoder_unet" else []))
    torch.manual_seed(0)
    method = build_method(cfg)
    sets = build_datasets(cfg.data)
    ctx = StepContext(torch.device("cpu"), method.configure_optimizers(), max_steps=10)
    if network == "encoder_unet":  # the encoder groups at a tenth of the learning rate
        assert [g.get("name") for g in ctx.optimizers["net"].param_groups][:2] == ["decoder", "encoder"]
    batch = _batch(sets, div=method.size_divisor)
    for step in range(2):  # step 0: encoder frozen; step 1: trained
        logs = method.train_step(batch, step, ctx)
        assert logs and all(math.isfinite(v) for v in logs.values()), logs
    enc = getattr(method.net, "encoder", None)
    if enc is not None:
        assert all(p.requires_grad for p in enc.parameters())


@pytest.mark.parametrize("name", NEW)
def test_unlabeled_samples_never_reach_the_supervised_loss(tiny_cfg_path, splits, name):
    torch.manual_seed(0)
    params = "method.params={pretrain_steps: 1}" if name == "bcp" else "method.params={}"
    method = build_method(_cfg(tiny_cfg_path, name, params))
    batch = _batch(splits)
    method.sup_loss = spy = LossSpy(method.sup_loss)
    ctx = StepContext(torch.device("cpu"), method.configure_optimizers(), max_steps=10)
    for step in range(2):  # NoLabels raises if any method reads an unlabeled label
        method.train_step(batch, step, ctx)
    labels = batch["labeled"][Keys.LABEL]
    if name == "bcp":  # copy-paste pre-training: labeled images mixed with labeled images only
        seen = [label for _, label in spy.seen]
        assert len(seen) == 1 and set(seen[0].unique().tolist()) <= set(labels.unique().tolist())
    else:
        seen = [label for _, label in spy.seen]
        assert seen and all(torch.equal(label, labels) for label in seen)


@pytest.mark.parametrize("name", ["fixmatch", "unimatch"])
def test_pseudo_labels_from_the_weak_view_loss_on_the_strong_view(tiny_cfg_path, splits, name, monkeypatch):
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path, name, "method.params={threshold: 0.01, cutmix_p: 0.0}"))
    shift = 10.0  # a strong view that is recognisably not the weak one
    method.strong.augment = lambda d, g: {Keys.IMAGE: d[Keys.IMAGE] + shift}
    batch = _batch(splits)
    x_l, x_w = batch["labeled"][Keys.IMAGE], batch["unlabeled"][Keys.IMAGE]
    calls, targets = [], []
    method.net.register_forward_hook(
        lambda m, args, out: calls.append((args[0].detach().clone(), torch.is_grad_enabled(), out.detach()))
    )
    real = consistency.masked_loss
    monkeypatch.setattr(
        consistency, "masked_loss", lambda lo, t, *a, **k: targets.append(t) or real(lo, t, *a, **k)
    )
    method.train_step(batch, 0, StepContext(torch.device("cpu"), method.configure_optimizers()))
    no_grad = [c for c in calls if not c[1]]
    assert len(no_grad) == 1 and torch.equal(no_grad[0][0], x_w), "pseudo-labels must come from the weak view"
    pseudo = no_grad[0][2].argmax(1)
    n_strong = 2 if name == "unimatch" else 1
    strong = [c[0] for c in calls if c[1] and c[0].shape[0] == len(x_l) + n_strong * len(x_w)]
    assert len(strong) == 1 and torch.equal(strong[0], torch.cat([x_l, *[x_w + shift] * n_strong]))
    assert len(targets) == n_strong + (name == "unimatch") and all(torch.equal(t, pseudo) for t in targets)


def test_ema_teacher_gives_the_pseudo_labels_and_follows_the_segmenter(tiny_cfg_path, splits, monkeypatch):
    torch.manual_seed(0)
    cfg = _cfg(tiny_cfg_path, "fixmatch", "method.params={threshold: 0.01, cutmix_p: 0.0, ema_decay: 0.5}")
    method = build_method(cfg)
    assert build_method(_cfg(tiny_cfg_path, "fixmatch")).teacher is None  # plain FixMatch: no teacher
    # the teacher votes class 1 everywhere; the segmenter itself would not
    method.teacher.register_forward_hook(
        lambda m, args, out: out + torch.eye(out.shape[1])[1][:, None, None] * 100
    )
    student_no_grad = []
    method.net.register_forward_hook(lambda m, args, out: student_no_grad.append(not torch.is_grad_enabled()))
    targets = []
    real = consistency.masked_loss
    monkeypatch.setattr(
        consistency, "masked_loss", lambda lo, t, *a, **k: targets.append(t) or real(lo, t, *a, **k)
    )
    before = [p.detach().clone() for p in method.teacher.parameters()]
    method.train_step(_batch(splits), 5, StepContext(torch.device("cpu"), method.configure_optimizers()))
    assert not any(student_no_grad), "with ema_decay the segmenter must not make the pseudo-labels"
    assert targets and all(bool((t == 1).all()) for t in targets)
    # step 5, decay 0.5: a = min(1 - 1/6, 0.5) = 0.5 of the old teacher, 0.5 of the updated segmenter
    for t, t0, s in zip(method.teacher.parameters(), before, method.net.parameters(), strict=True):
        assert torch.allclose(t, 0.5 * t0 + 0.5 * s.detach())


def test_ema_teacher_is_checkpointed_and_resumes_exactly(tiny_cfg_path, tmp_path):
    cfg = _cfg(
        tiny_cfg_path,
        "fixmatch",
        "method.params={ema_decay: 0.9}",
        "train.max_steps=4",
        "train.eval_every=2",
        "train.save_pictures=false",
    )
    Trainer(cfg, run_dir=tmp_path / "straight").fit()
    Trainer(cfg, run_dir=tmp_path / "paused").fit(until=2)
    Trainer(cfg, run_dir=tmp_path / "paused", resume=True).fit()
    a, b = (torch.load(tmp_path / r / "last.pt", weights_only=True)["state"] for r in ("straight", "paused"))
    assert any(k.startswith("teacher.") for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cps_networks_get_each_others_labels(tiny_cfg_path, splits, monkeypatch):
    a = torch.tensor([[[[3.0]], [[0.0]]]])  # (1, 2, 1, 1): a says class 0
    b = torch.tensor([[[[0.0]], [[3.0]]]])  # b says class 1
    loss_a, loss_b = cross_pseudo_loss(a.requires_grad_(), b.requires_grad_())
    assert loss_a.item() == pytest.approx(torch.nn.functional.cross_entropy(a, torch.tensor([[[1]]])).item())
    assert loss_b.item() == pytest.approx(torch.nn.functional.cross_entropy(b, torch.tensor([[[0]]])).item())
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path, "cps"))
    assert any(not torch.equal(p, q) for p, q in zip(method.net.parameters(), method.net_b.parameters()))
    batch = _batch(splits)
    outputs, got = {}, []
    for key in ("net", "net_b"):
        getattr(method, key).register_forward_hook(lambda m, args, out, key=key: outputs.setdefault(key, out))
    real = cps_module.cross_pseudo_loss
    monkeypatch.setattr(cps_module, "cross_pseudo_loss", lambda x, y: got.append((x, y)) or real(x, y))
    method.train_step(batch, 0, StepContext(torch.device("cpu"), method.configure_optimizers()))
    n = batch["labeled"][Keys.IMAGE].shape[0]
    (x, y) = got[0]
    assert torch.equal(x, outputs["net"][n:]) and torch.equal(y, outputs["net_b"][n:])


def test_bcp_mix_hand_made():
    fg_img, bg_img = torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    fg_lab, bg_lab = torch.full((1, 4, 4), 1), torch.full((1, 4, 4), 2)
    box = torch.zeros(1, 4, 4, dtype=torch.bool)
    box[0, :2, 1:3] = True
    image, label = bcp_mix(fg_img, fg_lab, bg_img, bg_lab, box)
    expected = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(image[0, 0], expected.float())
    assert torch.equal(label[0], torch.where(expected.bool(), 1, 2))
    boxes = fixed_boxes(3, (12, 9), 2 / 3, torch.Generator().manual_seed(0))
    assert boxes.shape == (3, 12, 9) and all(int(b.sum()) == 8 * 6 for b in boxes)


def test_box_masks_area_and_probability():
    g = torch.Generator().manual_seed(0)
    boxes = box_masks(16, (32, 32), g, area=(0.1, 0.3))
    frac = boxes.float().mean((1, 2))
    assert bool((frac > 0.03).all()) and bool((frac <= 0.35).all())
    assert not box_masks(4, (8, 8), g, p=0.0).any()


@pytest.mark.parametrize("network", ["unet", "encoder_unet"])
def test_feature_dropout_perturbs_then_restores(network):
    kw = (
        {"channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 0}
        if network == "unet"
        else {"encoder": "resnet18", "weights": "none", "decoder_channels": [16, 8, 8, 8, 8]}
    )
    net = build_network(network, spatial_dims=2, in_channels=1, out_channels=3, **kw).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        clean = net(x)
        with feature_dropout(net, 0.5):
            perturbed = net(x)
        again = net(x)
    assert not torch.allclose(clean, perturbed) and torch.equal(clean, again)
    with pytest.raises(ValueError, match="feature perturbation needs a network with an `encoder`"):
        perturbation_sites(torch.nn.Conv2d(1, 1, 1))


@pytest.mark.parametrize("name", NEW)
def test_same_seed_same_numbers(tiny_cfg_path, tmp_path, name):
    cfg = _cfg(tiny_cfg_path, name, "train.max_steps=3", "train.eval_every=3", "method.params={}")
    if name == "bcp":
        cfg.method.params = {"pretrain_steps": 1}
    runs = [Trainer(cfg, run_dir=tmp_path / f"r{i}").fit() for i in range(2)]
    assert runs[0]["last"] == runs[1]["last"]
    a, b = (torch.load(tmp_path / f"r{i}" / "last.pt", weights_only=True)["state"] for i in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", NEW)
def test_no_unlabeled_pool_fails_before_training(tiny_cfg_path, tmp_path, name):
    cfg = _cfg(tiny_cfg_path, name, "data.labeled_fraction=1.0")
    with bad_input(
        f"method {name} without unlabeled images", ValueError, 'needs a non-empty "unlabeled" split'
    ):
        Trainer(cfg, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_bcp_needs_two_samples_per_stream(tiny_cfg_path, splits):
    method = build_method(_cfg(tiny_cfg_path, "bcp", "method.params={pretrain_steps: 0}"))
    batch = _batch(splits, n_labeled=1, n_unlabeled=2)
    with pytest.raises(ValueError, match="at least 2 labeled and 2 unlabeled samples"):
        method.train_step(batch, 0, StepContext(torch.device("cpu"), method.configure_optimizers()))


def test_masked_loss_ignores_masked_out_pixels():
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[:, :4] = True
    other = torch.where(mask, target, (target + 1) % 3)  # differs from target only where the mask is off
    noisy = torch.where(mask[:, None], logits, torch.randn_like(logits))
    base = consistency.masked_loss(logits, target, mask)
    assert torch.allclose(base, consistency.masked_loss(noisy, other, mask))
    # a perfect prediction on the masked pixels scores a Dice loss of ~0 whatever lies outside
    perfect = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float() * 50
    dice_only = consistency.masked_loss(perfect, target, mask) * 2  # CE is ~0 too
    assert float(dice_only) < 1e-3
