"""Label-map statistics on a hand-made map, the distance of identical and different sets."""

from __future__ import annotations

import numpy as np
import pytest

from gans.labelstats import label_map_stats, stat_distance


def test_stats_of_a_hand_made_map():
    m = np.zeros((8, 8), np.int64)
    m[0:2, 0:2] = 1  # a 2x2 blob: 4 pixels, all on its border
    m[5:8, 5:8] = 1  # a 3x3 blob: 9 pixels, 8 on its border
    m[0:4, 6] = 2  # a thin line of 4 pixels: all border
    stats = label_map_stats(m[None], 3)
    assert stats["frequency"] == pytest.approx([13 / 64, 4 / 64])
    assert stats["components"] == pytest.approx([2.0, 1.0])
    assert stats["boundary"] == pytest.approx([12 / 13, 1.0])


def test_distance_zero_for_the_same_and_positive_otherwise():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 3, (4, 16, 16))
    same = label_map_stats(maps, 3)
    assert stat_distance(same, same) == 0.0
    empty = label_map_stats(np.zeros((4, 16, 16), np.int64), 3)
    assert stat_distance(empty, same) > 0.5
    with pytest.raises(ValueError, match="needs label maps"):
        label_map_stats(np.zeros((4, 4)), 3)


def test_dual_gan_checkpoint_selected_by_label_statistics(tiny_cfg_path, tmp_path):
    import json

    from weakseg.config import load_config
    from weakseg.engine.trainer import Trainer

    params = "{num_downs: 5, ngf: 8, ndf: 8, label_size: 32, label_ngf: 8, label_ndf: 8, z_dim: 16}"
    cfg = load_config(tiny_cfg_path, ["method.name=dual_gan", f"method.params={params}", "train.max_steps=2",
                                      "train.eval_every=1", "train.key_metric=label_stat_distance",
                                      "train.key_mode=min", "train.save_pictures=false"])  # fmt: skip
    result = Trainer(cfg, run_dir=tmp_path / "r").fit()
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    values = [r["label_stat_distance"] for r in rows if r["split"] == "val"]
    assert len(values) == 2 and all(v >= 0 for v in values)
    assert result["best_label_stat_distance"] == min(values) and (tmp_path / "r" / "best.pt").is_file()
