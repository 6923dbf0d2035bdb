from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.catalogue import record
from weakseg.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("cli")
    run = root / "run"
    assert (
        main(
            [
                "train",
                str(REPO / "configs" / "tiny.yaml"),
                "--set",
                f"train.run_dir={run}",
                "--set",
                "train.save_pictures=false",
            ]
        )
        == 0
    )
    return run


def _phantom_folder(path, n=2, size=32, first=100):
    """Write phantom slices as 16-bit-free float-safe PNGs in images/ + masks/ (CT window applied)."""
    from weakseg.data.intensity import ct_window
    from weakseg.data.phantoms import phantom_case

    (path / "images").mkdir(parents=True)
    (path / "masks").mkdir()
    for case in range(n):
        image, label = phantom_case(first + case, "ct", n_slices=2, size=size)
        for z in range(image.shape[0]):
            name = f"ph_p{case:02d}_z{z:03d}.png"
            Image.fromarray((ct_window(image[z], 40, 400) * 255).astype(np.uint8)).save(
                path / "images" / name
            )
            Image.fromarray(label[z].astype(np.uint8)).save(path / "masks" / name)
    return path


def test_train_writes_checkpoints(trained):
    assert (trained / "best.pt").is_file() and (trained / "last.pt").is_file()


def test_evaluate_on_folder(trained, tmp_path, capsys):
    data = _phantom_folder(tmp_path / "data")
    out = tmp_path / "eval.csv"
    assert main(["evaluate", str(trained / "best.pt"), "--data", str(data), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "liver" in text and out.is_file()
    assert "\n00," in out.read_text()  # case id = first group of data.case_regex


def test_predict_writes_labels_and_refuses_overwrite(trained, tmp_path, capsys):
    data = _phantom_folder(tmp_path / "data")
    out = tmp_path / "pred"
    assert main(["predict", str(trained / "best.pt"), str(data / "images"), str(out)]) == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 4
    pred = np.asarray(Image.open(files[0]))
    assert pred.shape == (32, 32) and pred.max() < 5
    before = files[0].read_bytes()
    assert main(["predict", str(trained / "best.pt"), str(data / "images"), str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert files[0].read_bytes() == before
    assert main(["predict", str(trained / "best.pt"), str(data / "images"), str(out), "--overwrite"]) == 0


def test_checkpoint_network_mismatch_is_clear(trained, tmp_path, capsys):
    code = main(["evaluate", str(trained / "best.pt"), "--set", "model.params.channels=[8, 16, 32]"])
    assert code == 1
    err = capsys.readouterr().err
    assert "does not match the network" in err and "model.*" in err


def test_unknown_key_and_bad_override(tiny_cfg_path, tmp_path, capsys):
    assert main(["train", str(tiny_cfg_path), "--set", "train.max_stepz=3"]) == 1
    assert 'Did you mean "max_steps"' in capsys.readouterr().err
    assert main(["train", str(tiny_cfg_path), "--set", "train.max_steps=many"]) == 1
    assert "expected an integer" in capsys.readouterr().err


def test_resume_via_cli(tiny_cfg_path, tmp_path):
    run = tmp_path / "r"
    common = ["--set", f"train.run_dir={run}", "--set", "train.save_pictures=false"]
    assert main(["train", str(tiny_cfg_path), *common, "--until", "2"]) == 0
    assert main(["train", "--resume", str(run)]) == 0
    from weakseg.engine.checkpoint import load_checkpoint

    assert load_checkpoint(run / "last.pt")["step"] == 4


def test_predict_nifti_keeps_affine(trained, tmp_path):
    import nibabel as nib

    from weakseg.data.phantoms import phantom_case

    image, _ = phantom_case(7, "ct", n_slices=3, size=32)  # HU values, as a CT scanner writes them
    affine = np.diag([0.8, 0.8, 3.0, 1.0])
    affine[:3, 3] = [-10.0, 5.0, 42.0]
    vol = np.ascontiguousarray(image.transpose(1, 2, 0))  # (X, Y, Z), slices along axis 2
    nib.save(nib.Nifti1Image(vol.astype(np.float32), affine), tmp_path / "scan.nii.gz")
    out = tmp_path / "out"
    assert main(["predict", str(trained / "best.pt"), str(tmp_path / "scan.nii.gz"), str(out)]) == 0
    seg = nib.load(out / "scan.nii.gz")
    assert seg.shape == vol.shape
    np.testing.assert_allclose(seg.affine, affine)
    assert set(np.unique(np.asarray(seg.dataobj))) <= set(range(5))


def test_demo_code_path(tmp_path, capsys):
    small = [
        "data.phantom_size=32",
        "data.phantom_cases=4",
        "data.phantom_slices=2",
        "train.max_steps=2",
        "train.eval_every=2",
        "model.params.channels=[4, 8, 16]",
        "model.params.strides=[2, 2]",
        "train.progress=false",
    ]
    args = ["demo", "--out", str(tmp_path)]
    for s in small:
        args += ["--set", s]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1].startswith("mean foreground Dice: ")
    (run,) = tmp_path.glob("demo-*")
    assert (run / "best.pt").is_file() and (run / "curves.png").is_file() and list(run.glob("overlay_*.png"))


def test_evaluate_without_validation_cases_says_what_to_do(tiny_cfg_path, tmp_path, capsys):
    run = tmp_path / "r"
    assert (
        main(
            [
                "train",
                str(tiny_cfg_path),
                "--set",
                f"train.run_dir={run}",
                "--set",
                "data.val_fraction=0.0",
                "--set",
                "train.save_pictures=false",
            ]
        )
        == 0
    )
    assert main(["evaluate", str(run / "last.pt")]) == 1
    assert "pass --data DIR" in capsys.readouterr().err


def test_evaluate_prints_per_case_table(trained, tmp_path, capsys):
    assert main(["evaluate", str(trained / "best.pt"), "--out", str(tmp_path / "e.csv")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("case") and "mean" in out


@pytest.mark.parametrize("backend", ["torch", "monai"])
def test_augment_preview(tiny_cfg_path, tmp_path, backend, capsys):
    out = tmp_path / "grid.png"
    args = [
        "augment",
        str(tiny_cfg_path),
        "--n",
        "4",
        "--out",
        str(out),
        "--set",
        f"augment.backend={backend}",
        "--set",
        "augment.transforms=[{name: rotate}, {name: gamma}]",
    ]
    assert main(args) == 0 and out.stat().st_size > 1000
    assert main(args) == 1 and "--overwrite" in capsys.readouterr().err


def test_predict_with_resize_returns_the_input_size(trained, tmp_path):
    data = _phantom_folder(tmp_path / "data", n=1)
    out = tmp_path / "pred"
    args = [
        "predict",
        str(trained / "best.pt"),
        str(data / "images"),
        str(out),
        "--set",
        "data.resize=[16, 16]",
    ]
    assert main(args) == 0
    assert all(np.asarray(Image.open(f)).shape == (32, 32) for f in out.glob("*.png"))


def test_demo_adapt_code_path(tmp_path, capsys):
    small = [
        "data.phantom_size=32",
        "data.phantom_cases=4",
        "data.phantom_slices=2",
        "data.val_fraction=0.5",
        "train.max_steps=2",
        "train.eval_every=2",
        "model.params={channels: [4, 8, 16], strides: [2, 2], num_res_units: 0}",
        "train.progress=false",
    ]
    args = ["demo", "--adapt", "--out", str(tmp_path)]
    for s in small:
        args += ["--set", s]
    assert main(args) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last.startswith("MR validation mean Dice: no adaptation ") and "joint CycleGAN + U-Net" in last
    (run,) = tmp_path.glob("demo_adapt-*")
    assert (run / "ct_only" / "best.pt").is_file() and list((run / "joint").glob("translation_step*.png"))


def test_demo_adapt_config_mirrors_the_demo():
    from tests.conftest import REPO
    from weakseg.cli import demo_adapt_configs
    from weakseg.config import config_to_dict, load_config

    mirrored = load_config(REPO / "configs" / "demo_adapt.yaml")
    assert config_to_dict(mirrored) == config_to_dict(demo_adapt_configs()[1])


def test_wrong_value_types_and_bugs_give_messages_not_tracebacks(tmp_path, capsys, monkeypatch):
    from tests.conftest import REPO

    tiny = str(REPO / "configs" / "tiny.yaml")
    run = ["--set", f"train.run_dir={tmp_path}/r"]
    assert main(["train", tiny, "--set", "model.params.channels=abc", *run]) == 1
    err = capsys.readouterr().err
    assert 'network "unet" cannot be built from model.params' in err and "channels='abc'" in err
    record("--set model.params.channels=abc", "exit 1", err.splitlines()[-1])
    assert "Traceback" not in err

    def broken(_args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("weakseg.cli.commands._train", broken)
    monkeypatch.delenv("WEAKSEG_TRACEBACK", raising=False)
    assert main(["train", tiny, *run]) == 2
    err = capsys.readouterr().err
    assert "internal error, probably a bug in weakseg: ZeroDivisionError" in err
    record("an unexpected exception inside a command (a bug)", "exit 2", " ".join(err.split()))


def test_predict_writes_nothing_when_an_input_fails_halfway(trained, tmp_path, capsys):
    data = _phantom_folder(tmp_path / "data")
    (data / "images" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # sorted last
    out = tmp_path / "pred" / "sub"
    assert main(["predict", str(trained / "best.pt"), str(data / "images"), str(out)]) == 1
    err = capsys.readouterr().err
    assert "cannot decode" in err and "zz_broken.png" in err
    assert not (tmp_path / "pred").exists()  # no partial outputs, not even the folders it made
    blocked = tmp_path / "afile"
    blocked.write_text("x")
    assert main(["predict", str(trained / "best.pt"), str(data / "images"), str(blocked / "out")]) == 1
    err = capsys.readouterr().err
    assert f"cannot write predictions into {blocked / 'out'}" in err
    record("predict into a path below a file", "exit 1", err.splitlines()[-1])


def test_version_and_list(capsys):
    from weakseg import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"weakseg {__version__}"
    assert main(["list", "methods"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert {"fixmatch", "unimatch", "cps", "bcp", "self_train", "supervised"} <= set(lines)
    assert (
        "threshold=0.95" in lines["fixmatch"]
        and "freeze_encoder_steps" in lines["dan"]
        and "disc" not in lines["dan"]
    )
    for what, name in (
        ("networks", "unet"),
        ("losses", "dice_ce"),
        ("transforms", "gin"),
        ("encoders", "resnet18"),
    ):
        assert main(["list", what]) == 0 and name in capsys.readouterr().out
