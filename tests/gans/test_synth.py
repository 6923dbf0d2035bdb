"""Synthetic data on tiny phantoms: one step of each GAN (finite, D frozen in the G step), valid sampled label
maps, the dataset writer (loads through the core reader, refuses overwrite, bad input, full disk), the
authenticity and usefulness checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gans.dual import SAMPLE_BLOCK
from weakseg.cli import main
from weakseg.config import DataConfig, load_config
from weakseg.data import build_datasets
from weakseg.engine.streams import BatchStream
from weakseg.keys import Keys
from weakseg.methods import StepContext, build_method

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = "num_downs: 5, ngf: 8, ndf: 8"
DUAL = f"{SMALL}, label_size: 32, label_ngf: 8, label_ndf: 8, z_dim: 16"


def _cfg(tiny_cfg_path, method: str, params: str, *more: str):
    return load_config(tiny_cfg_path, [f"method.name={method}", f"method.params={{{params}}}", *more])


class RecordingContext(StepContext):
    def backward(self, loss, opt_name, terms=None):
        super().backward(loss, opt_name, terms)
        if opt_name in ("G", "G_label"):
            disc = self.method.d if opt_name == "G" else self.method.label_d
            self.frozen_grads = getattr(self, "frozen_grads", []) + [p.grad for p in disc.parameters()]


@pytest.mark.parametrize(
    ("method_name", "params"),
    [
        ("cgan", SMALL),
        ("cgan", f"{SMALL}, condition: label_and_context, erase_dilation: 2"),
        ("dual_gan", DUAL),
        ("dual_gan", f"{DUAL}, label_critic: image, label_noise_size: 8, label_smooth: 0"),
        ("dual_gan", f"{DUAL}, label_gan_mode: lsgan, label_spectral_norm: false, label_d_layers: 2"),
        ("cgan", f"{SMALL}, diffaugment: [translation, cutout, color], ema_decay: 0.99"),
        ("cgan", f"{SMALL}, generator: spade, spade_channels: 8"),
        ("cgan", f"{SMALL}, fov_channel: true"),
        ("dual_gan", f"{DUAL}, fov_channel: true, generator: spade, spade_channels: 8"),
        ("dual_gan", f"{DUAL}, generator: spade, spade_channels: 8"),
        (
            "dual_gan",
            f"{DUAL}, label_diffaugment: [translation, cutout], label_ema_decay: 0.99, diffaugment: [color]",
        ),
    ],
)
def test_one_step_finite_and_discriminators_frozen(tiny_cfg_path, method_name, params):
    torch.manual_seed(0)
    cfg = _cfg(tiny_cfg_path, method_name, params)
    method = build_method(cfg)
    ctx = RecordingContext(torch.device("cpu"), method.configure_optimizers(), max_steps=10)
    ctx.method = method
    batch = {"labeled": next(BatchStream(build_datasets(cfg.data)["labeled"], 2, seed=0))}
    logs = method.train_step(batch, 0, ctx)
    assert {"adv", "l1", "D_D"} <= set(logs) and all(math.isfinite(v) for v in logs.values())
    assert ctx.frozen_grads and all(g is None for g in ctx.frozen_grads)
    assert method.predicts is False
    with pytest.raises(RuntimeError, match="weakseg synth generate"):
        method.predict(batch["labeled"][Keys.IMAGE])
    fake = method.generate(batch["labeled"][Keys.LABEL], batch["labeled"][Keys.IMAGE])
    assert fake.shape == batch["labeled"][Keys.IMAGE].shape and 0 <= fake.min() and fake.max() <= 1


@pytest.mark.parametrize("noise_size", [4, 8, 16])
def test_dual_gan_samples_valid_label_maps(tiny_cfg_path, noise_size):
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path, "dual_gan", f"{DUAL}, label_noise_size: {noise_size}")).eval()
    a = method.sample_labels(3, torch.Generator().manual_seed(5))
    b = method.sample_labels(3, torch.Generator().manual_seed(5))
    assert a.shape == (3, 32, 32) and a.dtype == torch.int64 and torch.equal(a, b)
    assert 0 <= a.min() and a.max() < 5

    more = method.sample_labels(SAMPLE_BLOCK + 3, torch.Generator().manual_seed(5))
    first = method.sample_labels(SAMPLE_BLOCK, torch.Generator().manual_seed(5))
    # a map depends on its block of the noise stream, not on n
    assert more.shape[0] == SAMPLE_BLOCK + 3 and torch.equal(more[:SAMPLE_BLOCK], first)


@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_dual_gan_critic_sees_blurred_real_maps_and_soft_fakes(tiny_cfg_path, smooth):
    method = build_method(_cfg(tiny_cfg_path, "dual_gan", f"{DUAL}, label_smooth: {smooth}"))
    label = torch.zeros(2, 32, 32, dtype=torch.long)
    label[:, 8:20, 10:24] = 3
    real = method._real_labels(label)
    fake = method._fake_labels(method.label_g.noise(2, torch.Generator().manual_seed(0)))
    for maps in (real, fake):
        assert maps.shape == (2, 5, 32, 32) and torch.allclose(maps.sum(1), torch.ones(2, 32, 32), atol=1e-5)
    if smooth:  # blurred edges, still the class inside
        assert 0 < real[0, 3, 8, 15] < 1 and real[0, 3, 14, 17] > 0.99
        assert ((fake > 0) & (fake < 1)).any()
    else:
        assert torch.equal(real, F.one_hot(label, 5).movedim(-1, 1).float())
        assert set(fake.unique().tolist()) <= {0, 1}


def test_dual_gan_label_epsilon_keeps_real_maps_off_zero_and_one(tiny_cfg_path):
    method = build_method(_cfg(tiny_cfg_path, "dual_gan", f"{DUAL}, label_epsilon: 0.1"))
    real = method._real_labels(torch.zeros(1, 32, 32, dtype=torch.long))
    assert torch.allclose(real[:, 0], torch.full((1, 32, 32), 0.92)) and torch.allclose(
        real[:, 1:], torch.tensor(0.02)
    )


@pytest.mark.parametrize(
    ("method_name", "params", "match"),
    [
        ("cgan", "condition: labels", "condition must be label | label_and_context"),
        ("cgan", "lambda_l1: -1", "lambda_l1 must be a number"),
        (
            "dual_gan",
            f"{SMALL}, label_size: 48",
            "label_size: label map size must be noise size 4 times a power",
        ),
        ("dual_gan", f"{SMALL}, label_critic: global", "label_critic must be image | patch"),
        ("dual_gan", f"{SMALL}, label_gan_mode: wgan", "label_gan_mode must be hinge | lsgan | vanilla"),
        ("dual_gan", f"{SMALL}, label_smooth: -1", "label_smooth"),
        ("dual_gan", f"{SMALL}, label_epsilon: 0.7", "label_epsilon"),
        (
            "dual_gan",
            f"{SMALL}, label_size: 32, label_d_layers: 4",
            "label_size must be >= 48 with label_critic",
        ),
        (
            "dual_gan",
            f"{SMALL}, label_size: 16, label_critic: patch",
            "label_size must be >= 24 with label_critic",
        ),
        ("dual_gan", f"{SMALL}, condition: label_and_context", 'condition must be "label"'),
    ],
)
def test_bad_params(tiny_cfg_path, method_name, params, match):
    with pytest.raises(ValueError, match=match):
        build_method(_cfg(tiny_cfg_path, method_name, params))


def _train(tiny_cfg_path, run: Path, method_name: str, params: str) -> Path:
    sets = [
        f"method.name={method_name}",
        f"method.params={{{params}}}",
        f"train.run_dir={run}",
        "train.max_steps=2",
    ]
    assert main(["train", str(tiny_cfg_path), *[a for s in sets for a in ("--set", s)]]) == 0
    assert list(run.glob("synthesis_step*.png"))
    return run / "last.pt"


@pytest.fixture(scope="module")
def dual_ckpt(tmp_path_factory):
    from tests.conftest import REPO

    return _train(REPO / "configs" / "tiny.yaml", tmp_path_factory.mktemp("dual") / "run", "dual_gan", DUAL)


def test_generate_writes_a_dataset_the_core_reader_loads(dual_ckpt, tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["synth", "generate", str(dual_ckpt), "--n", "5", "--out", str(out), "--seed", "3"]
    assert main(args) == 0
    sets = build_datasets(DataConfig(source="folder", root=str(out), val_fraction=0.0))
    ds = sets["labeled"]
    assert len(ds) == 5 and len(ds.case_ids) == 5
    assert (
        ds[0][Keys.IMAGE].shape == (1, 32, 32)
        and 0 <= int(ds[0][Keys.LABEL].min()) <= int(ds[0][Keys.LABEL].max()) < 5
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["n"] == 5 and manifest["method"] == "dual_gan"
    before = (out / "masks" / "synth_p00000.png").read_bytes()
    assert main(args) == 1 and "--overwrite" in capsys.readouterr().err
    assert (out / "masks" / "synth_p00000.png").read_bytes() == before
    again = tmp_path / "again"
    assert main([*args[:4], "5", "--out", str(again), "--seed", "3"]) == 0
    assert (again / "masks" / "synth_p00000.png").read_bytes() == before  # same seed, same dataset


@pytest.mark.parametrize("n", ["0", "-2"])
def test_generate_rejects_bad_n(dual_ckpt, tmp_path, capsys, n):
    assert main(["synth", "generate", str(dual_ckpt), "--n", n, "--out", str(tmp_path / "s")]) == 1
    assert "--n must be a whole number >= 1" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_generate_rejects_a_checkpoint_that_is_not_a_synthesis_model(tiny_cfg_path, tmp_path, capsys):
    run = tmp_path / "seg"
    assert (
        main(["train", str(tiny_cfg_path), "--set", f"train.run_dir={run}", "--set", "train.max_steps=1"])
        == 0
    )
    assert main(["synth", "generate", str(run / "last.pt"), "--n", "2", "--out", str(tmp_path / "s")]) == 1
    assert 'holds method "supervised", not a synthesis model' in capsys.readouterr().err


def _masks(folder: Path, values: list[int]) -> Path:
    folder.mkdir(parents=True)
    for i, v in enumerate(values):
        m = np.zeros((32, 32), np.uint8)
        m[8:20, 8:20] = v
        Image.fromarray(m).save(folder / f"m_{i}.png")
    return folder


def test_cgan_needs_labels_and_checks_their_classes(tiny_cfg_path, tmp_path, capsys):
    ckpt = _train(tiny_cfg_path, tmp_path / "cgan", "cgan", SMALL)
    out = tmp_path / "s"
    assert main(["synth", "generate", str(ckpt), "--n", "2", "--out", str(out)]) == 1
    assert "pass --labels DIR" in capsys.readouterr().err
    bad = _masks(tmp_path / "bad", [1, 7])
    assert main(["synth", "generate", str(ckpt), "--n", "2", "--out", str(out), "--labels", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "m_1.png" in err and "label values [7] are outside 0..4" in err and not out.exists()
    good = _masks(tmp_path / "good", [1, 4])
    assert main(["synth", "generate", str(ckpt), "--n", "3", "--out", str(out), "--labels", str(good)]) == 0
    assert sorted(np.unique(np.asarray(Image.open(out / "masks" / "synth_p00001.png")))) == [0, 4]


def test_deform_gives_a_checkpoint_new_layouts_of_the_given_maps(dual_ckpt, tmp_path, capsys):
    maps = _masks(tmp_path / "maps", [1, 4])
    base = ["synth", "generate", str(dual_ckpt), "--n", "4", "--labels", str(maps)]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert main([*base, "--out", str(tmp_path / "warped"), "--deform", "--seed", "1"]) == 0
    plain = np.asarray(Image.open(tmp_path / "plain" / "masks" / "synth_p00000.png"))
    warped = np.asarray(Image.open(tmp_path / "warped" / "masks" / "synth_p00000.png"))
    assert np.array_equal(plain, np.asarray(Image.open(maps / "m_0.png")))  # given maps as they are
    assert not np.array_equal(warped, plain) and set(np.unique(warped)) <= {0, 1}
    assert json.loads((tmp_path / "warped" / "manifest.json").read_text())["deform"] is True
    assert main([*base, "--out", str(tmp_path / "mixed"), "--recombine", "--seed", "1"]) == 0
    assert json.loads((tmp_path / "mixed" / "manifest.json").read_text())["recombine"] is True
    assert (
        main(["synth", "generate", str(dual_ckpt), "--n", "2", "--out", str(tmp_path / "x"), "--deform"]) == 1
    )
    assert "--deform / --recombine warp the --labels maps" in capsys.readouterr().err


def test_fov_of_a_fundus_like_image_closes_dark_vessels(tiny_cfg_path):
    method = build_method(_cfg(tiny_cfg_path, "cgan", f"{SMALL}, fov_channel: true, fov_threshold: 0.1"))
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    disc = (yy - 16) ** 2 + (xx - 16) ** 2 < 12**2
    image = torch.where(disc, 0.6, 0.02)[None, None].clone()
    image[0, 0, 16, 8:24] = 0.05  # a dark vessel, one pixel wide, inside the view
    fov = method.fov_of(image)[0]
    assert fov[16, 16] and fov[16, 10] and not fov[0, 0] and not fov[16, 30]
    assert (fov == disc).float().mean() > 0.97
    label = torch.zeros(1, 32, 32, dtype=torch.long)
    with pytest.raises(ValueError, match="trained with fov_channel: give the field of view"):
        method.generate(label)
    assert method.generate(label, fov=disc[None]).shape == (1, 1, 32, 32)


@pytest.fixture(scope="module")
def fov_ckpt(tmp_path_factory):
    from tests.conftest import REPO

    run = tmp_path_factory.mktemp("fov") / "run"
    return _train(REPO / "configs" / "tiny.yaml", run, "dual_gan", f"{DUAL}, fov_channel: true")


def test_generate_with_fields_of_view_clears_labels_outside(fov_ckpt, dual_ckpt, tmp_path, capsys):
    fov = tmp_path / "fov"
    fov.mkdir()
    half = np.zeros((40, 40), np.uint8)
    half[:, :20] = 1  # inside only on the left of a larger mask: crops see both sides
    Image.fromarray(half).save(fov / "a.png")
    out = tmp_path / "synth"
    assert main(["synth", "generate", str(fov_ckpt), "--n", "4", "--out", str(out), "--fov", str(fov)]) == 0
    assert json.loads((out / "manifest.json").read_text())["fov"] == str(fov)
    for name in sorted((out / "masks").iterdir()):
        lab = np.asarray(Image.open(name))
        assert lab.shape == (32, 32) and not lab[:, 20:].any()  # crops start at x <= 8: x >= 20 is outside
    assert main(["synth", "generate", str(fov_ckpt), "--n", "2", "--out", str(tmp_path / "a")]) == 1
    assert "trained with fov_channel: pass --fov DIR" in capsys.readouterr().err
    assert (
        main(
            ["synth", "generate", str(dual_ckpt), "--n", "2", "--out", str(tmp_path / "b"), "--fov", str(fov)]
        )
        == 1
    )
    assert "trained without fov_channel" in capsys.readouterr().err


def test_context_mode_paints_labels_into_real_images(tiny_cfg_path, tmp_path):
    from tests.test_cli import _phantom_folder

    params = f"{SMALL}, condition: label_and_context, erase_dilation: 1"
    ckpt = _train(tiny_cfg_path, tmp_path / "ctx", "cgan", params)
    real = _phantom_folder(tmp_path / "real", n=1, size=32)
    edited = tmp_path / "edited"
    edited.mkdir()
    for f in (real / "masks").iterdir():
        m = np.asarray(Image.open(f)).copy()
        m[2:8, 2:8] = 4  # a new "spleen" in a corner
        Image.fromarray(m).save(edited / f.name)
    out = tmp_path / "s"
    args = ["synth", "generate", str(ckpt), "--n", "2", "--out", str(out), "--labels", str(edited)]
    assert main(args) == 1  # needs --context
    assert main([*args, "--context", str(real)]) == 0
    assert np.asarray(Image.open(out / "masks" / "synth_p00000.png"))[3, 3] == 4


def test_full_disk_leaves_no_dataset(dual_ckpt, tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    save = Image.Image.save

    def failing_save(self, fp, *a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(28, "No space left on device")
        return save(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    out = tmp_path / "s"
    assert main(["synth", "generate", str(dual_ckpt), "--n", "6", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "nothing was left behind" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".s.")]


def test_authenticity_tells_noise_from_phantoms_and_usefulness_trains_three(tiny_cfg_path, tmp_path, capsys):
    from tests.test_cli import _phantom_folder

    real = _phantom_folder(tmp_path / "real", n=6, size=32)
    fake = tmp_path / "fake"
    (fake / "images").mkdir(parents=True)
    (fake / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(
            fake / "images" / f"synth_p{i:05d}.png"
        )
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(fake / "masks" / f"synth_p{i:05d}.png")
    out = tmp_path / "checks.json"
    args = [
        "synth",
        "evaluate",
        "--real",
        str(real),
        "--synthetic",
        str(fake),
        "--size",
        "32",
        "--steps",
        "60",
    ]
    args += ["--config", str(tiny_cfg_path), "--runs", str(tmp_path / "runs"), "--out", str(out)]
    args += ["--set", "data.source=folder", "--set", "data.val_fraction=0.34", "--set", "train.max_steps=2"]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["authenticity"]["accuracy"] >= 0.9 and result["authenticity"]["auc"] >= 0.9
    assert set(result["usefulness"]) == {"real", "synthetic", "real_synthetic"}
    assert all(0.0 <= r["best"] <= 1.0 for r in result["usefulness"].values())
    assert result["usefulness"]["synthetic"]["labeled_real_cases"] == []


def test_authenticity_of_real_against_real_is_chance():
    """The control: two sets of real phantom cases (other patients) cannot be told apart, so accuracy and AUC
    stay near 0.5 (the noise test above shows the same classifier reaching 0.9+)."""
    import tempfile

    from gans.checks import authenticity
    from tests.test_cli import _phantom_folder

    with tempfile.TemporaryDirectory() as tmp:
        a = _phantom_folder(Path(tmp) / "a", n=8, size=32, first=100)
        b = _phantom_folder(Path(tmp) / "b", n=8, size=32, first=300)
        result = authenticity(a, b, size=32, steps=60)
    assert 0.2 <= result["accuracy"] <= 0.8 and 0.2 <= result["auc"] <= 0.8, result


def test_synthseg_route_writes_a_dataset_without_a_gan(tmp_path, capsys):
    from tests.test_cli import _phantom_folder
    from weakseg.config import DataConfig
    from weakseg.data import build_datasets

    real = _phantom_folder(tmp_path / "real", n=2, size=32)
    out = tmp_path / "synth"
    args = ["synth", "generate", "--synthseg", "--labels", str(real), "--num-classes", "5", "--n", "6"]
    assert main([*args, "--out", str(out)]) == 0
    sets = build_datasets(DataConfig(source="folder", root=str(out), val_fraction=0.0))
    assert len(sets["labeled"]) == 6 and json.loads((out / "manifest.json").read_text())["deform"] is False
    first = np.asarray(Image.open(out / "masks" / "synth_p00000.png"))
    source = np.asarray(Image.open(sorted((real / "masks").iterdir())[0]))
    assert np.array_equal(first, source)  # cycled real maps, new intensities
    assert main([*args, "--out", str(tmp_path / "deformed"), "--deform", "--seed", "3"]) == 0
    warped = np.asarray(Image.open(tmp_path / "deformed" / "masks" / "synth_p00000.png"))
    assert not np.array_equal(warped, source) and set(np.unique(warped)) <= set(np.unique(source)) | {0}
    assert (
        main(
            [
                "synth",
                "generate",
                "--synthseg",
                "--labels",
                str(real),
                "--n",
                "2",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )
    assert "--num-classes" in capsys.readouterr().err


def _two_maps() -> torch.Tensor:
    maps = torch.zeros(2, 32, 32, dtype=torch.long)
    maps[0, 4:10, 4:10], maps[0, 20:26, 20:26] = 1, 2
    maps[1, 4:10, 20:26], maps[1, 20:26, 4:10] = 1, 2
    return maps


def test_recombine_moves_scales_and_swaps_structures_one_by_one():
    from gans.generate import recombine_label_maps

    maps = _two_maps()
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    same = recombine_label_maps(maps, g(), shift=0.0, scale=(1.0, 1.0), swap_p=0.0)
    assert torch.equal(same, maps)  # no move, no swap: the maps themselves
    moved = recombine_label_maps(maps, g(), shift=0.1, scale=(1.0, 1.0), swap_p=0.0)
    for i in range(2):
        for c in (1, 2):
            assert int((moved[i] == c).sum()) == 36  # a shift keeps each structure whole
            ys, xs = torch.nonzero(moved[i] == c, as_tuple=True)
            y0, x0 = torch.nonzero(maps[i] == c, as_tuple=True)
            assert abs(float(ys.float().mean() - y0.float().mean())) <= 0.1 * 32 + 0.5
            assert abs(float(xs.float().mean() - x0.float().mean())) <= 0.1 * 32 + 0.5
    swapped = recombine_label_maps(maps, g(), shift=0.0, scale=(1.0, 1.0), swap_p=1.0)
    assert torch.equal(swapped[0], maps[1]) and torch.equal(swapped[1], maps[0])  # every class from the other
    grown = recombine_label_maps(maps, g(), shift=0.0, scale=(1.5, 1.5), swap_p=0.0)
    assert int((grown[0] == 1).sum()) == 81  # 6 x 6 -> 9 x 9 about its centre
