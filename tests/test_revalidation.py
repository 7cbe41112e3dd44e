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
    pooled_comparison,
    pooled_verdict,
    revalidation_metrics,
    revalidation_proxies,
    revalidation_table,
    select_for_revalidation,
)

POOL_SMILES = ["OCC=C", "[O-]C(C)=O", "O=C(C)C", "N#CC", "[O-]c1ccccc1", "OC1CC1", "NCC", "[NH-]C(=O)C=C"]


def _pool() -> pd.DataFrame:
    from smmflow.chem.conformers import ligand_class_of

    return pd.DataFrame(
        {
            tables.LIGAND_ID: [ligand_id(s) for s in POOL_SMILES],
            "smiles": POOL_SMILES,
            "ligand_class": [ligand_class_of(s) for s in POOL_SMILES],
        }
    )


def _candidates() -> pd.DataFrame:
    rows = [  # smiles, novel, pred, status
        ("[O-]N=C(C)C", True, 400.0, "ok"),
        ("OCC=C", False, 390.0, "ok"),  # in the pool: not novel
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
        rows.append(
            {
                tables.LIGAND_ID: lid,
                "status": "ok" if ok else "failed",
                "reason": "" if ok else "CasscfFailure: x",
                tables.FIRST_EXCITED_KD: kd if ok else np.nan,
            }
        )
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
    sel = select_for_revalidation(
        _candidates(),
        _pool(),
        [],
        1,
        2,
        seed=0,
        predict=lambda smi, cls: (np.full(len(smi), 42.0), np.full(len(smi), 3.0)),
    )
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
    sel = pd.DataFrame(
        {
            tables.LIGAND_ID: ["G1", "G2", "G3", "B1", "B2"],
            "smiles": list("abcde"),
            "ligand_class": "O",
            "source": ["generated"] * 3 + ["baseline"] * 2,
            "strategy": "x",
            "pred_kd2_cm1": [300.0, 250.0, 280.0, 50.0, np.nan],
            "pred_kd2_std_cm1": 5.0,
        }
    )
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


@pytest.mark.parametrize(
    "smiles, inside",
    [
        ("O=O", False),  # O-O bond
        ("[N-]=O", False),  # nitroso
        ("NC(=O)C", False),  # amide N is not a donor site by default
        ("OC(F)C", False),  # HF elimination
        ("[O-]C(=O)C", True),
        ("[O-]N=C(C)C(C)=NO", True),
        ("N#CC", True),
        ("[O-]CCCCCCCCCC", False),  # 11 heavy atoms > 9
    ],
)
def test_ligand_space(smiles, inside):
    why = ligand_space_reason(smiles, LigandFilters())
    assert (why is None) == inside, why


def test_generation_metrics_count_out_of_space_as_valid_but_not_in_space():
    df = pd.DataFrame(
        {
            "smiles": ["[O-]C(=O)C", "O=O", "O=O", "xx"],
            "strategy": "prior",
            "novel": [True, None, None, None],
            "status": ["ok", "failed", "failed", "failed"],
            "pred_kd2_cm1": [1.0, np.nan, np.nan, np.nan],
            "reason": ["", "outside the ligand space: unstable: O-O bond", "duplicate", "RDKit cannot parse it"],
        }
    )
    m = generation_metrics(df, ["CCO"], seed=0, compute_fcd=False)
    assert m["validity"] == pytest.approx(3 / 4)
    assert m["uniqueness"] == pytest.approx(2 / 3)
    assert m["in_ligand_space"] == pytest.approx(1 / 2)
    assert m["novelty"] == 1.0
    assert m["outside_ligand_space_reasons"] == {"unstable: O-O bond": 1}


def test_report_figures_are_written(tmp_path):
    sel = pd.DataFrame(
        {
            tables.LIGAND_ID: ["G1", "B1"],
            "smiles": ["[O-]C(=O)C", "N#CC"],
            "ligand_class": ["O-", "N"],
            "source": ["generated", "baseline"],
            "strategy": "x",
            "pred_kd2_cm1": [300.0, 50.0],
            "pred_kd2_std_cm1": 5.0,
        }
    )
    table = revalidation_table(sel, _labels({"G1": 320.0, "B1": 40.0}), 200.0)
    table.to_csv(tmp_path / "r0.tsv", sep="\t", index=False)
    (tmp_path / "m0.json").write_text(json.dumps(revalidation_metrics(table, 200.0)))
    reval = report.revalidation_by_round([tmp_path / "r0.tsv"])
    summary = report.rounds_summary([tmp_path / "m0.json"])
    assert summary.loc[0, "generated_n_hits"] == 1 and summary.loc[0, "baseline_n_hits"] == 0
    report.plot_parity(reval, tmp_path / "parity.png", 200.0)
    report.plot_hit_rate(summary, tmp_path / "hits.png")
    rng = np.random.default_rng(0)
    report.plot_latent_space(
        rng.normal(size=(10, 4)),
        np.r_[rng.uniform(0, 300, 4), np.full(6, np.nan)],
        np.arange(10) < 2,
        tmp_path / "latent.png",
    )
    labels = pd.DataFrame(
        [
            {
                tables.LIGAND_ID: "G1",
                "smiles": "[O-]C(=O)C",
                "ligand_class": "O-",
                "status": "ok",
                **{c: float(i) * 100 for i, c in enumerate(tables.KD_COLUMNS)},
                **{c: 1.0 for c in tables.G_COLUMNS},
            }
        ]
    )
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


# --- baselines (issue 15) -------------------------------------------------------------------------
BIG_POOL = [  # 6 O-, 4 N, 4 O, 2 N- (with a strained O- cage among them)
    "[O-]C",
    "[O-]CC",
    "[O-]CCC",
    "[O-]C(C)C",
    "[O-]CC1CC1",
    "[O-]C1C2CC12",
    "N#CC",
    "NCC",
    "NC(C)C",
    "n1ccccc1",
    "OCC",
    "OC(C)C",
    "O=C(C)C",
    "OCCC",
    "[NH-]C",
    "[NH-]CC",
]


def _big_pool() -> pd.DataFrame:
    from smmflow.chem.conformers import ligand_class_of

    return pd.DataFrame(
        {
            tables.LIGAND_ID: [ligand_id(s) for s in BIG_POOL],
            "smiles": BIG_POOL,
            "ligand_class": [ligand_class_of(s) for s in BIG_POOL],
        }
    )


def _predict_by_size(smiles, classes):
    """A fake round model: KD2 grows with the SMILES length, anions score high; std = 10 % of the mean."""
    mean = np.array([10.0 * len(s) + (300.0 if "-" in c else 0.0) for s, c in zip(smiles, classes)])
    return mean, 0.1 * mean


def test_class_quotas_follow_the_generated_mix():
    from smmflow.stages.revalidation import class_quotas

    assert class_quotas(["O-"] * 8, 8) == {"O-": 8}
    assert class_quotas(["O-", "O-", "O-", "N"], 4) == {"N": 1, "O-": 3}
    q = class_quotas(["O-", "O-", "N", "O"], 3)  # 1.5 / 0.75 / 0.75: largest remainders, then class order
    assert sum(q.values()) == 3 and q["O-"] == 1 and q == {"O": 1, "N": 1, "O-": 1}
    assert class_quotas([], 5) == {} and class_quotas(["O"], 0) == {}


def test_every_baseline_is_selected_with_its_own_rule():
    cand = _candidates()  # generated top-2: [O-]N=C(C)C (O-), O=CC=CO (O)
    labelled = _labels({ligand_id("[O-]CCC"): 250.0, ligand_id("NCC"): 20.0, ligand_id("[O-]C=CC#N"): 100.0})
    sel = select_for_revalidation(
        cand,
        _big_pool(),
        [labelled],
        top_k=2,
        baseline_k=4,
        seed=3,
        predict=_predict_by_size,
        baselines=["random", "class_matched", "surrogate_screen"],
        ring_strain_guard=True,
    )
    assert list(sel.columns) == list(tables.REVALIDATION_SELECTION_COLUMNS)
    assert (
        sel["source"].tolist()
        == ["generated"] * 2 + ["baseline"] * 4 + ["class_matched"] * 4 + ["surrogate_screen"] * 4
    )
    gen_ids = set(sel.loc[sel["source"] == "generated", tables.LIGAND_ID])
    for src, g in sel[sel["source"] != "generated"].groupby("source"):
        assert g[tables.LIGAND_ID].is_unique, src
        assert not set(g[tables.LIGAND_ID]) & (gen_ids | set(labelled[tables.LIGAND_ID])), src
        assert g["pred_kd2_cm1"].notna().all(), src  # every baseline pick carries the model's prediction
    cm = sel[sel["source"] == "class_matched"]
    assert sorted(cm["ligand_class"]) == ["O", "O", "O-", "O-"]  # the generated mix (1 O-, 1 O) scaled to 4
    scr = sel[sel["source"] == "surrogate_screen"]
    # the best unlabelled pool ligands by the fake model, the strained cage [O-]C1C2CC12 skipped by the guard
    assert scr["smiles"].tolist() == ["[O-]CC1CC1", "[O-]C(C)C", "[NH-]CC", "[O-]CC"]
    assert set(scr["strategy"]) == {"surrogate_screen"}


def test_surrogate_screen_uses_the_acquisition_and_the_diversity_constraint():
    from smmflow.stages.revalidation import surrogate_screen

    pool = _big_pool()
    greedy = surrogate_screen(pool, 3, set(), _predict_by_size)
    assert greedy["smiles"].tolist() == ["[O-]C1C2CC12", "[O-]CC1CC1", "[O-]C(C)C"]  # no guard: the cage is first

    def flat_mean(smiles, classes):  # equal means, the spread decides under ucb
        return np.full(len(smiles), 100.0), np.array([float(len(s)) for s in smiles])

    ucb = surrogate_screen(pool, 1, set(), flat_mean, {"method": "ucb", "kappa": 2.0})
    assert ucb["smiles"].tolist() == ["[O-]C1C2CC12"]  # longest SMILES = largest spread
    diverse = surrogate_screen(pool, 3, set(), _predict_by_size, max_tanimoto=0.3)
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    fpg = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [fpg.GetFingerprint(Chem.MolFromSmiles(s)) for s in diverse["smiles"]]
    assert len(fps) == 3
    assert max(DataStructs.TanimotoSimilarity(a, b) for i, a in enumerate(fps) for b in fps[:i]) <= 0.3
    assert surrogate_screen(pool, 3, set(), None).empty  # no model: nothing to screen


def test_class_matched_and_random_draws_are_seeded_and_independent():
    args = (_candidates(), _big_pool(), [], 2, 3)
    kw = {"baselines": ["random", "class_matched"]}
    a = select_for_revalidation(*args, seed=5, **kw)
    pd.testing.assert_frame_equal(a, select_for_revalidation(*args, seed=5, **kw))
    # adding a baseline leaves the random draw as it was
    alone = select_for_revalidation(*args, seed=5)
    pd.testing.assert_frame_equal(
        a[a["source"] == "baseline"].reset_index(drop=True), alone[alone["source"] == "baseline"].reset_index(drop=True)
    )
    draws = {
        tuple(select_for_revalidation(*args, seed=s, **kw).query("source == 'class_matched'")["smiles"])
        for s in range(6)
    }
    assert len(draws) > 1
    with pytest.raises(ValueError, match="unknown baselines"):
        select_for_revalidation(*args, seed=5, baselines=["pool_top"])


def test_generated_picks_respect_max_tanimoto():
    from smmflow.stages.revalidation import top_generated

    rows = [("[O-]CCCC", 1), ("[O-]CCCCC", 2), ("N#CC", 3), ("[O-]CCCCCC", 4)]
    cand = pd.DataFrame({"smiles": [s for s, _ in rows], "rank": [float(r) for _, r in rows]})
    cand[tables.LIGAND_ID] = [ligand_id(s) for s in cand["smiles"]]
    cand = cand.assign(status="ok", novel=True, pred_kd2_cm1=1.0)
    assert top_generated(cand, 2, set())["smiles"].tolist() == ["[O-]CCCC", "[O-]CCCCC"]
    assert top_generated(cand, 2, set(), max_tanimoto=0.5)["smiles"].tolist() == ["[O-]CCCC", "N#CC"]


def _method_table() -> pd.DataFrame:
    """generated: 3 ok (hits 2); random: 2 ok (no hit); class_matched: 1 hit of 2; screen: best single ligand."""
    rows = [  # id, source, class, pred, computed (None = failed)
        ("G1", "generated", "O-", 400.0, 320.0),
        ("G2", "generated", "O-", 350.0, 300.0),
        ("G3", "generated", "O-", 300.0, 150.0),
        ("G4", "generated", "O", 100.0, None),
        ("B1", "baseline", "O", 50.0, 40.0),
        ("B2", "baseline", "N", 60.0, 30.0),
        ("C1", "class_matched", "O-", 250.0, 260.0),
        ("C2", "class_matched", "O-", 240.0, 120.0),
        ("S1", "surrogate_screen", "O-", 420.0, 390.0),
        ("S2", "surrogate_screen", "O-", 410.0, 100.0),
        ("B2", "class_matched", "N", 60.0, 30.0),  # picked by two baselines
    ]
    sel = pd.DataFrame(
        [
            {
                tables.LIGAND_ID: i,
                "smiles": f"[O-]{i}",
                "ligand_class": c,
                "source": s,
                "strategy": s,
                "pred_kd2_cm1": p,
                "pred_kd2_std_cm1": 5.0,
            }
            for i, s, c, p, _ in rows
        ]
    )
    lab = _labels({i: kd for i, _, _, _, kd in rows})
    return revalidation_table(sel, lab, threshold_cm1=200.0)


def test_metrics_per_method_winners_and_strongest_baseline():
    table = _method_table()
    m = revalidation_metrics(table, 200.0, ["generated", "baseline", "class_matched", "surrogate_screen"])
    json.dumps(m)
    assert m["methods"] == ["generated", "baseline", "class_matched", "surrogate_screen"]
    for key in (
        "n",
        "n_ok",
        "n_hits",
        "hit_rate",
        "median_kd2_cm1",
        "mean_kd2_cm1",
        "max_kd2_cm1",
        "mae_cm1",
        "spearman",
    ):
        assert all(key in m[s] for s in m["methods"]), key
    g = m["generated"]
    assert (g["n"], g["n_ok"], g["n_hits"]) == (4, 3, 2)
    assert g["mean_kd2_cm1"] == pytest.approx((320 + 300 + 150) / 3)
    assert g["spearman"] == pytest.approx(1.0)  # predicted order = computed order within the top-K
    assert m["class_matched"]["n"] == 3 and m["class_matched"]["n_hits"] == 1
    assert m["winner_mean_kd2"] == "generated"  # 256.7 vs 245 (screen), 136.7 (class_matched), 35 (random)
    assert m["winner_best_found"] == "surrogate_screen"  # 390 cm-1
    # add-one hit rates: random 1/4, class_matched 2/5, screen 2/4 -> the screen is the strongest baseline
    assert m["strongest_baseline"] == "surrogate_screen"
    assert m["improvement_ratio"] == pytest.approx((2 / 4) / (1 / 2))
    assert m["improvement_ratio_add_one"] == pytest.approx((3 / 6) / (2 / 4))
    assert m["improvement_ratio_add_one_by_baseline"]["baseline"] == pytest.approx((3 / 6) / (1 / 4))
    # ranking over the round's distinct ligands, per class; too few pairs give None, not a number
    assert m["ranking"]["n"] == 9
    assert m["ranking"]["by_class"]["N"]["spearman"] is None
    assert m["ranking"]["by_class"]["O-"]["n"] == 7


def test_metrics_of_a_configured_baseline_without_picks_and_without_baselines():
    table = _method_table()
    table = table[table["source"] != "surrogate_screen"]
    m = revalidation_metrics(table, 200.0, ["generated", "baseline", "surrogate_screen"])
    assert m["surrogate_screen"]["n"] == 0 and m["surrogate_screen"]["mean_kd2_cm1"] is None
    assert m["strongest_baseline"] == "baseline"
    m1 = revalidation_metrics(table[table["source"] == "generated"], 200.0)
    assert m1["methods"] == ["generated"] and m1["strongest_baseline"] is None and m1["improvement_ratio"] is None


def test_spearman_within_the_top_k_can_be_negative():
    from smmflow.stages.revalidation import spearman

    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, 2, np.nan, 3], [1, 2, 5, 3]) == pytest.approx(1.0)


def test_revalidation_proxies_compute_a_ligand_of_two_baselines_once():
    sel = select_for_revalidation(_candidates(), _big_pool(), [], 1, 16, seed=0, baselines=["random", "class_matched"])
    assert sel[tables.LIGAND_ID].duplicated().any()  # the pool is exhausted: both draws share ligands
    computed = []

    def compute(row):
        computed.append(row[tables.LIGAND_ID])
        return {tables.LIGAND_ID: row[tables.LIGAND_ID], "status": "failed", "reason": "r"}

    px = revalidation_proxies(sel, None, compute)
    assert px[tables.LIGAND_ID].is_unique and len(computed) == len(set(computed)) == sel[tables.LIGAND_ID].nunique()


def test_report_summaries_name_every_method(tmp_path):
    table = _method_table()
    path = tmp_path / "m0.json"
    path.write_text(json.dumps(revalidation_metrics(table, 200.0)))
    summary = report.rounds_summary([path])
    assert summary.loc[0, "winner_best_found"] == "surrogate_screen"
    assert summary.loc[0, "class_matched_n_hits"] == 1 and summary.loc[0, "surrogate_screen_max_kd2_cm1"] == 390.0
    long = report.methods_summary([path])
    assert long["method"].tolist() == ["generated", "baseline", "class_matched", "surrogate_screen"]
    assert long.set_index("method").loc["surrogate_screen", "wins"] == "best found"
    report.plot_hit_rate(summary, tmp_path / "hits.png")
    table.to_csv(tmp_path / "r0.tsv", sep="\t", index=False)
    report.plot_parity(report.revalidation_by_round([tmp_path / "r0.tsv"]), tmp_path / "parity.png", 200.0)
    for name in ("hits", "parity"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_pool_that_loses_one_ligand_changes_the_draws_by_at_most_that_ligand():
    """The draws rank ligands by a seeded hash of their own id: a pool that differs by one ligand
    (one failed relaxation on a loaded machine) does not shift every other pick."""
    kw = {"baselines": ["random", "class_matched"], "seed": 11}
    full = select_for_revalidation(_candidates(), _big_pool(), [], 2, 4, **kw)
    for src in ("baseline", "class_matched"):
        picked = full.loc[full["source"] == src, tables.LIGAND_ID].tolist()
        unpicked = sorted(set(_big_pool()[tables.LIGAND_ID]) - set(picked))
        smaller = _big_pool()[_big_pool()[tables.LIGAND_ID] != unpicked[0]]
        again = select_for_revalidation(_candidates(), smaller, [], 2, 4, **kw)
        assert again.loc[again["source"] == src, tables.LIGAND_ID].tolist() == picked, src


@pytest.mark.parametrize(
    "block, message",
    [
        ({"active_learning": {"baselines": ["random", "best_pool"]}}, "is not one of"),
        ({"active_learning": {"baselines": ["random", "random"]}}, "non-unique"),
        ({"active_learning": {"max_tanimoto": 1.5}}, "is greater than the maximum"),
        ({"learning": {"generation": {"acquisition": "thompson"}}}, "is not one of"),
        ({"learning": {"generation": {"ring_strain_guard": "yes"}}}, "is not of type 'boolean'"),
    ],
)
def test_baseline_and_acquisition_keys_are_validated(repo_root, block, message):
    import yaml

    from smmflow.config import ConfigError, load_schema, validate_config

    cfg = yaml.safe_load((repo_root / "config/config.yaml").read_text())
    # the default run re-validates against the two strongest baselines (budget); every name is known
    assert set(cfg["active_learning"]["baselines"]) <= {"random", "class_matched", "surrogate_screen"}
    assert cfg["active_learning"]["baselines"]
    for stage, sub in block.items():
        for key, value in sub.items():
            if isinstance(value, dict):
                cfg[stage][key].update(value)
            else:
                cfg[stage][key] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg, load_schema(repo_root / "workflow/schemas/config.schema.yaml"))


def _pooled_table(gen_kd, base_kd, threshold=400.0, failed_gen=0) -> pd.DataFrame:
    """A re-validation table of several rounds: generated and surrogate-screen picks, plus a weak
    random baseline; ``failed_gen`` generated picks failed."""
    rows = []
    for src, kds in (("generated", gen_kd), ("surrogate_screen", base_kd), ("baseline", [50.0] * len(base_kd))):
        for i, kd in enumerate(kds):
            rows.append({"ligand_id": f"{src}{i}", "smiles": "[O-]C", "ligand_class": "O-", "source": src,
                         "computed_kd2_cm1": kd, "hit": kd > threshold, "status": "ok", "reason": "",
                         "pred_kd2_cm1": 300.0, "abs_error_cm1": abs(kd - 300.0), "round": i % 3})
    for i in range(failed_gen):
        rows.append({"ligand_id": f"gfail{i}", "smiles": "[O-]C", "ligand_class": "O-", "source": "generated",
                     "computed_kd2_cm1": np.nan, "hit": False, "status": "failed", "reason": "xtb failed",
                     "pred_kd2_cm1": 300.0, "abs_error_cm1": np.nan, "round": 0})
    return pd.DataFrame(rows)


def test_pooled_comparison_finds_a_real_difference_and_names_the_strongest_baseline():
    rng = np.random.default_rng(0)
    t = _pooled_table(600 + 30 * rng.standard_normal(18), 400 + 30 * rng.standard_normal(18))
    pooled = pooled_comparison(t, seed=1)
    row = pooled.set_index("method").loc["surrogate_screen"]
    assert bool(row["strongest_baseline"]) and not bool(pooled.set_index("method").loc["baseline", "strongest_baseline"])
    assert row["ci95_low_cm1"] > 100 and row["ci95_high_cm1"] < 300  # true difference ~200
    assert row["p_mannwhitney"] < 1e-4
    assert pooled_verdict(pooled).startswith("generation beats the strongest baseline (surrogate_screen)")


def test_pooled_comparison_does_not_claim_a_difference_from_noise():
    rng = np.random.default_rng(1)
    t = _pooled_table(500 + 100 * rng.standard_normal(6), 500 + 100 * rng.standard_normal(6))
    pooled = pooled_comparison(t, seed=1)
    row = pooled.set_index("method").loc["surrogate_screen"]
    assert row["ci95_low_cm1"] < 0 < row["ci95_high_cm1"]
    assert row["p_mannwhitney"] > 0.05
    assert pooled_verdict(pooled).startswith("generation does not beat")
    worse = pooled_comparison(_pooled_table([100.0, 120.0, 110.0, 90.0], [500.0, 520.0, 510.0, 490.0]), seed=1)
    assert pooled_verdict(worse).startswith("generation is beaten by")


def test_pooled_comparison_counts_failures_as_misses_and_is_seeded():
    t = _pooled_table([600.0, 650.0, 300.0], [450.0, 350.0, 300.0], failed_gen=1)
    a, b = pooled_comparison(t, seed=7), pooled_comparison(t, seed=7)
    pd.testing.assert_frame_equal(a, b)
    gen = a.set_index("method").loc["generated"]
    assert (gen["n"], gen["n_ok"], gen["n_hits"]) == (4, 3, 2)
    assert gen["hit_rate"] == 0.5
    assert gen["mean_kd2_cm1"] == pytest.approx(1550.0 / 3)  # the failed pick is not in the KD2 mean
    rng = np.random.default_rng(2)
    t2 = _pooled_table(500 + 50 * rng.standard_normal(12), 450 + 50 * rng.standard_normal(12))
    c7 = pooled_comparison(t2, seed=7).set_index("method").loc["surrogate_screen"]
    c8 = pooled_comparison(t2, seed=8).set_index("method").loc["surrogate_screen"]
    assert c7["gen_minus_mean_kd2_cm1"] == c8["gen_minus_mean_kd2_cm1"]
    assert c7["ci95_low_cm1"] != c8["ci95_low_cm1"]  # the interval comes from the seeded bootstrap
    assert c7["ci95_low_cm1"] == pytest.approx(c8["ci95_low_cm1"], abs=10.0)
    assert pooled_verdict(t.pipe(lambda x: pooled_comparison(x[x["source"] != "generated"], seed=1))).startswith("no comparison")
    assert pooled_verdict(pooled_comparison(pd.DataFrame(), seed=1)).startswith("no comparison")
    one = pooled_comparison(_pooled_table([100.0], [600.0]), seed=1)  # one pick each: no verdict
    assert one.set_index("method").loc["surrogate_screen", "gen_minus_mean_kd2_cm1"] == -500.0
    assert pd.isna(one.set_index("method").loc["surrogate_screen", "ci95_low_cm1"])
    assert pooled_verdict(one).startswith("too few usable picks")
