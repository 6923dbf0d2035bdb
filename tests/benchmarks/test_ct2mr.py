"""benchmarks/ct2mr.py: per-row seeds, the table and the summary's shape (no training)."""

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


def test_row_seeds_parse_and_override():
    assert ct2mr._row_seeds("mr2ct:h_combined=0,1,2") == (("mr2ct", "h_combined"), [0, 1, 2])
    args = argparse.Namespace(seeds=[0], row_seeds={("mr2ct", "h_combined"): [0, 1, 2]})
    assert ct2mr._seeds(args, "mr2ct", "h_combined") == [0, 1, 2]
    assert ct2mr._seeds(args, "ct2mr", "h_combined") == [0]


@pytest.mark.parametrize(
    "text", ["mr2ct:h_combined", "x2y:h_combined=0", "ct2mr:c_joint=0", "ct2mr:e_appearance=a"]
)
def test_row_seeds_refused_with_the_expected_form(text):
    with pytest.raises(argparse.ArgumentTypeError, match="ct2mr:e_appearance=0,1,2|comma-separated integers"):
        ct2mr._row_seeds(text)


def test_table_names_the_best_row_without_target_labels_and_summary_marks_only_d():
    rows = {
        "a_no_adaptation": _row(0.6),
        "d_supervised_target": _row(0.9),
        "e_appearance": _row(0.8, [0.78, 0.8, 0.82]),
    }
    text = ct2mr.table("ct2mr", rows)
    assert "| 3 |" in text and "0.800 ± 0.016" in text
    assert "best row without MR labels: e at 0.800 (mean of 3 seeds" in text
    summ = ct2mr.summary({"ct2mr": rows})["ct2mr"]
    assert [k for k, v in summ.items() if v["target_labels_used"]] == ["d_supervised_target"]
    assert summ["e_appearance"]["seeds"] == [0.78, 0.8, 0.82] and summ["a_no_adaptation"]["seeds"] == [0.6]


@pytest.mark.parametrize("source,target", [("ct", "mr"), ("mr", "ct")])
def test_route_configs_are_the_benchmarked_rows_e_and_h(source, target):
    """configs/route_<d>_appearance.yaml trains what rows (e) and (h) measure (up to paths, names and seed)."""
    from adapt.route import _stage_config, load_route
    from weakseg.config import config_to_dict

    d = f"{source}2{target}"
    args = argparse.Namespace(size=128, data_root=Path("/data"), network="encoder_unet", sup_steps=1500,
                              eval_every=250, seed=0, set=[], round_steps=500)  # fmt: skip
    root, stages = load_route(ct2mr.REPO / "configs" / f"route_{d}_appearance.yaml")
    routed = {s.name: _stage_config(s, root) for s in stages}
    init = root / "appearance" / "best.pt"
    bench = {
        "appearance": ct2mr.augmented_cfg(args, ct2mr.domain_cfgs(args)[source], "x", ct2mr.APPEARANCE, 0),
        "self_train": ct2mr.self_train_cfg(args, source, init, "x", 0, ct2mr.APPEARANCE),
    }

    def comparable(cfg) -> dict:
        out = config_to_dict(cfg)
        for section in ("data", "target"):
            if out.get(section):
                out[section]["root"] = None
        out["train"]["name"] = None
        return out

    assert list(routed) == ["appearance", "self_train"]
    for name in routed:
        assert comparable(routed[name]) == comparable(bench[name]), name
