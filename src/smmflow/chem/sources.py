"""SMILES source files: one record per line, with its source and line number."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


# ----------------------------------------------------------------------------------------------
# enumeration over many inputs
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceRecord:
    """One input molecule: where it came from (``source``, 1-based ``line``) and its SMILES."""

    source: str
    line: int
    smiles: str


def read_smiles_file(path: str | Path, source: str | None = None) -> Iterator[SourceRecord]:
    """SMILES records of a ``.smi`` file: first whitespace-separated token of each line.

    Blank lines and lines starting with ``#`` are skipped; undecodable bytes are replaced (the
    line is then rejected as invalid SMILES downstream). A missing file raises FileNotFoundError.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"SMILES file not found: {p}")
    name = source or p.name
    with p.open(encoding="utf-8", errors="replace") as fh:
        for i, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            yield SourceRecord(name, i, text.split()[0])
