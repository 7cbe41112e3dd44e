"""Workflow-stage helpers of the CASSCF stage: stratified selection, job failure handling, labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from smmflow.abinitio import casscf, settings
from smmflow.stages.casscf import (
    aggregate_labels,
    allocate,
    label_cost_estimate,
    label_priority,
    label_row,
    run_job,
    select_subset,
)
from smmflow.tables import LABEL_COLUMNS

COLS = ["xtb_donor_charge", "angle_l_dy_l_deg"]


def fake_proxies(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    classes = np.array(["O", "N", "O-", "N-"])[rng.integers(0, 4, n)]
    df = pd.DataFrame({
        "ligand_id": [f"L{i:016x}" for i in range(n)],
        "smiles": ["O"] * n,
        "ligand_class": classes,
        "complex_charge": [1 if c.endswith("-") else 3 for c in classes],
        "xtb_donor_charge": rng.normal(size=n),
        "angle_l_dy_l_deg": rng.uniform(140, 180, n),
        "complex_xyz": ["x"] * n,
        "status": ["ok"] * (n - 5) + ["failed"] * 5,
    })
    return df


def test_selection_is_deterministic_and_usable_only():
    df = fake_proxies()
    a = select_subset(df, 20, seed=1, columns=COLS)
    b = select_subset(df.sample(frac=1.0, random_state=3), 20, seed=1, columns=COLS)
    assert a.equals(b) and len(a) == 20
    failed = set(df.loc[df.status == "failed", "ligand_id"])
    assert not failed & set(a["ligand_id"])
    assert set(select_subset(df, 20, seed=2, columns=COLS)["ligand_id"]) != set(a["ligand_id"])


def test_selection_covers_every_class_and_grows_monotonically():
    df = fake_proxies()
    small = select_subset(df, 24, seed=5, columns=COLS)
    assert set(small["ligand_class"]) == {"O", "N", "O-", "N-"}
    big = select_subset(df, 48, seed=5, columns=COLS)
    # finished jobs are reused when the subset grows: most small picks remain
    assert len(set(small["ligand_id"]) & set(big["ligand_id"])) >= 0.8 * len(small)


def test_small_budget_labels_a_rare_class():
    """Four labels over four classes: one per class even when a class is rare (the default run's
    budget; a class x bin proportional draw gave the 10 alkoxides of an 80-ligand pool none)."""
    df = fake_proxies(200)
    rare = df[df.ligand_class != "O-"].index[:0].union(df[df.ligand_class == "O-"].index[4:])
    df = df.drop(rare)  # 4 O- of ~150 ligands
    assert (df.ligand_class == "O-").sum() == 4
    for seed in range(5):
        sel = select_subset(df, 4, seed=seed, columns=COLS)
        assert sorted(sel["ligand_class"]) == ["N", "N-", "O", "O-"]


def test_allocate_sums_to_size_and_respects_counts():
    counts = pd.Series({"a": 50, "b": 3, "c": 1})
    for size in (0, 2, 3, 10, 54, 100):
        al = allocate(counts, size)
        assert al.sum() == min(size, 54) and (al <= counts).all()
    assert (allocate(counts, 3) == 1).all()


def test_selection_rejects_missing_columns():
    with pytest.raises(ValueError, match="lacks required columns"):
        select_subset(fake_proxies().drop(columns=["angle_l_dy_l_deg"]), 5, 0, COLS)


def test_bad_geometry_gives_failed_result_not_crash():
    row = {"ligand_id": "Lbad", "smiles": "O", "ligand_class": "O", "complex_charge": 3, "complex_xyz": ""}
    res = run_job(row, settings.CasscfSettings())
    assert res["status"] == "failed" and "complex_xyz" in res["reason"]
    row["complex_xyz"] = "1\n\nO 0 0 0\n"  # no Dy first
    res = run_job(row, settings.CasscfSettings())
    assert res["status"] == "failed" and "Dy" in res["reason"]


def test_failed_proxy_row_gives_its_reason():
    row = {"ligand_id": "Lx", "smiles": "O", "ligand_class": "O", "complex_charge": 3, "complex_xyz": "",
           "status": "failed", "reason": "ligand left Dy during relaxation"}
    res = run_job(row, settings.CasscfSettings())
    assert res["status"] == "failed" and "proxy stage failed: ligand left Dy" in res["reason"]


def test_aggregate_labels_contract(tmp_path):
    ok = {"ligand_id": "L1", "smiles": "[OH-]", "ligand_class": "O-", "tier": "pointcharge", "status": "ok",
          "reason": "", "converged": True, "wall_s": 3.0, "ueff_cm1": 100.0, "easy_axis_angle_deg": 2.0,
          "kd_energies_cm1": list(np.arange(8) * 100.0), "g_principal": [[0.0, 0.0, 19.9]] * 8}
    (tmp_path / "L1.json").write_text(json.dumps(ok))
    (tmp_path / "L2.json").write_text(json.dumps(casscf.failed_result("pointcharge", "not converged")))
    (tmp_path / "L3.json").write_text("{broken")
    df = aggregate_labels(sorted(tmp_path.glob("*.json")))
    assert tuple(df.columns) == LABEL_COLUMNS
    assert list(df["status"]) == ["ok", "failed", "failed"]
    assert df.loc[0, "kd2_cm1"] == 100.0 and df.loc[0, "g1_z"] == pytest.approx(19.9)
    assert np.isnan(df.loc[1, "kd2_cm1"]) and "unreadable" in df.loc[2, "reason"]
    # an 'ok' result without KD energies is demoted
    assert label_row(dict(ok, kd_energies_cm1=None))["status"] == "failed"


def test_label_cost_estimate_counts_basis_functions_of_the_whole_ligand():
    # def2-SVP sizes: C/N/O 14, H 5, S/Cl 18
    assert label_cost_estimate("[O-]C") == 14 + 14 + 3 * 5
    assert label_cost_estimate("OC") == 14 + 14 + 4 * 5
    assert label_cost_estimate("[S-]C") == 18 + 14 + 3 * 5
    assert label_cost_estimate("[O-]C(=CC(C)(C)C)CC") > label_cost_estimate("[O-]N=C(C)C(C)=NO")
    assert label_cost_estimate("not a smiles") == 0
    assert label_cost_estimate(None) == 0


def test_label_priority_reads_the_selection_table(tmp_path):
    sel = tmp_path / "selection.tsv"
    assert label_priority(sel, "La") == 0  # table not built yet (dry run): no preference
    pd.DataFrame({"ligand_id": ["La", "Lb"], "smiles": ["[O-]C", "[O-]CCCC"]}).to_csv(sel, sep="\t", index=False)
    assert label_priority(sel, "Lb") > label_priority(sel, "La") == 43
    assert label_priority(sel, "Lmissing") == 0
