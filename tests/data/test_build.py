

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
