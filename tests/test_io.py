"""Atomic writes: nothing under the final name until the write succeeds; permissions follow umask."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from smmflow.io import atomic_path, read_table, write_json_atomic, write_table


def test_failed_write_leaves_no_file(tmp_path):
    dest = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_old_content(tmp_path):
    dest = tmp_path / "out.json"
    write_json_atomic(dest, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("{broken")
            raise RuntimeError("killed")
    assert dest.read_text().strip().startswith("{")
    assert '"a": 1' in dest.read_text()


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "x.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644


@pytest.mark.parametrize("suffix", [".parquet", ".tsv", ".csv"])
def test_table_round_trip(tmp_path, suffix):
    df = pd.DataFrame({"ligand_id": ["La", "Lb"], "x": [1.5, 2.0], "status": ["ok", "failed"]})
    write_table(df, tmp_path / f"t{suffix}")
    back = read_table(tmp_path / f"t{suffix}")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_unknown_format_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown table format"):
        write_table(pd.DataFrame(), tmp_path / "t.xlsx")
