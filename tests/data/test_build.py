def test_case_regex_that_matches_nothing_warns(tmp_path):
    import warnings

    import numpy as np

    from weakseg.config import DataConfig
    from weakseg.data import read_records

    from .helpers import write_png

    for name in ("scanA", "scanB"):
        write_png(tmp_path / "images" / f"{name}.png", np.zeros((4, 4), np.uint8))
        write_png(tmp_path / "masks" / f"{name}.png", np.zeros((4, 4), np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_records(DataConfig(source="folder", root=str(tmp_path)))
    assert [r.case_id for r in records] == ["scanA", "scanB"]
    assert any("matches no case id in 2 file name(s)" in str(w.message) for w in caught)


def test_explicit_splits(tmp_path):
    import numpy as np
    import pytest

    from weakseg.config import DataConfig
    from weakseg.data import DataError, build_datasets

    from .helpers import write_png

    for i in range(6):
        write_png(tmp_path / "images" / f"em_{i:02d}.png", np.zeros((4, 4), np.uint8))
        write_png(tmp_path / "masks" / f"em_{i:02d}.png", np.zeros((4, 4), np.uint8))
    cfg = DataConfig(
        source="folder",
        root=str(tmp_path),
        case_regex=r"em_(\d+)",
        num_classes=2,
        class_names=["bg", "fg"],
        splits={"labeled": ["00", "01"], "unlabeled": ["02"], "val": ["05"]},
    )
    ds = build_datasets(cfg)
    assert ds["labeled"].case_ids == ["00", "01"] and ds["unlabeled"].case_ids == ["02"]
    assert ds["val"].case_ids == ["05"] and len(ds["test"]) == 0 and not ds["unlabeled"].labeled
    cfg.splits = {"labeled": ["00"], "val": ["00"]}
    with pytest.raises(DataError, match='case "00" is in both "labeled" and "val"'):
        build_datasets(cfg)
    cfg.splits = {"labeled": ["07"]}
    with pytest.raises(DataError, match='case "07" is not in the data'):
        build_datasets(cfg)
    cfg.splits = {"train": ["00"]}
    with pytest.raises(DataError, match='unknown split "train"'):
        build_datasets(cfg)


def test_extra_labeled_share_mixes_each_epoch(tmp_path):
    import numpy as np
    import pytest

    from weakseg.config import ConfigError, DataConfig, load_config
    from weakseg.data import build_datasets
    from weakseg.data.build import mixed_draws
    from weakseg.engine.streams import BatchStream

    from .helpers import write_png

    for root, names in (
        (tmp_path / "real", ["em_00", "em_01"]),
        (tmp_path / "syn", [f"em_{i}" for i in range(10, 30)]),
    ):
        for name in names:
            write_png(root / "images" / f"{name}.png", np.full((4, 4), int(name[3:]), np.uint8))
            write_png(root / "masks" / f"{name}.png", np.zeros((4, 4), np.uint8))
    cfg = DataConfig(
        source="folder",
        root=str(tmp_path / "real"),
        case_regex=r"em_(\d+)",
        num_classes=2,
        class_names=["bg", "fg"],
        splits={"labeled": ["00", "01"]},
        extra_labeled_roots=[str(tmp_path / "syn")],
    )
    assert build_datasets(cfg)["labeled"].draw_indices is None  # no share: each sample once per epoch
    cfg.extra_labeled_share = 0.5
    labeled = build_datasets(cfg)["labeled"]
    assert len(labeled) == 22 and labeled.draw_indices == mixed_draws(2, 20, 0.5) == [0, 1] * 10 + list(
        range(2, 22)
    )
    stream = BatchStream(labeled, 8, seed=0)
    seen = [int(v) for _ in range(5) for v in next(stream)["image"][:, 0, 0, 0] * 255 + 0.5]
    assert sum(v < 10 for v in seen) == 20  # 5 batches = 40 draws = one epoch: half of them real
    assert mixed_draws(30, 3, 0.5) == list(range(30)) + [30, 31, 32] * 10 and mixed_draws(0, 3, 0.5) is None
    with pytest.raises(ConfigError, match="extra_labeled_share must be a number in"):
        load_config(None, ["data.extra_labeled_share=1.5"])
