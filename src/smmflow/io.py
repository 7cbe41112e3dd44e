"""Atomic file writes and table I/O.

Every output is written to a temporary file in the destination directory and moved into place
with :func:`os.replace`, so a killed job never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)!r}")


TABLE_SUFFIXES: tuple[str, ...] = (".parquet", ".tsv", ".csv")


def check_table_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if its suffix names a table format; ValueError (one line) otherwise, before any work."""
    p = Path(path)
    if p.suffix not in TABLE_SUFFIXES:
        raise ValueError(f"unknown table format for {p} (use {', '.join(TABLE_SUFFIXES)})")
    return p


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a table atomically; the format follows the suffix (.parquet, .tsv, .csv)."""
    p = check_table_path(path)
    with atomic_path(p) as tmp:
        if p.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif p.suffix == ".tsv":
            df.to_csv(tmp, sep="\t", index=False)
        elif p.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            raise ValueError(f"unknown table format for {p} (use .parquet, .tsv or .csv)")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    p = Path(path)
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix == ".tsv":
        return pd.read_csv(p, sep="\t", keep_default_na=False, na_values=[""])
    if p.suffix == ".csv":
        return pd.read_csv(p)
    raise ValueError(f"unknown table format for {p}")


def read_tables(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> pd.DataFrame | None:
    """One table from one path or the row-wise concatenation of several (None for no path)."""
    if paths is None or (isinstance(paths, (list, tuple)) and not paths) or paths == "":
        return None
    if isinstance(paths, (str, os.PathLike)):
        return read_table(paths)
    return pd.concat([read_table(p) for p in paths], ignore_index=True)
