from __future__ import annotations

import csv

import pytest

from weakseg.fileio import atomic_write, atomic_write_bytes, atomic_write_csv, atomic_write_text


def test_atomic_write_bytes_leaves_no_temp_file(tmp_path):
    path = atomic_write_bytes(tmp_path / "sub" / "x.bin", b"abc")
    atomic_write_bytes(path, b"de")
    assert path.read_bytes() == b"de"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.bin"]


def test_failed_write_keeps_previous_file(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "old")

    def broken(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_csv(tmp_path):
    path = atomic_write_csv(tmp_path / "t.csv", [{"a": 1, "b": 2}, {"a": 3}], ["a", "b"])
    assert list(csv.DictReader(path.open())) == [{"a": "1", "b": "2"}, {"a": "3", "b": ""}]
