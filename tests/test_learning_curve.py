"""Learning-curve protocol, published-excerpt readers, and the rule entry points on tiny tables."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from smmflow import tables
from smmflow.chem.donors import donor_first_ligand, ligand_id
from smmflow.io import read_table, write_table
from smmflow.ml.data import read_extra_smiles
from smmflow.ml.learning_curve import held_out_split
from smmflow.ml.metrics import mean_absolute_error, r2_score
from smmflow.ml.published_benchmark import read_published_labels
from smmflow.ml.vae.trainer import load_trained_model
from smmflow.stages.learning import generate_from_model, learning_curve_from_tables, train_vae_from_tables

ROOT = Path(__file__).resolve().parents[1]
PUB = ROOT / "resources" / "published"


def test_r2_and_mae():
    y = np.array([1.0, 2.0, 3.0])
    assert r2_score(y, y) == 1.0
    assert r2_score(y, np.full(3, 2.0)) == pytest.approx(0.0)
    assert mean_absolute_error(y, y + 1) == pytest.approx(1.0)
    assert np.isnan(r2_score(y[:1], y[:1]))


def test_held_out_split_is_fixed_and_nested():
    t1, p1 = held_out_split(np.arange(100), 20, 5)
    t2, p2 = held_out_split(np.arange(100), 20, 5)
    assert np.array_equal(t1, t2) and np.array_equal(p1, p2)
    assert not set(t1) & set(p1) and len(t1) == 20 and len(p1) == 80


def test_published_excerpt_maps_onto_the_contracts():
    lab = read_published_labels(PUB / "kramers_labelled_excerpt.txt")
    assert set(lab["ligand_class"]) == set(tables.LIGAND_CLASSES)
    assert tables.FIRST_EXCITED_KD in lab and "dist_dy_donor1_a" in lab
    assert lab[tables.FIRST_EXCITED_KD].between(0, 2000).all()
    # the published SMILES are donor first: class from the first atom agrees with the class code
    for s, c in zip(lab["smiles"][:200], lab["ligand_class"][:200]):
        assert donor_first_ligand(s)[1] == c


def test_published_reader_rejects_bad_files(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("smiles ligand_class\nOCC 1\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_published_labels(p)


def tiny_settings() -> dict:
    s = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["learning"]
    s.update(threads=1, extra_smiles_files=[], min_kd_labels=4, cv_folds=3)
    s["model"].update(embed_dim=16, hidden_dim=32, latent_dim=8, head_hidden=16)
    s["training"].update(epochs=3, batch_size=16)
    s["ensemble"].update(n_members=2, epochs=30)
    s["learning_curve"].update(n_trains=[4, 8, 100], n_test=6)
    s["generation"].update(n_per_strategy=20, top_k_seeds=3, gradient_steps=3, fcd=False)
    return s


@pytest.fixture(scope="module")
def run_tables(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    lab = read_published_labels(PUB / "kramers_labelled_excerpt.txt").iloc[:40]
    lig = pd.DataFrame({tables.LIGAND_ID: [ligand_id(s) for s in lab["smiles"]], "smiles": lab["smiles"],
                        "ligand_class": lab["ligand_class"]})
    px = lig.copy()
    rng = np.random.default_rng(0)
    for c in tables.PROXY_TARGETS:
        px[c] = rng.normal(size=len(px))
    px["dist_dy_donor1_a"], px["dist_dy_donor2_a"] = lab["dist_dy_donor1_a"].values, lab["dist_dy_donor2_a"].values
    px["angle_l_dy_l_deg"], px["d5h_deviation_a"] = lab["angle_l_dy_l_deg"].values, lab["struct_1"].values
    px["status"] = ["failed" if i == 3 else "ok" for i in range(len(px))]
    labels = lig.iloc[:24].copy()
    labels[tables.FIRST_EXCITED_KD] = lab[tables.FIRST_EXCITED_KD].values[:24]
    labels["status"] = ["failed" if i == 0 else "ok" for i in range(24)]
    labels.loc[0, tables.FIRST_EXCITED_KD] = 1e9  # a failed row must never feed training
    paths = {k: d / f"{k}.parquet" for k in ("ligands", "proxies", "labels")}
    write_table(lig, paths["ligands"])
    write_table(px, paths["proxies"])
    write_table(labels, paths["labels"])
    return d, paths


def test_train_vae_rule_entry_point(run_tables):
    d, p = run_tables
    m = train_vae_from_tables(p["ligands"], p["proxies"], p["labels"], d / "model.pt", d / "metrics.json",
                              d / "history.tsv", tiny_settings())
    assert (d / "model.pt").exists() and (d / "history.tsv").exists()
    saved = json.loads((d / "metrics.json").read_text())
    assert saved["kd_head"]["n_labels"] == 23 and saved["kd_head"]["status"] == "fitted"
    assert "warning" in saved["kd_head"]  # few labels are flagged
    assert saved["epochs_run"] >= 1 and m["n_ligands"] == 40
    tm = load_trained_model(d / "model.pt")
    assert tm.ensemble is not None and len(tm.ensemble.members) == 2


def test_too_few_labels_gives_no_ensemble_but_a_model(run_tables, tmp_path):
    d, p = run_tables
    labels = read_table(p["labels"]).iloc[:3]
    write_table(labels, tmp_path / "labels.parquet")
    train_vae_from_tables(p["ligands"], p["proxies"], tmp_path / "labels.parquet", tmp_path / "m.pt",
                          tmp_path / "m.json", tmp_path / "h.tsv", tiny_settings())
    met = json.loads((tmp_path / "m.json").read_text())
    assert met["kd_head"]["status"].startswith("not fitted")


def test_generate_rule_entry_point(run_tables):
    d, p = run_tables
    if not (d / "model.pt").exists():
        pytest.skip("needs test_train_vae_rule_entry_point")
    m = generate_from_model(str(d / "model.pt"), str(p["ligands"]), str(p["labels"]), str(d / "cand.parquet"),
                            str(d / "gen.json"), tiny_settings())
    cand = read_table(d / "cand.parquet")
    ok = cand[cand["status"] == "ok"]
    assert all(donor_first_ligand(s)[0] == s for s in ok["smiles"])
    assert m["n_decoded"] == len(cand) == 80


def test_learning_curve_rule_entry_point(run_tables):
    d, p = run_tables
    df = learning_curve_from_tables(p["ligands"], p["proxies"], p["labels"], d / "lc.tsv", d / "lc.png",
                                    tiny_settings())
    assert list(df.columns) == list(tables.LEARNING_CURVE_COLUMNS)
    assert set(df["pretraining"]) == {"proxy", "none", "structure_only"}
    ok = df[df["status"] == "ok"]
    assert set(ok["n_train"]) == {4, 8} and (ok["n_test"] == 6).all()
    assert (df.loc[df["n_train"] == 100, "status"] == "failed").all()
    assert (d / "lc.png").stat().st_size > 1000


def test_learning_curve_repeats_over_splits(run_tables):
    """A list of split seeds gives one repeat per split: same VAEs, other held-out sets, and a
    summary with the median and range over the repeats."""
    from smmflow.ml.learning_curve import summarise_repeats

    d, p = run_tables
    s = tiny_settings()
    s["learning_curve"].update(split_seed=[0, 3], modes=["proxy", "structure_only"])
    df = learning_curve_from_tables(p["ligands"], p["proxies"], p["labels"], d / "lcr.tsv", d / "lcr.png", s)
    ok = df[df["status"] == "ok"]
    assert sorted(set(ok["split_seed"])) == [0, 3] and set(ok["seed"]) == {s["seed"]}
    assert len(ok) == 2 * ok.groupby(["split_seed"]).size().iloc[0]
    a = ok[ok["split_seed"] == 0].set_index(["pretraining", "n_train"])["mae"]
    b = ok[ok["split_seed"] == 3].set_index(["pretraining", "n_train"])["mae"]
    assert not np.allclose(a.sort_index(), b.sort_index())  # other held-out ligands, other errors
    summ = summarise_repeats(df)
    assert (summ["n_repeats"] == 2).all()
    assert (summ["mae_min"] <= summ["mae_median"]).all() and (summ["mae_median"] <= summ["mae_max"]).all()
    # the first split alone reproduces the single-seed run's rows
    s1 = tiny_settings()
    s1["learning_curve"].update(split_seed=0, modes=["proxy", "structure_only"])
    single = learning_curve_from_tables(p["ligands"], p["proxies"], p["labels"], d / "lc1.tsv", d / "lc1.png", s1)
    first = df[df["split_seed"] == 0].reset_index(drop=True)
    assert np.allclose(first["mae"], single["mae"], equal_nan=True)


def test_learning_curve_rejects_repeated_seeds(run_tables):
    d, p = run_tables
    s = tiny_settings()
    s["learning_curve"].update(split_seed=[1, 1])
    with pytest.raises(ValueError, match="distinct"):
        learning_curve_from_tables(p["ligands"], p["proxies"], p["labels"], d / "x.tsv", d / "x.png", s)


def test_extra_smiles_reader(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("smiles other\nOCC 1\nCCO 2\nOCC 3\n[O-]c1ccccc1 4\n# comment\n")
    df = read_extra_smiles([f], exclude=["[O-]c1ccccc1"])
    assert df["smiles"].tolist() == ["OCC"]
