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

    Lines end at ``\\n`` only (``\\r\\n`` too; a lone ``\\r`` does not start a new line, so line
    numbers match what ``wc -l`` and editors count). Blank lines and lines starting with ``#`` are
    skipped; undecodable bytes become U+FFFD, which :func:`smmflow.chem.enumerate.prepare_parent`
    rejects as invalid characters. A missing file raises FileNotFoundError.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"SMILES file not found: {p}")
    name = source or p.name
    with p.open("rb") as fh:  # binary: iteration splits at b"\\n" only
        for i, raw in enumerate(fh, start=1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text or text.startswith("#"):
                continue
            yield SourceRecord(name, i, text.split()[0])
