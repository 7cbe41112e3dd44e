"""The pointcharge-tier ladder as a physics proxy: table contract and the merge into the proxy table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from smmflow import tables
from smmflow.stages.casscf import concat_shards
from smmflow.stages.learning import with_physics_proxies


def pc_row(lid: str, status: str = "ok", kd2: float = 300.0) -> dict:
    row = {tables.LIGAND_ID: lid, "status": status, "reason": "" if status == "ok" else "broken", "wall_s": 1.0}
    for i, c in enumerate(tables.POINTCHARGE_PROXY_TARGETS):
        row[c] = kd2 + 100 * i if status == "ok" else np.nan
    return row


def test_physics_proxies_join_ok_rows_only():
    proxies = pd.DataFrame({tables.LIGAND_ID: ["a", "b", "c"], "xtb_donor_charge": [-0.5, -0.4, -0.3]})
    pc = pd.DataFrame([pc_row("a"), pc_row("b", "failed")])
    out = with_physics_proxies(proxies, pc)
    assert list(out[tables.LIGAND_ID]) == ["a", "b", "c"]  # every proxy row kept, in order
    assert out.loc[0, "pc_kd2_cm1"] == 300.0
    assert np.isnan(out.loc[1, "pc_kd2_cm1"]) and np.isnan(out.loc[2, "pc_kd2_cm1"])  # failed / missing: masked
    assert with_physics_proxies(proxies, None) is proxies


def test_concat_shards_sorts_and_keeps_the_contract():
    a = pd.DataFrame([pc_row("z")], columns=list(tables.POINTCHARGE_PROXY_COLUMNS))
    b = pd.DataFrame([pc_row("m")], columns=list(tables.POINTCHARGE_PROXY_COLUMNS))
    out = concat_shards([a, b.iloc[:0], b], tables.POINTCHARGE_PROXY_COLUMNS)
    assert list(out[tables.LIGAND_ID]) == ["m", "z"] and tuple(out.columns) == tables.POINTCHARGE_PROXY_COLUMNS
    assert tuple(concat_shards([], tables.POINTCHARGE_PROXY_COLUMNS).columns) == tables.POINTCHARGE_PROXY_COLUMNS
