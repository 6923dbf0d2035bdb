"""Registry-generated: every method builds from the tiny config and runs one finite train_step."""

from __future__ import annotations

import math

import pytest
import torch

from weakseg.config import load_config
from weakseg.data import datasets_for
from weakseg.engine.streams import BatchStream
from weakseg.methods import METHODS, StepContext, build_method

# methods that adapt between two domains (streams "source" and "target") get the MR phantoms as target
TWO_DOMAINS = ["target.phantom_modality=mr"]
# small widths keep the file fast on CPU; a method missing here is tested with its defaults
TINY: dict[str, str] = {
    "cyclegan": "{ngf: 8, ndf: 8, generator: resnet_6}",
    "cgan": "{num_downs: 5, ngf: 8, ndf: 8}",
    "dual_gan": "{num_downs: 5, ngf: 8, ndf: 8, label_size: 32, label_ngf: 8, label_ndf: 8, z_dim: 16}",
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is fastest


def method_cfg(name: str, tiny_cfg_path, *more: str):
    """The tiny config of method ``name``: labeled + unlabeled phantoms, MR phantoms as a target domain."""
    two = "target" in METHODS.get(name).streams
    return load_config(
        tiny_cfg_path,
        [
            f"method.name={name}",
            "data.labeled_fraction=0.5",
            *(TWO_DOMAINS if two else []),
            *([f"method.params={TINY[name]}"] if name in TINY else []),
            *more,
        ],
    )


@pytest.mark.parametrize("name", METHODS.names())
def test_method_one_train_step(name, tiny_cfg_path):
    cfg = method_cfg(name, tiny_cfg_path)
    method = build_method(cfg)
    datasets = datasets_for(cfg)
    div = method.size_divisor
    batch = {s: next(BatchStream(datasets[s], 2, seed=0, size_divisor=div)) for s in method.streams}
    optimizers = method.configure_optimizers()
    ctx = StepContext(torch.device("cpu"), optimizers, max_steps=10)
    before = [p.detach().clone() for p in method.parameters()]
    logs = method.train_step(batch, 0, ctx)
    assert logs and all(math.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, method.parameters()))
    if not method.predicts:
        return
    method.eval()
    with torch.no_grad():
        logits = method.predict(batch[method.streams[-1]]["image"])
    assert logits.shape[1] == cfg.data.num_classes


def test_unknown_method_and_param(tiny_cfg_path):
    with pytest.raises(KeyError, match='Did you mean "supervised"'):
        build_method(load_config(tiny_cfg_path, ["method.name=supervise"]))
    with pytest.raises(ValueError, match='no parameter "foo" in method.params'):
        build_method(load_config(tiny_cfg_path, ["method.params.foo=1"]))


def test_requires_grad_context_restores_flags():
    net = torch.nn.Linear(2, 2)
    net.bias.requires_grad_(False)
    with StepContext.requires_grad(net, False):
        assert not any(p.requires_grad for p in net.parameters())
    assert net.weight.requires_grad and not net.bias.requires_grad


@pytest.mark.parametrize("name", METHODS.names())
def test_method_resumes_exactly(name, tiny_cfg_path, tmp_path):
    """4 steps straight == 2 steps, a new process-like Trainer resuming, 2 more: bitwise (every method)."""
    from weakseg.engine.trainer import Trainer

    cfg = method_cfg(
        name, tiny_cfg_path, "train.max_steps=4", "train.eval_every=2", "train.save_pictures=false"
    )
    Trainer(cfg, run_dir=tmp_path / "straight").fit()
    Trainer(cfg, run_dir=tmp_path / "paused").fit(until=2)
    Trainer(cfg, run_dir=tmp_path / "paused", resume=True).fit()
    a, b = (torch.load(tmp_path / r / "last.pt", weights_only=True) for r in ("straight", "paused"))
    assert a["step"] == b["step"] == 4
    different = _differences(a["state"], b["state"])
    assert not different, f"{name}: resumed weights differ in {different[:3]}"


def _differences(a, b, prefix: str = "") -> list[str]:
    """Keys of two nested state dicts whose tensors or values are not identical."""
    if isinstance(a, dict):
        return [d for k in a for d in _differences(a[k], b.get(k), f"{prefix}{k}.")] + [
            f"{prefix}{k}" for k in b if k not in a
        ]
    if torch.is_tensor(a):
        return [] if torch.is_tensor(b) and torch.equal(a, b) else [prefix.rstrip(".")]
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b):
            return [prefix.rstrip(".")]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{prefix}{i}.")]
    return [] if a == b else [prefix.rstrip(".")]
