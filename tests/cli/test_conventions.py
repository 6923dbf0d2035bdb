"""The CLI's conventions: help on every argument of every subcommand (plug-ins included), --device, and the
shipped recipes."""

from __future__ import annotations

import argparse

import pytest

from tests.conftest import REPO
from weakseg.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser, path: str = "weakseg"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_argument_of_every_subcommand_has_help():
    parsers = dict(_parsers(build_parser()))
    assert {"weakseg train", "weakseg synth generate", "weakseg adapt run", "weakseg config"} <= set(parsers)
    missing = [
        f"{path}: {a.dest}"
        for path, p in parsers.items()
        for a in p._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction))
        and not a.help
    ]
    assert not missing, missing


def test_config_list_and_show(capsys):
    assert main(["config", "list"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()]
    assert names == sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
    assert main(["config", "show", "ct_pretrained"]) == 0
    assert capsys.readouterr().out == (REPO / "configs" / "ct_pretrained.yaml").read_text()
    assert main(["config", "show", "ct_pretraind"]) == 1
    assert 'Did you mean "ct_pretrained"' in capsys.readouterr().err


@pytest.mark.usefixtures("one_thread")
def test_device_option_sets_the_training_device(tmp_path, capsys):
    run = tmp_path / "run"
    tiny = str(REPO / "configs" / "tiny.yaml")
    assert (
        main(
            ["train", tiny, "--set", f"train.run_dir={run}", "--set", "train.max_steps=2", "--device", "cpu"]
        )
        == 0
    )
    import json

    assert json.loads((run / "config.json").read_text())["train"]["device"] == "cpu"
    assert main(["evaluate", str(run / "best.pt"), "--device", "cpu"]) == 0
    assert main(["train", tiny, "--set", f"train.run_dir={tmp_path}/r2", "--device", "tpu"]) == 1
