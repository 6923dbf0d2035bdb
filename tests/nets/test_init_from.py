"""model.init_from: a segmenter starts from a trained run's (or a plain state_dict's) weights, strict by default,
and a run rebuilt from its own checkpoint never needs that file again."""

from __future__ import annotations

import pytest
import torch

from tests.catalogue import bad_input
from tests.conftest import REPO
from weakseg.cli import main
from weakseg.config import load_config
from weakseg.methods import build_method
from weakseg.nets import build_network, load_initial_weights

TINY = str(REPO / "configs" / "tiny.yaml")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("first") / "run"
    assert main(["train", TINY, "--set", f"train.run_dir={run}", "--set", "train.max_steps=2"]) == 0
    return run


def _net_of(run) -> dict:
    from weakseg.engine.checkpoint import load_checkpoint

    state = load_checkpoint(run / "best.pt")["state"]
    return {k[4:]: v for k, v in state.items() if k.startswith("net.")}


def test_the_segmenter_starts_from_the_checkpoints_segmenter(first_run):
    cfg = load_config(TINY, [f"model.init_from={first_run / 'best.pt'}"])
    method = build_method(cfg)
    for k, v in method.net.state_dict().items():
        torch.testing.assert_close(v, _net_of(first_run)[k], rtol=0, atol=0)
    fresh = build_method(load_config(TINY)).net.state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in method.net.state_dict().items())
    # a semi-supervised method starts from it too (the same segmenter factory)
    semi = build_method(load_config(TINY, ["method.name=fixmatch", f"model.init_from={first_run}"]))
    torch.testing.assert_close(semi.net.state_dict(), method.net.state_dict(), rtol=0, atol=0)


def test_plain_state_dicts_nested_or_with_ddp_prefix(tmp_path):
    src = build_network("unet", 2, 1, 5, channels=[4, 8, 16], strides=[2, 2])
    for name, obj in {
        "bare.pt": src.state_dict(),
        "nested.pt": {"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}},
    }.items():
        torch.save(obj, tmp_path / name)
        dst = build_network("unet", 2, 1, 5, channels=[4, 8, 16], strides=[2, 2])
        assert load_initial_weights(dst, tmp_path / name) == []
        torch.testing.assert_close(dst.state_dict(), src.state_dict(), rtol=0, atol=0)


def test_weights_that_do_not_fit_fail_or_start_from_scratch(tmp_path):
    src = build_network("unet", 2, 1, 5, channels=[4, 8, 16], strides=[2, 2])
    torch.save(src.state_dict(), tmp_path / "five.pt")
    three = build_network("unet", 2, 1, 3, channels=[4, 8, 16], strides=[2, 2])
    with bad_input(
        "init_from with another number of classes", ValueError, r"do not fit .*init_strict: false"
    ):
        load_initial_weights(three, tmp_path / "five.pt")
    before = {k: v.clone() for k, v in three.state_dict().items()}
    with pytest.warns(UserWarning, match="keep their initialisation"):
        kept = load_initial_weights(three, tmp_path / "five.pt", strict=False)
    assert kept and all(torch.equal(three.state_dict()[k], before[k]) for k in kept)
    loaded = [k for k in before if k not in kept]
    assert loaded and all(torch.equal(three.state_dict()[k], src.state_dict()[k]) for k in loaded)
    other = build_network("attention_unet", 2, 1, 5)
    with bad_input("init_from of another network", ValueError, r"none of its weights fit"):
        load_initial_weights(other, tmp_path / "five.pt")
    with bad_input("init_from missing", FileNotFoundError, r"init_from .*nope.pt does not exist"):
        load_initial_weights(three, tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with bad_input("init_from not a torch file", ValueError, r"junk.pt is not a readable weights file"):
        load_initial_weights(three, tmp_path / "junk.pt")


def test_a_fine_tuned_run_predicts_without_its_init_file(first_run, tmp_path):
    import shutil

    init = tmp_path / "init.pt"
    shutil.copy(first_run / "best.pt", init)
    run = tmp_path / "tuned"
    args = ["--set", f"train.run_dir={run}", "--set", "train.max_steps=2", "--set", f"model.init_from={init}"]
    assert main(["train", TINY, *args]) == 0
    init.unlink()
    assert main(["evaluate", str(run / "best.pt")]) == 0
    assert main(["train", "--resume", str(run), "--set", "train.max_steps=3"]) == 0
