"""``weakseg adapt run``: stages in order, placeholders to earlier run folders, finished stages reused, changed
ones refused without --overwrite, bad route files named before anything trains."""

from __future__ import annotations

import pytest

from adapt.route import load_route
from tests.conftest import REPO
from weakseg.cli import main

TINY = REPO / "configs" / "tiny.yaml"


def _route(tmp_path, body: str):
    path = tmp_path / "route.yaml"
    path.write_text(body.replace("TINY", str(TINY)).replace("ROOT", str(tmp_path / "runs")))
    return path


ROUTE = """
root: ROOT
stages:
  - name: joint
    config: TINY
    set: ["method.name=cyclegan", "target={phantom_modality: mr}", "method.params={ngf: 8, ndf: 8, generator: resnet_6}",
          "train.max_steps=2", "train.eval_every=2", "train.save_pictures=false"]
  - name: self_train
    config: TINY
    set: ["method.name=self_train", "target={phantom_modality: mr}", "method.params={initial: '{joint}/last.pt'}",
          "train.max_steps=2", "train.eval_every=2", "train.save_pictures=false"]
"""


def test_route_runs_stages_in_order_and_reuses_finished_ones(tmp_path, capsys):
    path = _route(tmp_path, ROUTE)
    assert main(["adapt", "run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "stage joint: training" in out and "stage self_train: training" in out
    assert (tmp_path / "runs" / "self_train" / "last.pt").is_file()
    assert main(["adapt", "run", str(path)]) == 0  # everything finished: nothing trains again
    out = capsys.readouterr().out
    assert "stage joint: reusing" in out and "stage self_train: reusing" in out
    changed = ["--set", "self_train:train.max_steps=3"]
    assert main(["adapt", "run", str(path), *changed]) == 1  # a finished run of another config is kept
    assert "holds a run of another config; pass --overwrite" in capsys.readouterr().err
    assert main(["adapt", "run", str(path), *changed, "--overwrite"]) == 0
    assert "stage joint: reusing" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("stages: []", "stages must be a non-empty list"),
        ("stages: [{name: a, config: nowhere.yaml}]", "config .*nowhere.yaml does not exist"),
        (
            "stages: [{name: a, config: TINY, set: ['x={b}/last.pt']}]",
            'refers to "{b}", which is not an earlier stage',
        ),
        ("stages: [{name: a, config: TINY}, {name: a, config: TINY}]", "must be a new identifier"),
        ("stagez: []", "expected the keys root and stages"),
    ],
)
def test_bad_route_files(tmp_path, body, match):
    with pytest.raises(ValueError, match=match):
        load_route(_route(tmp_path, body))
