"""Re-validation of generated ligands: selection, baseline, hit rates, ligand space, report figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from smmflow import tables
from smmflow.chem.donors import ligand_id
from smmflow.chem.enumerate import LigandFilters, ligand_space_reason
from smmflow.ml.generation_metrics import generation_metrics
from smmflow.stages import report
from smmflow.stages.revalidation import (
    hit_threshold,
    revalidation_metrics,
    revalidation_proxies,
    revalidation_table,
    select_for_revalidation,
)

POOL_SMILES = ["OCC=C", "[O-]C(C)=O", "O=C(C)C", "N#CC", "[O-]c1ccccc1", "OC1CC1", "NCC", "[NH-]C(=O)C=C"]


def _pool() -> pd.DataFrame:
    from smmflow.chem.conformers import ligand_class_of

    return pd.DataFrame({tables.LIGAND_ID: [ligand_id(s) for s in POOL_SMILES], "smiles": POOL_SMILES,
                         "ligand_class": [ligand_class_of(s) for s in POOL_SMILES]})


def _candidates() -> pd.DataFrame:
    rows = [  # smiles, novel, pred, status
        ("[O-]N=C(C)C", True, 400.0, "ok"),
        ("OCC=C", False, 390.0, "ok"),          # in the pool: not novel
        ("[O-]C=CC#N", True, 380.0, "ok"),
        ("O=CC=CO", True, 370.0, "ok"),
        ("O=O", True, np.nan, "failed"),
        ("[O-]CC(F)(F)F", True, 300.0, "ok"),
    ]
    df = pd.DataFrame(rows, columns=["smiles", "novel", "pred_kd2_cm1", "status"])
    df[tables.LIGAND_ID] = [ligand_id(s) for s in df["smiles"]]
    df["ligand_class"] = ["O-", "O", "O-", "O", "O", "O-"]
    df["pred_kd2_std_cm1"] = 10.0
    df["strategy"] = "prior"
    df["reason"] = ""
    df["rank"] = df["pred_kd2_cm1"].rank(ascending=False)
    return df


def _labels(ids_kd: dict[str, float | None]) -> pd.DataFrame:
    rows = []
    for lid, kd in ids_kd.items():
        ok = kd is not None
        rows.append({tables.LIGAND_ID: lid, "status": "ok" if ok else "failed", "reason": "" if ok else "CasscfFailure: x",
                     tables.FIRST_EXCITED_KD: kd if ok else np.nan})
    return pd.DataFrame(rows)


def test_selection_takes_best_novel_unlabelled_and_a_disjoint_baseline():
    cand = _candidates()
    labelled = _labels({ligand_id("[O-]C=CC#N"): 100.0, ligand_id("NCC"): 20.0})
    sel = select_for_revalidation(cand, _pool(), [labelled], top_k=2, baseline_k=3, seed=1)
    assert list(sel.columns) == list(tables.REVALIDATION_SELECTION_COLUMNS)
    gen = sel[sel["source"] == "generated"]
    # best novel + unlabelled + ok, in rank order: not the pool ligand, not the labelled one, not the failed one
    assert gen["smiles"].tolist() == ["[O-]N=C(C)C", "O=CC=CO"]
    base = sel[sel["source"] == "baseline"]
    assert len(base) == 3
    assert not set(base[tables.LIGAND_ID]) & (set(gen[tables.LIGAND_ID]) | set(labelled[tables.LIGAND_ID]))
    assert set(base["smiles"]) <= set(POOL_SMILES)


def test_baseline_draw_is_seeded():
    args = (_candidates(), _pool(), [], 1, 4)
    a = select_for_revalidation(*args, seed=7)
    b = select_for_revalidation(*args, seed=7)
    pd.testing.assert_frame_equal(a, b)
    draws = {tuple(select_for_revalidation(*args, seed=s)["smiles"]) for s in range(6)}
    assert len(draws) > 1


def test_baseline_gets_model_predictions():
    sel = select_for_revalidation(_candidates(), _pool(), [], 1, 2, seed=0,
                                  predict=lambda smi, cls: (np.full(len(smi), 42.0), np.full(len(smi), 3.0)))
    base = sel[sel["source"] == "baseline"]
    assert (base["pred_kd2_cm1"] == 42.0).all() and (base["pred_kd2_std_cm1"] == 3.0).all()


def test_selection_rejects_bad_input():
    with pytest.raises(ValueError, match="lacks required columns"):
        select_for_revalidation(pd.DataFrame({"smiles": ["O"]}), _pool(), [], 1, 1, 0)
    with pytest.raises(ValueError, match=">= 0"):
        select_for_revalidation(_candidates(), _pool(), [], -1, 1, 0)


def test_revalidation_proxies_reuse_pool_rows():
    sel = select_for_revalidation(_candidates(), _pool(), [], 1, 2, seed=3)
    base_ids = set(sel.loc[sel["source"] == "baseline", tables.LIGAND_ID])
    pool_px = pd.DataFrame({tables.LIGAND_ID: sorted(base_ids), "smiles": "x", "status": "ok", "reason": ""})
    computed = []

    def compute(row):
        computed.append(row[tables.LIGAND_ID])
        return {tables.LIGAND_ID: row[tables.LIGAND_ID], "smiles": row["smiles"], "status": "failed", "reason": "r"}

    px = revalidation_proxies(sel, pool_px, compute)
    assert computed == sel.loc[sel["source"] == "generated", tables.LIGAND_ID].tolist()
    assert list(px.columns) == list(tables.PROXY_COLUMNS)
    assert px[tables.LIGAND_ID].tolist() == sel[tables.LIGAND_ID].tolist()


def test_hit_threshold_is_the_quantile_of_usable_labels():
    lab = _labels({f"L{i}": float(i) for i in range(1, 11)} | {"Lbad": None})
    assert hit_threshold(lab, 0.9) == pytest.approx(np.quantile(np.arange(1, 11), 0.9))
    assert hit_threshold(lab, 0.9, threshold_cm1=123.0) == 123.0
    with pytest.raises(ValueError, match="threshold"):
        hit_threshold(_labels({"Lbad": None}), 0.9)


def test_table_and_metrics_count_failures_as_misses():
    sel = pd.DataFrame({tables.LIGAND_ID: ["G1", "G2", "G3", "B1", "B2"], "smiles": list("abcde"),
                        "ligand_class": "O", "source": ["generated"] * 3 + ["baseline"] * 2, "strategy": "x",
                        "pred_kd2_cm1": [300.0, 250.0, 280.0, 50.0, np.nan], "pred_kd2_std_cm1": 5.0})
    lab = _labels({"G1": 320.0, "G2": 150.0, "G3": None, "B1": 260.0})
    table = revalidation_table(sel, lab, threshold_cm1=200.0)
    assert list(table.columns) == list(tables.REVALIDATION_COLUMNS)
    assert table["hit"].tolist() == [True, False, False, True, False]
    assert table.loc[2, "status"] == "failed" and "CasscfFailure" in table.loc[2, "reason"]
    assert table.loc[4, "reason"] == "no CASSCF result"
    m = revalidation_metrics(table, 200.0)
    g, b = m["generated"], m["baseline"]
    assert (g["n"], g["n_ok"], g["n_hits"]) == (3, 2, 1)
    assert g["hit_rate"] == pytest.approx(1 / 3) and g["hit_rate_computed"] == pytest.approx(0.5)
    assert g["mae_cm1"] == pytest.approx((20 + 100) / 2)
    assert b["hit_rate"] == pytest.approx(0.5) and b["mae_cm1"] == pytest.approx(210.0)
    assert m["improvement_ratio"] == pytest.approx((1 / 3) / 0.5)
    json.dumps(m)  # JSON-ready
    m0 = revalidation_metrics(revalidation_table(sel, _labels({"G1": 320.0}), 400.0), 400.0)
    assert m0["improvement_ratio"] is None  # no baseline hit: no ratio, not a division by zero
    assert m0["improvement_ratio_add_one"] == pytest.approx((0 + 1) / (3 + 2) / ((0 + 1) / (2 + 2)))
    assert m["improvement_ratio_add_one"] == pytest.approx((2 / 5) / (2 / 4))


@pytest.mark.parametrize("smiles, inside", [
    ("O=O", False),               # O-O bond
    ("[N-]=O", False),            # nitroso
    ("NC(=O)C", False),           # amide N is not a donor site by default
    ("OC(F)C", False),            # HF elimination
    ("[O-]C(=O)C", True),
    ("[O-]N=C(C)C(C)=NO", True),
    ("N#CC", True),
    ("[O-]CCCCCCCCCC", False),    # 11 heavy atoms > 9
])
def test_ligand_space(smiles, inside):
    why = ligand_space_reason(smiles, LigandFilters())
    assert (why is None) == inside, why


def test_generation_metrics_count_out_of_space_as_valid_but_not_in_space():
    df = pd.DataFrame({"smiles": ["[O-]C(=O)C", "O=O", "O=O", "xx"], "strategy": "prior", "novel": [True, None, None, None],
                       "status": ["ok", "failed", "failed", "failed"], "pred_kd2_cm1": [1.0, np.nan, np.nan, np.nan],
                       "reason": ["", "outside the ligand space: unstable: O-O bond", "duplicate", "RDKit cannot parse it"]})
    m = generation_metrics(df, ["CCO"], seed=0, compute_fcd=False)
    assert m["validity"] == pytest.approx(3 / 4)
    assert m["uniqueness"] == pytest.approx(2 / 3)
    assert m["in_ligand_space"] == pytest.approx(1 / 2)
    assert m["novelty"] == 1.0
    assert m["outside_ligand_space_reasons"] == {"unstable: O-O bond": 1}


def test_report_figures_are_written(tmp_path):
    sel = pd.DataFrame({tables.LIGAND_ID: ["G1", "B1"], "smiles": ["[O-]C(=O)C", "N#CC"], "ligand_class": ["O-", "N"],
                        "source": ["generated", "baseline"], "strategy": "x", "pred_kd2_cm1": [300.0, 50.0],
                        "pred_kd2_std_cm1": 5.0})
    table = revalidation_table(sel, _labels({"G1": 320.0, "B1": 40.0}), 200.0)
    table.to_csv(tmp_path / "r0.tsv", sep="\t", index=False)
    (tmp_path / "m0.json").write_text(json.dumps(revalidation_metrics(table, 200.0)))
    reval = report.revalidation_by_round([tmp_path / "r0.tsv"])
    summary = report.rounds_summary([tmp_path / "m0.json"])
    assert summary.loc[0, "generated_n_hits"] == 1 and summary.loc[0, "baseline_n_hits"] == 0
    report.plot_parity(reval, tmp_path / "parity.png", 200.0)
    report.plot_hit_rate(summary, tmp_path / "hits.png")
    rng = np.random.default_rng(0)
    report.plot_latent_space(rng.normal(size=(10, 4)), np.r_[rng.uniform(0, 300, 4), np.full(6, np.nan)],
                             np.arange(10) < 2, tmp_path / "latent.png")
    labels = pd.DataFrame([{tables.LIGAND_ID: "G1", "smiles": "[O-]C(=O)C", "ligand_class": "O-", "status": "ok",
                            **{c: float(i) * 100 for i, c in enumerate(tables.KD_COLUMNS)},
                            **{c: 1.0 for c in tables.G_COLUMNS}}])
    report.plot_kd_ladders(report.best_labelled(labels, 4), tmp_path / "ladders.png")
    report.draw_ligand_grid(["[O-]C(=O)C", "N#CC"], ["a", "b"], tmp_path / "grid.png")
    for name in ("parity", "hits", "latent", "ladders", "grid"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, name


def test_kd_ladder_labels_are_spread_but_stay_near_their_levels():
    ys = [0.0, 530.0, 890.0, 1085.0, 1096.0, 1118.0, 1148.0, 1152.0]
    gap = 0.045 * 1152.0
    pos = report.spread_labels(ys, gap)
    order = np.argsort(ys)
    assert (np.diff(pos[order]) >= gap - 1e-6).all()  # no two labels closer than the gap
    assert np.abs(pos - np.asarray(ys)).max() < 4 * gap  # each label stays near its level
    assert np.allclose(report.spread_labels([0.0, 500.0], gap), [0.0, 500.0])  # far levels untouched


def test_report_tables_are_readable_html(tmp_path):
    df = pd.DataFrame({"round": [0, 1], "generated_hit_rate": [0.75, 1.0], "smiles": ["[O-]C<C", "OC"]})
    path = tmp_path / "rounds.html"
    report.write_html_table(df, path, "Re-validation per round")
    text = path.read_text()
    assert "<table" in text and "generated_hit_rate" in text and "0.75" in text
    assert "[O-]C&lt;C" in text  # escaped
