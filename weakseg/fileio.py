"""Atomic file writes: everything weakseg writes goes to a temp file beside the target, then ``os.replace``.

A crash or a full disk mid-write leaves the previous file intact, never half a file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_csv",
    "atomic_write_text",
    "remove_stale_temp_files",
]

_UMASK = os.umask(0o022)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a binary temp file in ``path``'s folder, fsync it, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file open()'s usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files ``atomic_write`` leaves when a process is killed mid-write (``.NAME.XXXX.tmp``)
    in ``folder``; call it only when nothing else writes there (a run being resumed). Returns what went."""
    folder = Path(folder)
    gone = [p for p in folder.glob(".*.tmp") if p.is_file()] if folder.is_dir() else []
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: str | os.PathLike[str], rows: list[dict], fields: list[str]) -> Path:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def check_dataset_output(output_dir: Path, overwrite: bool, flag: str) -> None:
    """A dataset may be written to ``output_dir`` (``flag``: the option that named it, for the message):
    it does not exist, or ``overwrite`` is set and it is a weakseg dataset (it has a manifest.json)."""
    if output_dir.exists() and not overwrite:
        raise FileExistsError(
            f"{output_dir} exists; nothing was written. Pass --overwrite or choose another {flag}"
        )
    if output_dir.exists() and not (output_dir / "manifest.json").is_file():
        raise FileExistsError(
            f"--overwrite refuses to replace {output_dir}: it is not a dataset written by weakseg (no "
            f"manifest.json); choose another {flag}"
        )


@contextlib.contextmanager
def atomic_dataset_dir(output_dir: Path) -> Iterator[Path]:
    """Build a dataset in a hidden temp folder beside ``output_dir`` (write its manifest last); on success it
    replaces ``output_dir`` in one rename, on any failure it is removed: a half-written dataset never appears."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        yield tmp
        if output_dir.exists():  # overwrite: replaced only once the new dataset is complete
            shutil.rmtree(output_dir)
        tmp.rename(output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
