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
TINY: dict[str, str] = {"cyclegan": "{ngf: 8, ndf: 8, generator: resnet_6}"}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is fastest


@pytest.mark.parametrize("name", METHODS.names())
def test_method_one_train_step(name, tiny_cfg_path):
    two = "target" in METHODS.get(name).streams
    cfg = load_config(
        tiny_cfg_path,
        [
            f"method.name={name}",
            "data.labeled_fraction=0.5",
            *(TWO_DOMAINS if two else []),
            *([f"method.params={TINY[name]}"] if name in TINY else []),
        ],
    )
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
