"""Generation: only valid donor-first ligands come out ok; strategies; ids; metrics."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from test_learning_training import SMILES, TINY

from smmflow import tables
from smmflow.chem.donors import donor_first_ligand, ligand_id
from smmflow.ml.data import side_features
from smmflow.ml.generate import GenerationConfig, generate, predict_kd, slerp
from smmflow.ml.generation_metrics import generation_metrics, internal_diversity
from smmflow.ml.heads.ensemble import fit_kd_ensemble
from smmflow.ml.vae.trainer import TrainConfig, latent_means, train_vae


@pytest.mark.parametrize(
    "smi,cls", [("[O-]c1ccccc1", "O-"), ("OCC", "O"), ("N1CCCC1", "N"), ("[NH-]C(C)C", "N-"), ("n1ccccc1", "N")]
)
def test_donor_first_ligands_accepted_with_class(smi, cls):
    canon, c = donor_first_ligand(smi)
    assert c == cls
    assert Chem.MolFromSmiles(canon).GetAtomWithIdx(0).GetSymbol() == cls[0]


@pytest.mark.parametrize(
    "bad,why",
    [
        ("CCO", "not an O/N donor"),
        ("O", "fewer than 2"),
        ("OC.C", "fragment"),
        ("C1CC", "cannot parse"),
        ("[N+](C)(C)(C)C", "donor formal charge"),
        ("[NH3+]C", "donor formal charge"),
        ("[N-]C", "radical"),
        ("OC[O-]", "charged atom"),
        ("", "empty"),
        ("[O]C", "radical"),
    ],
)
def test_bad_ligands_rejected_with_reason(bad, why):
    with pytest.raises(ValueError, match=why):
        donor_first_ligand(bad)


def test_ligand_id_definition():
    canon = Chem.MolToSmiles(Chem.MolFromSmiles("OCC"), rootedAtAtom=0)
    assert ligand_id("OCC") == "L" + hashlib.sha256(canon.encode()).hexdigest()[:16]
    assert ligand_id("OCC") == ligand_id("O([H])CC".replace("([H])", ""))


def test_slerp_end_points_and_norm():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-12)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-12)
    assert 1.0 <= np.linalg.norm(slerp(a, b, 0.5)) <= 2.0


@pytest.fixture(scope="module")
def tiny_model():
    from test_learning_training import tiny_data

    data = tiny_data(n_kd=8)
    # side inputs the generation code can rebuild: structure columns are proxy targets
    struct_names = ["dist_dy_donor1_a", "dist_dy_donor2_a", "angle_l_dy_l_deg"]
    rng = np.random.default_rng(1)
    struct = pd.DataFrame(
        {
            "dist_dy_donor1_a": rng.uniform(2.1, 2.4, 8),
            "dist_dy_donor2_a": rng.uniform(2.1, 2.4, 8),
            "angle_l_dy_l_deg": rng.uniform(150, 180, 8),
        }
    )
    side, side_names = side_features(struct, data.ligand_class, struct_names)
    data.proxy, data.proxy_names = struct.to_numpy(), struct_names
    data.side, data.side_names = side, side_names
    tm, _, _ = train_vae(
        data,
        TINY,
        TrainConfig(epochs=30, batch_size=8, learning_rate=1e-2, val_fraction=0.0, threads=1),
        seed=0,
        struct_names=struct_names,
    )
    tm.ensemble = fit_kd_ensemble(latent_means(tm, data.smiles), data.side, data.kd, seed=0, n_members=3, epochs=50)
    return tm, data


def test_generate_returns_only_valid_donor_first_ligands(tiny_model):
    tm, data = tiny_model
    cfg = GenerationConfig(n_per_strategy=40, top_k_seeds=4, gradient_steps=5)
    df = generate(tm, cfg, seed=0, known_smiles=data.smiles, known_kd=data.kd[:, 0], known_classes=data.ligand_class)
    assert list(df.columns) == list(tables.CANDIDATE_COLUMNS)
    assert set(df["strategy"]) <= {"prior", "perturb", "interpolate", "gradient"}
    ok = df[df["status"] == "ok"]
    assert len(ok) > 0
    for s, cls in zip(ok["smiles"], ok["ligand_class"]):
        canon, c = donor_first_ligand(s)
        assert canon == s and c == cls and s[0] in "[ONn" or s.startswith("[")
    assert ok["smiles"].is_unique
    assert ok["rank"].notna().all() and sorted(ok["rank"]) == list(range(1, len(ok) + 1))
    assert (ok["pred_kd2_std_cm1"] >= 0).all()
    bad = df[df["status"] != "ok"]
    assert (bad["reason"].str.len() > 0).all()
    assert set(ok.loc[~ok["novel"].astype(bool), "smiles"]) <= {donor_first_ligand(s)[0] for s in SMILES}
    # determinism
    df2 = generate(tm, cfg, seed=0, known_smiles=data.smiles, known_kd=data.kd[:, 0], known_classes=data.ligand_class)
    pd.testing.assert_frame_equal(df, df2)
    m = generation_metrics(df, data.smiles, seed=0, compute_fcd=False)
    assert 0 <= m["validity"] <= 1 and 0 <= m["uniqueness"] <= 1 and 0 <= m["novelty"] <= 1
    assert m["n_unique"] == len(ok)


def test_selfies_model_generates_valid_donor_first_ligands():
    from test_learning_training import tiny_data

    data = tiny_data(n_kd=8)
    tm, _, _ = train_vae(
        data,
        TINY,
        TrainConfig(epochs=5, batch_size=8, val_fraction=0.0, threads=1),
        seed=0,
        struct_names=[],
        representation="selfies",
    )
    assert tm.vocab.representation == "selfies"
    df = generate(
        tm,
        GenerationConfig(n_per_strategy=30, strategies=("prior", "perturb")),
        seed=0,
        known_smiles=data.smiles,
        known_kd=data.kd[:, 0],
    )
    ok = df[df["status"] == "ok"]
    assert all(donor_first_ligand(s)[0] == s for s in ok["smiles"])
    # SELFIES: every failure is a chemistry filter, never an unparsable string
    assert not (df["reason"] == "RDKit cannot parse it").any()


def test_unknown_strategy_is_an_error(tiny_model):
    tm, data = tiny_model
    with pytest.raises(ValueError, match="unknown generation strategies"):
        generate(tm, GenerationConfig(strategies=("magic",)), seed=0, known_smiles=data.smiles)


def test_predict_kd_shapes(tiny_model):
    tm, _ = tiny_model
    mean, sd = predict_kd(tm, ["OCC", "[O-]c1ccccc1"])
    assert mean.shape == (2,) and np.isfinite(mean).all() and (sd >= 0).all()


def test_internal_diversity_limits():
    assert internal_diversity(["OCC", "OCC"], seed=0) == pytest.approx(0.0)
    assert 0.5 < internal_diversity(["OCC", "n1ccccc1", "[O-]C(=O)c1ccccc1Cl"], seed=0) <= 1.0
    assert np.isnan(internal_diversity(["OCC"], seed=0))


def test_metrics_counts():
    df = pd.DataFrame(
        {
            "smiles": ["OCC", "N1CC1", "OCC", "xx"],
            "strategy": ["prior"] * 4,
            "status": ["ok", "ok", "failed", "failed"],
            "reason": ["", "", "duplicate", "RDKit cannot parse it"],
            "novel": [True, False, None, None],
            "pred_kd2_cm1": [1.0, 2.0, np.nan, np.nan],
        }
    )
    m = generation_metrics(df, ["N1CC1"], seed=0, compute_fcd=False)
    assert m["validity"] == pytest.approx(0.75) and m["uniqueness"] == pytest.approx(2 / 3)
    assert m["novelty"] == pytest.approx(0.5)
    assert m["fcd"] is None and m["fcd_reason"]


def test_generation_ranks_by_the_configured_acquisition_and_guards_ring_strain(tiny_model):
    from smmflow.chem.stability import RING_STRAIN, ring_strain_reason
    from smmflow.ml.acquisition import acquisition_score

    tm, data = tiny_model
    kw = {"seed": 0, "known_smiles": data.smiles, "known_kd": data.kd[:, 0], "known_classes": data.ligand_class}
    base = {"n_per_strategy": 40, "top_k_seeds": 4, "gradient_steps": 5, "strategies": ("prior", "perturb")}
    for acq in ("greedy", "ucb", "ei"):
        df = generate(tm, GenerationConfig(**base, acquisition=acq, ucb_kappa=2.0), **kw)
        ok = df[df["status"] == "ok"].sort_values("rank")
        score = acquisition_score(ok["pred_kd2_cm1"], ok["pred_kd2_std_cm1"], acq, 2.0, 0.0, np.nanmax(data.kd[:, 0]))
        assert (np.diff(score) <= 1e-9).all(), acq  # rank 1 = best acquisition score
        assert not any(ring_strain_reason(Chem.MolFromSmiles(s)) for s in ok["smiles"]), acq
        rejected = df.loc[df["reason"].astype(str).str.startswith(RING_STRAIN), "smiles"]
        assert all(ring_strain_reason(Chem.MolFromSmiles(s)) for s in rejected), acq
    off = generate(tm, GenerationConfig(**base, ring_strain_guard=False), **kw)
    assert not off["reason"].astype(str).str.startswith(RING_STRAIN).any()
    with pytest.raises(ValueError, match="unknown acquisition"):
        generate(tm, GenerationConfig(**base, acquisition="thompson"), **kw)
