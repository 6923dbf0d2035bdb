"""benchmarks/ct2mr.py: per-row seeds, what they train, the table and the summary's shape (no training)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import ct2mr  # noqa: E402


def _row(dice: float, seeds: list[float] | None = None) -> dict:
    r = {f"dice/{o}": dice for o in ct2mr.ORGANS} | {f"assd/{o}": 2.0 for o in ct2mr.ORGANS}
    r |= {"mean_dice": dice, "mean_assd": 2.0, "patients": ["02"]}
    return r | ({"seeds_mean_dice": seeds} if seeds else {})


def _args(**kw) -> argparse.Namespace:
    base = dict(size=128, data_root=Path("/data"), network="encoder_unet", sup_steps=1500, eval_every=250, seed=0,
                set=[], round_steps=500, ngf=16, gan_steps=2500, gan_eval_every=500, seeds=[0], row_seeds={},
                rows=None, directions=None, parts=None)  # fmt: skip
    return argparse.Namespace(**(base | kw))


def test_row_seeds_parse_and_override():
    assert ct2mr._row_seeds("mr2ct:h_combined=0,1,2") == (("mr2ct", "h_combined"), [0, 1, 2])
    args = _args(row_seeds={("mr2ct", "h_combined"): [0, 1, 2]})
    assert ct2mr._seeds(args, "mr2ct", "h_combined") == [0, 1, 2]
    assert ct2mr._seeds(args, "ct2mr", "h_combined") == [0]


@pytest.mark.parametrize(
    "text,match",
    [
        ("mr2ct:h_combined", "expected DIRECTION:ROW=SEEDS"),
        ("x2y:h_combined=0", "expected DIRECTION:ROW=SEEDS"),
        ("ct2mr:c_joint=0", "expected DIRECTION:ROW=SEEDS"),
        ("ct2mr:e_appearance=a", "seeds must be comma-separated integers"),
        ("ct2mr:e_appearance=0,0,1", "a seed is listed twice"),
    ],
)
def test_row_seeds_refused_with_the_expected_form(text, match):
    with pytest.raises(argparse.ArgumentTypeError, match=match):
        ct2mr._row_seeds(text)


@pytest.mark.parametrize(
    "parts,trained",
    [
        (
            ["appearance", "combined"],
            [f"{k}_mr2ct_s{i}" for i in range(3) for k in ("appearance", "combined")],
        ),
        (["appearance"], ["appearance_mr2ct_s0"]),  # (h)'s seeds only when (h) trains
    ],
)
def test_row_seeds_train_h_from_e_of_the_same_seed_in_the_asked_direction_only(monkeypatch, parts, trained):
    runs = []
    monkeypatch.setattr(ct2mr, "fit_or_reuse", lambda cfg, run_dir: runs.append((run_dir.name, cfg)))
    args = _args(parts=parts, directions=["mr2ct"], row_seeds={("mr2ct", "h_combined"): [0, 1, 2]})
    assert ct2mr.run(args) is None
    assert [name for name, _ in runs] == trained
    for name, cfg in runs:
        assert cfg.train.seed == int(name[-1])
        if name.startswith("combined"):
            assert cfg.method.params["initial"].endswith(f"appearance_mr2ct_s{name[-1]}/best.pt")


def test_table_judges_rows_of_3_seeds_and_summary_marks_only_d():
    rows = {
        "a_no_adaptation": _row(0.6),
        "d_supervised_target": _row(0.9),
        "e_appearance": _row(0.8, [0.78, 0.8, 0.82]),
    }
    text = ct2mr.table("ct2mr", rows)
    assert "| 3 |" in text and "0.800 ± 0.016" in text
    assert "best row without MR labels on 3 seeds: e at 0.800, meets the target" in text
    rows["e_appearance"] = _row(0.74, [0.72, 0.74, 0.76])
    assert "e at 0.740, below the target" in ct2mr.table("ct2mr", rows)
    single = ct2mr.table("mr2ct", {k: v for k, v in rows.items() if k != "e_appearance"})
    assert "no row without CT labels has 3 seeds" in single and "| 1 |" in single
    summ = ct2mr.summary({"ct2mr": rows})["ct2mr"]
    assert [k for k, v in summ.items() if v["target_labels_used"]] == ["d_supervised_target"]
    assert summ["e_appearance"]["seeds"] == [0.72, 0.74, 0.76] and summ["a_no_adaptation"]["seeds"] == [0.6]


@pytest.mark.parametrize("source,target", [("ct", "mr"), ("mr", "ct")])
def test_route_configs_are_the_benchmarked_rows_e_and_h(source, target):
    """configs/route_<d>_appearance.yaml trains what rows (e) and (h) measure (up to roots, names and seed)."""
    from adapt.route import _stage_config, load_route
    from weakseg.config import config_to_dict

    args = _args()
    root, stages = load_route(ct2mr.REPO / "configs" / f"route_{source}2{target}_appearance.yaml")
    routed = {s.name: _stage_config(s, root) for s in stages}
    init = root / "appearance" / "best.pt"
    bench = {
        "appearance": ct2mr.augmented_cfg(args, ct2mr.domain_cfgs(args)[source], "x", ct2mr.APPEARANCE, 0),
        "self_train": ct2mr.self_train_cfg(args, source, init, "x", 0, ct2mr.APPEARANCE),
    }

    def comparable(cfg) -> dict:
        out = config_to_dict(cfg)
        for section, domain in (("data", source), ("target", target)):
            if out.get(section):
                assert Path(out[section]["root"]).name == domain, (section, out[section]["root"])
                out[section]["root"] = None
        out["train"]["name"] = None
        return out

    assert list(routed) == ["appearance", "self_train"]
    for name in routed:
        assert comparable(routed[name]) == comparable(bench[name]), name
