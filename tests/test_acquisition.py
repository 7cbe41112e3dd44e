"""Acquisition over the KD ensemble, diverse picks and the ring-strain guard of generation (issue 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from smmflow.chem.stability import RING_STRAIN, has_small_ring, ring_strain_reason
from smmflow.ml.acquisition import acquisition_score, best_label, diverse_picks
from smmflow.ml.generation_metrics import generation_metrics


def test_greedy_and_ucb():
    mean, sd = np.array([100.0, 90.0, np.nan]), np.array([1.0, 30.0, 5.0])
    assert acquisition_score(mean, sd, "greedy")[:2].tolist() == [100.0, 90.0]
    ucb = acquisition_score(mean, sd, "ucb", kappa=1.0)
    assert ucb[:2].tolist() == [101.0, 120.0] and np.isnan(ucb[2])
    assert acquisition_score(mean, np.array([np.nan, 0, 0]), "ucb", kappa=5.0)[0] == 100.0  # NaN spread = 0


def test_expected_improvement_matches_its_closed_form_and_a_monte_carlo_estimate():
    from scipy.stats import norm

    mean, sd, best = np.array([200.0, 150.0, 260.0, 180.0]), np.array([20.0, 60.0, 0.0, 0.0]), 190.0
    ei = acquisition_score(mean, sd, "ei", best=best)
    u = (200 - 190) / 20
    assert ei[0] == pytest.approx(10 * norm.cdf(u) + 20 * norm.pdf(u))
    assert ei[2] == 70.0 and ei[3] == 0.0  # no spread: the plain improvement
    draws = np.random.default_rng(0).normal(150.0, 60.0, 400_000)
    assert ei[1] == pytest.approx(np.maximum(draws - best, 0).mean(), rel=0.02)
    assert ei[1] > ei[3]  # uncertainty below the incumbent still has value
    assert acquisition_score(mean, sd, "ei", best=best, xi=10.0)[0] < ei[0]
    with pytest.raises(ValueError, match="best labelled"):
        acquisition_score(mean, sd, "ei", best=None)
    with pytest.raises(ValueError, match="unknown acquisition"):
        acquisition_score(mean, sd, "thompson")


def test_best_label():
    assert best_label([np.nan, 3.0, 7.0]) == 7.0 and best_label([np.nan]) is None and best_label([]) is None


def test_diverse_picks():
    smiles = ["[O-]CCCC", "[O-]CCCCC", "N#CC", "[O-]CCCCCC", "not a smiles", "OC1CCCCC1"]
    assert diverse_picks(smiles, 3) == [0, 1, 2]
    assert diverse_picks(smiles, 3, max_tanimoto=0.5) == [0, 2, 5]
    assert diverse_picks(smiles, 10, max_tanimoto=1.0) == [0, 1, 2, 3, 5]  # only the unparsable one dropped
    assert diverse_picks(smiles, 0, 0.5) == []


@pytest.mark.parametrize(
    "smiles, strained",
    [
        ("C1C2CC12", True),  # bicyclo[1.1.0]butane: fused 3+3
        ("C1CC12CC2", True),  # spiropentane: spiro 3+3
        ("C1CC2CC12", True),  # bicyclo[2.1.0]pentane (housane): fused 3+4
        ("C1CC2CCC12", True),  # bicyclo[2.2.0]hexane: fused 4+4
        ("C12CC(C1)C2", True),  # bicyclo[1.1.1]pentane: bridged 4-rings
        ("C12C3C4C1C5C2C3C45", True),  # cubane
        ("[O-]C1C2CC12", True),
        ("[O-]CC1CC1", False),  # an isolated cyclopropane
        ("OC1COC1", False),  # oxetane
        ("C1CC2CC2C1", False),  # bicyclo[3.1.0]hexane: a 3-ring fused to a 5-ring
        ("C1CCC2CC2C1", False),  # norcarane
        ("C1CC11CCC1", True),  # spiro[2.3]hexane: spiro 3+4
    ],
)
def test_ring_strain_rule(smiles, strained):
    mol = Chem.MolFromSmiles(smiles)
    why = ring_strain_reason(mol)
    assert (why is not None) == strained, why
    if why:
        assert why.startswith(RING_STRAIN)


def test_small_ring():
    assert has_small_ring(Chem.MolFromSmiles("OC1CCC1")) and not has_small_ring(Chem.MolFromSmiles("OC1CCCC1"))


def test_generation_metrics_measure_the_ring_strain_guard():
    df = pd.DataFrame(
        {
            "smiles": ["[O-]CC1CC1", "[O-]CCC", "[O-]C1C2CC12", "[O-]C1CC12CC2", "O=O"],
            "strategy": "prior",
            "novel": [True, True, None, None, None],
            "status": ["ok", "ok", "failed", "failed", "failed"],
            "pred_kd2_cm1": [1.0, 2.0, np.nan, np.nan, np.nan],
            "reason": [
                "",
                "",
                ring_strain_reason(Chem.MolFromSmiles("[O-]C1C2CC12")),
                ring_strain_reason(Chem.MolFromSmiles("[O-]C1CC12CC2")),
                "RDKit cannot parse it",
            ],
        }
    )
    m = generation_metrics(df, ["CCO"], seed=0, compute_fcd=False)
    assert m["n_ring_strain_rejected"] == 2
    assert m["ring_strain_rejection_rate"] == pytest.approx(2 / 4)  # of the 4 distinct in-space ligands judged
    assert m["ring_strain_fraction"] == pytest.approx(2 / 4)
    assert m["small_ring_fraction"] == pytest.approx(3 / 4)
    assert m["validity"] == pytest.approx(4 / 5) and m["in_ligand_space"] == 1.0
    assert m["per_strategy"]["prior"]["validity"] == pytest.approx(4 / 5)
    # without the guard the rule is still measured on the kept ligands
    kept = df.assign(status=["ok"] * 4 + ["failed"], reason=[""] * 4 + ["RDKit cannot parse it"])
    m2 = generation_metrics(kept, ["CCO"], seed=0, compute_fcd=False)
    assert m2["n_ring_strain_rejected"] == 0 and m2["ring_strain_fraction"] == pytest.approx(2 / 4)
