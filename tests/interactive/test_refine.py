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


def test_first_network_result_is_corrupted_with_probability_corrupt_prior(tiny_cfg_path):
    """The first network fits its training images; ``corrupt_prior`` gives the clicks errors to fix."""
    import numpy as np

    label = np.zeros((32, 32), np.int64)
    label[8:24, 8:24] = 1
    prior = np.zeros((5, 32, 32), np.float32)
    prior[1] = np.where(label == 1, 0.9, 0.1)  # a near-perfect first result
    for p, changed in ((0.0, False), (1.0, True)):
        cfg = load_config(tiny_cfg_path, ["method.name=refine", f"method.params={{corrupt_prior: {p}}}"])
        method = build_method(cfg)
        rng = np.random.default_rng(0)
        firsts = [method._episode(label, prior, rng)[1] for _ in range(8)]
        assert all(f.shape == (32, 32) and ((f >= 0) & (f <= 1)).all() for f in firsts)
        assert any(not np.array_equal(f, prior[1]) for f in firsts) == changed
    with pytest.raises(ValueError, match=r"corrupt_prior must be a number in \[0, 1\]"):
        build_method(load_config(tiny_cfg_path, ["method.name=refine", "method.params={corrupt_prior: 2}"]))


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


def test_box_method_trains_segments_a_box_and_fine_tunes(tiny_cfg_path):
    import numpy as np

    from weakseg.interactive.box import bounding_box

    torch.manual_seed(0)
    cfg = load_config(tiny_cfg_path, ["method.name=box", "method.params={crop_size: 32, steps: 3}"])
    method = build_method(cfg)
    logs = method.train_step(_batch(cfg), 0, StepContext(torch.device("cpu"), method.configure_optimizers()))
    assert math.isfinite(logs["loss"])
    image = _batch(cfg)["labeled"][Keys.IMAGE][0]
    prob = method.segment_box(image, (4, 6, 20, 24))
    assert prob.shape == (32, 32) and prob[25:, :].max() == 0  # nothing outside the (grown) box
    before = [p.detach().clone() for p in method.net.parameters()]
    fg = np.zeros((32, 32), bool)
    fg[10, 12] = True
    tuned = method.fine_tune(image, (4, 6, 20, 24), foreground=fg)
    assert tuned.shape == (32, 32) and not torch.equal(tuned, prob)
    assert all(torch.equal(a, b) for a, b in zip(before, method.net.parameters()))  # a copy was tuned
    assert bounding_box(fg) == (10, 12, 11, 13) and bounding_box(np.zeros((3, 3), bool)) is None
    with pytest.raises(ValueError, match="crop_size must be an integer >= 16"):
        build_method(load_config(tiny_cfg_path, ["method.name=box", "method.params={crop_size: 8}"]))
