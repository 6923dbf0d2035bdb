"""``train.tensorboard: true`` writes TensorBoard events beside metrics.jsonl: the logged scalars and the
run's pictures, one trajectory after a resume."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from weakseg.cli import main

pytest.importorskip("tensorboard")


def _events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.mark.usefixtures("one_thread")
def test_tensorboard_events_hold_scalars_and_pictures(tmp_path):
    run = tmp_path / "run"
    tiny = str(REPO / "configs" / "tiny.yaml")
    common = ["--set", "train.tensorboard=true", "--set", f"train.run_dir={run}"]
    assert main(["train", tiny, *common, "--until", "2"]) == 0
    assert main(["train", "--resume", str(run)]) == 0
    acc = _events(run)
    tags = acc.Tags()
    assert {"train/loss", "val/mean_dice"} <= set(tags["scalars"])
    assert "pictures/overlay" in tags["images"]
    steps = [e.step for e in acc.Scalars("val/mean_dice")]
    assert steps == [2, 4]  # evaluations at eval_every=2 of 4 steps, once each across the resume
    dice = [e.value for e in acc.Scalars("val/mean_dice")]
    import json

    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert dice == pytest.approx([r["mean_dice"] for r in logged if r["split"] == "val"], rel=1e-6)
