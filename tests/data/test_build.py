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
