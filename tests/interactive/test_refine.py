"""The refine method: one training step (corrupted-truth and first-network priors), refinement inference with
clicks, a checkpoint that rebuilds without the first network's file, clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from weakseg.cli import main
from weakseg.config import load_config
from weakseg.data import build_datasets
from weakseg.engine.streams import BatchStream
from weakseg.interactive import Click
from weakseg.keys import Keys
from weakseg.methods import StepContext, build_method

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(cfg) -> dict:
    return {"labeled": next(BatchStream(build_datasets(cfg.data)["labeled"], 2, seed=0, size_divisor=4))}


@pytest.mark.parametrize("distance", ["geodesic", "euclidean"])
def test_one_step_on_corrupted_truth(tiny_cfg_path, distance):
    torch.manual_seed(0)
    cfg = load_config(tiny_cfg_path, ["method.name=refine", f"method.params={{distance: {distance}}}"])
    method = build_method(cfg)
    logs = method.train_step(_batch(cfg), 0, StepContext(torch.device("cpu"), method.configure_optimizers()))
    assert math.isfinite(logs["loss"]) and 0 <= logs["clicks"] <= 5
    image = _batch(cfg)["labeled"][Keys.IMAGE][:1]
    logits = method.refine_logits(image, torch.zeros(1, 32, 32), [[Click(5, 6, True), Click(20, 20, False)]])
    assert logits.shape == (1, 2, 32, 32)
    with pytest.raises(RuntimeError, match="refine_logits"):
        method.predict(image)


def test_first_network_is_embedded_in_the_checkpoint(tiny_cfg_path, tmp_path):
    first = tmp_path / "first"
    assert (
        main(["train", str(tiny_cfg_path), "--set", f"train.run_dir={first}", "--set", "train.max_steps=1"])
        == 0
    )
    run = tmp_path / "refine"
    sets = ["method.name=refine", f"method.params={{initial: {first / 'last.pt'}}}", f"train.run_dir={run}"]
    assert (
        main(
            [
                "train",
                str(tiny_cfg_path),
                *[a for s in sets for a in ("--set", s)],
                "--set",
                "train.max_steps=2",
            ]
        )
        == 0
    )
    (first / "last.pt").unlink()
    (first / "best.pt").unlink()
    from weakseg.api import load_trained

    cfg, method, _ = load_trained(run / "last.pt")
    image = _batch(cfg)["labeled"][Keys.IMAGE][:1]
    probs = method.first_probabilities(image)
    assert probs.shape == (1, 5, 32, 32) and torch.allclose(probs.sum(1), torch.ones(1, 32, 32), atol=1e-5)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ("{distance: manhattan}", "distance must be geodesic or euclidean"),
        ("{max_clicks: -1}", "max_clicks must be an integer >= 0"),
        ("{initial: /nonexistent/first.pt}", "does not exist"),
    ],
)
def test_bad_params(tiny_cfg_path, params, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        build_method(load_config(tiny_cfg_path, ["method.name=refine", f"method.params={params}"]))
