"""CycleGAN (+ joint segmentation) on tiny CT -> MR phantoms: one step, no D gradient in the G step,
translate, predict, checkpointed pools, two-domain data, a 2-step Trainer run, clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from adapt.cyclegan import CycleGAN
from weakseg.config import ConfigError, DataConfig, load_config
from weakseg.data import DataError, build_domain_datasets, datasets_for
from weakseg.engine.streams import BatchStream
from weakseg.engine.trainer import Trainer
from weakseg.keys import Keys
from weakseg.methods import StepContext, build_method

TINY = "{ngf: 8, ndf: 8, generator: resnet_6, pool_size: 4"
MR_TARGET = ["target.phantom_modality=mr", "method.name=cyclegan"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is fastest


def _cfg(tiny_cfg_path, params: str = "", more: tuple[str, ...] = ()):
    return load_config(
        tiny_cfg_path, [*MR_TARGET, f"method.params={TINY}{', ' + params if params else ''}}}", *more]
    )


@pytest.fixture(scope="module")
def domains():
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml", MR_TARGET)
    return datasets_for(cfg)


def _batch(method: CycleGAN, domains) -> dict:
    return {
        s: next(BatchStream(domains[s], 2, seed=0, size_divisor=method.size_divisor)) for s in method.streams
    }


class CheckedContext(StepContext):
    """Records the discriminators' gradients and the generators' weights right after the G step."""

    def backward(self, loss, opt_name, terms=None):
        super().backward(loss, opt_name, terms)
        if "G" in ([opt_name] if isinstance(opt_name, str) else opt_name):
            m = self.method
            self.d_grads = [p.grad for p in (*m.d_t.parameters(), *m.d_s.parameters())]
            self.g_after = [p.detach().clone() for p in (*m.g_st.parameters(), *m.g_ts.parameters())]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("", {"seg_fake"}),
        ("segment: false", set()),
        ("seg_on_real_source: true, shape_consistency: 1.0", {"seg_fake", "seg_real", "shape"}),
        ("generator: unet, unet_downs: 5, gan_mode: vanilla, lambda_identity: 0", {"seg_fake"}),
    ],
)
def test_one_step(tiny_cfg_path, domains, params: str, expected: set[str]) -> None:
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path, params))
    ctx = CheckedContext(torch.device("cpu"), method.configure_optimizers(), max_steps=10)
    ctx.method = method
    d_before = [p.detach().clone() for p in (*method.d_t.parameters(), *method.d_s.parameters())]
    logs = method.train_step(_batch(method, domains), 0, ctx)
    idt = {"idt_ct", "idt_mr"} if "lambda_identity: 0" not in params else set()
    gan = {"adv_mr", "adv_ct", "cycle_ct", "cycle_mr", "D_mr", "D_ct", "loss_G", "loss_D"}
    assert set(logs) == gan | idt | expected
    assert all(math.isfinite(v) for v in logs.values())
    assert all(g is None for g in ctx.d_grads), "the G step must not give the discriminators a gradient"
    g_now = [*method.g_st.parameters(), *method.g_ts.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(ctx.g_after, g_now)), "the D step must not move G"
    d_now = [*method.d_t.parameters(), *method.d_s.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d_now)), "the D step trains D"
    assert all(p.requires_grad for p in method.parameters())
    assert len(method.pool_t) == len(method.pool_s) == 2


def test_translate_and_predict(tiny_cfg_path, domains) -> None:
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path)).eval()
    ct = domains["source"][0][Keys.IMAGE][None, :, :30, :27]  # not a multiple of the divisor: padded, cropped
    fake_mr = method.translate(ct)
    assert fake_mr.shape == ct.shape and 0.0 <= fake_mr.min() and fake_mr.max() <= 1.0
    assert torch.equal(method.translate(ct, "ct2mr"), fake_mr)
    assert torch.equal(method.translate(ct, "source2target"), fake_mr)
    assert not torch.equal(method.translate(ct, "mr2ct"), fake_mr)  # the other generator
    assert not fake_mr.requires_grad
    with pytest.raises(
        ValueError, match='direction must be one of ct2mr, mr2ct, source2target, target2source, got "ct2ct"'
    ):
        method.translate(ct, "ct2ct")
    with torch.no_grad():
        logits = method.predict(domains["val"][0][Keys.IMAGE][None])
    assert logits.shape == (1, 5, 32, 32)


def test_pure_cyclegan_has_no_predict(tiny_cfg_path) -> None:
    method = build_method(_cfg(tiny_cfg_path, "segment: false"))
    assert method.predicts is False and "seg" not in method.configure_optimizers()
    with pytest.raises(RuntimeError, match='no segmenter.*translate\\(image, "ct2mr"\\)'):
        method.predict(torch.zeros(1, 1, 32, 32))


def test_pools_are_checkpointed(tiny_cfg_path, domains) -> None:
    torch.manual_seed(0)
    method = build_method(_cfg(tiny_cfg_path, "segment: false"))
    ctx = StepContext(torch.device("cpu"), method.configure_optimizers())
    method.train_step(_batch(method, domains), 0, ctx)
    clone = build_method(_cfg(tiny_cfg_path, "segment: false"))
    clone.load_state_dict(method.state_dict())
    assert len(clone.pool_t) == 2 and all(
        torch.equal(a, b) for a, b in zip(clone.pool_t.images, method.pool_t.images)
    )


def test_domain_datasets(domains) -> None:
    assert set(domains) == {"source", "target", "val", "test", "source_val"}
    assert domains["source"].labeled and Keys.LABEL in domains["source"][0]
    assert not domains["target"].labeled and Keys.LABEL not in domains["target"][0]
    assert domains["val"].labeled and Keys.LABEL in domains["val"][0]
    assert all(c.startswith("ct_") for c in domains["source"].case_ids + domains["source_val"].case_ids)
    assert all(c.startswith("mr_") for c in domains["target"].case_ids + domains["val"].case_ids)
    assert not set(domains["target"].case_ids) & set(domains["val"].case_ids)


def test_trainer_runs_two_steps_and_evaluates_on_the_target(tiny_cfg_path, tmp_path) -> None:
    cfg = _cfg(tiny_cfg_path, more=("train.max_steps=2", "train.save_pictures=false"))
    result = Trainer(cfg, datasets=datasets_for(cfg), run_dir=tmp_path / "run").fit()
    assert result["step"] == 2 and "mean_dice" in result["last"]
    assert (tmp_path / "run" / "best.pt").is_file()


def test_target_config_inherits_data(tiny_cfg_path) -> None:
    cfg = _cfg(tiny_cfg_path)
    assert cfg.target.phantom_modality == "mr" and cfg.target.phantom_size == cfg.data.phantom_size == 32
    own = load_config(tiny_cfg_path, [*MR_TARGET, "data.root=ct", "data.intensity.preset=ct_window"])
    assert own.target.root is None and own.target.intensity.preset == "auto"  # per-domain keys
    with pytest.raises(ConfigError, match="target describes the same data as data.*target.phantom_modality"):
        load_config(tiny_cfg_path, ["target.phantom_cases=6"])
    with pytest.raises(ConfigError, match="target.in_channels is 2 but data.in_channels is 1"):
        load_config(tiny_cfg_path, [*MR_TARGET, "target.in_channels=2"])


def test_bad_domains() -> None:
    ct = DataConfig(phantom_cases=4, phantom_slices=1, phantom_size=32)
    mr = DataConfig(phantom_cases=4, phantom_slices=1, phantom_size=32, phantom_modality="mr")
    with pytest.raises(DataError, match="source domain has 1 image channel.*target domain has 3"):
        build_domain_datasets(ct, DataConfig(phantom_modality="mr", in_channels=3))
    every_mr_case = {"val": [f"mr_p{i:03d}" for i in range(4)]}
    mr.splits = every_mr_case
    with pytest.raises(DataError, match="target domain has no training samples \\(4 validation"):
        build_domain_datasets(ct, mr)
    mr.splits = {"val": ["ct_p000"]}
    with pytest.raises(DataError, match='target domain .*case "ct_p000" is not in the data'):
        build_domain_datasets(ct, mr)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ("generator: resnet_7", "generator must be resnet_6 | resnet_9 | unet"),
        ("gan_mode: hinge", "gan_mode must be lsgan | vanilla"),
        ("ngf: 0", "ngf must be an int >= 1"),
        ("lambda_cycle: -1", "lambda_cycle must be a number >= 0"),
        ("shape_consistency: 1.0", "set seg_on_real_source: true"),
        ("segment: false, seg_on_real_source: true", "need segment: true"),
        ("image_range: [1, 0]", "image_range must be \\[low, high\\]"),
        ("domains: [ct, ct]", "domains must be two different names"),
        ("foo: 1", 'no parameter "foo"'),
    ],
)
def test_bad_params(tiny_cfg_path, params: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_method(_cfg(tiny_cfg_path, params))


def test_needs_a_target_section(tiny_cfg_path) -> None:
    with pytest.raises(ValueError, match="add a target: section"):
        build_method(load_config(tiny_cfg_path, ["method.name=cyclegan"]))


def test_cli_trains_and_evaluates_on_the_target_domain(tmp_path, tiny_cfg_path):
    """`weakseg train` builds source + target streams from `target:`; evaluation scores the target (MR)."""
    from weakseg.cli import main
    from weakseg.engine.checkpoint import load_checkpoint

    run = tmp_path / "run"
    assert _train_cyclegan(tiny_cfg_path, run, steps=2) == 0
    assert load_checkpoint(run / "best.pt")["config"]["target"]["phantom_modality"] == "mr"
    out = tmp_path / "e.csv"
    assert main(["evaluate", str(run / "best.pt"), "--out", str(out)]) == 0
    assert "mr_p" in out.read_text()  # target-domain (MR) validation cases


def test_translate_writes_a_dataset_the_core_reader_loads(tmp_path, tiny_cfg_path, capsys):
    from tests.test_cli import _phantom_folder
    from weakseg.cli import main
    from weakseg.config import DataConfig
    from weakseg.data import build_datasets

    run = tmp_path / "run"
    assert _train_cyclegan(tiny_cfg_path, run, steps=1) == 0
    data = _phantom_folder(tmp_path / "ct", n=2, size=32)
    out = tmp_path / "fake_mr"
    args = ["adapt", "translate", str(run / "last.pt"), "--input", str(data), "--output", str(out)]
    assert main([*args, "--direction", "ct2mr"]) == 0
    ds = build_datasets(DataConfig(source="folder", root=str(out), val_fraction=0.0))["labeled"]
    assert len(ds) == 4 and ds[0]["image"].shape == (1, 32, 32) and ds[0]["label"].max() < 5
    assert (out / "manifest.json").is_file()
    assert main(args) == 1 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--direction", "ct2xx"]) == 1
    assert "direction must be one of" in capsys.readouterr().err
    assert len(list((out / "images").iterdir())) == 4  # the failed call left the dataset as it was
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fake_mr.")]


def _train_cyclegan(config, run, steps: int, pictures: bool = False, more: tuple[str, ...] = ()) -> int:
    """``weakseg train`` of a tiny CT->MR phantom CycleGAN + segmenter into ``run``."""
    from weakseg.cli import main

    sets = [
        "method.name=cyclegan",
        "method.params={generator: resnet_6, ngf: 8, ndf: 8}",
        "target={phantom_modality: mr}",
        f"train.run_dir={run}",
        f"train.max_steps={steps}",
        f"train.eval_every={steps}",
        f"train.save_pictures={str(pictures).lower()}",
        *more,
    ]
    return main(["train", str(config), *[a for s in sets for a in ("--set", s)]])


def test_translation_grid_is_saved_at_each_evaluation(tmp_path, tiny_cfg_path):
    from PIL import Image

    run = tmp_path / "run"
    assert _train_cyclegan(tiny_cfg_path, run, steps=2, pictures=True) == 0
    grid = run / "translation_step000002.png"
    assert grid.is_file() and Image.open(grid).size[0] > 200


def _write_folder(root: Path, channels: int, n_cases: int = 3) -> Path:
    import numpy as np
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for case in range(n_cases):
        for z in range(2):
            shape = (32, 32, 3) if channels == 3 else (32, 32)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(
                root / "images" / f"mr_p{case}_z{z}.png"
            )
            Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "masks" / f"mr_p{case}_z{z}.png")
    return root


@pytest.mark.parametrize("layout", ["empty", "rgb"])
def test_bad_target_domain_fails_before_the_run_folder_exists(tmp_path, tiny_cfg_path, capsys, layout):
    from weakseg.cli import main

    target = tmp_path / "mr"
    if layout == "empty":
        (target / "images").mkdir(parents=True)
    else:
        _write_folder(target, channels=3)
    run = tmp_path / "run"
    sets = ["method.name=cyclegan", f"target={{source: folder, root: {target}}}", f"train.run_dir={run}"]
    assert main(["train", str(tiny_cfg_path), *[a for s in sets for a in ("--set", s)]]) == 1
    err = capsys.readouterr().err
    expected = "holds no png" if layout == "empty" else "is colour (RGB) with 3 channel(s)"
    assert "target" in err and expected in err and str(target / "images") in err
    assert not run.exists()


def test_translate_with_resize_writes_the_input_size_and_rejects_other_channels(
    tmp_path, tiny_cfg_path, capsys
):
    from tests.test_cli import _phantom_folder
    from weakseg.cli import main

    run = tmp_path / "run"
    assert _train_cyclegan(tiny_cfg_path, run, steps=1, more=("data.resize=[24, 24]",)) == 0
    data = _phantom_folder(tmp_path / "ct", n=1, size=32)
    out = tmp_path / "fake_mr"
    args = ["adapt", "translate", str(run / "last.pt"), "--input", str(data), "--output", str(out)]
    assert main(args) == 0
    from PIL import Image

    assert {Image.open(p).size for p in (out / "images").iterdir()} == {(32, 32)}  # masks/ fit unchanged
    rgb = _write_folder(tmp_path / "rgb", channels=3, n_cases=1)
    assert main([*args[:3], "--input", str(rgb), "--output", str(tmp_path / "x")]) == 1
    assert "3 channel(s)" in capsys.readouterr().err and not (tmp_path / "x").exists()
