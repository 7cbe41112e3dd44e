"""Generation metrics: validity, uniqueness, novelty, internal diversity and FCD.

Definitions (MOSES-style, but without MOSES's "filters", which reject every charged ligand):
- validity   = valid donor-first ligands / decoded strings
- uniqueness = distinct canonical ligands / valid ligands
- in_ligand_space = distinct ligands the enumerator would also produce (same elements, size, rings,
  stability rules, donor sites: smmflow.chem.enumerate.ligand_space_reason) / distinct ligands
- novelty    = in-space distinct ligands absent from the training set / in-space distinct ligands
- internal diversity = 1 - mean pairwise Tanimoto similarity (Morgan radius 2, 2048 bits) of the
  distinct ligands (a seeded random subset of at most ``max_pairs_set`` molecules)
- ring strain (:func:`smmflow.chem.stability.ring_strain_reason`): ``n_ring_strain_rejected`` = distinct
  in-space ligands the guard rejected; ``ring_strain_rejection_rate`` = those / distinct in-space
  ligands it judged (kept + rejected); ``ring_strain_fraction`` = in-space ligands that break the rule
  whether or not the guard is on (so a run without the guard measures what it would reject);
  ``small_ring_fraction`` = in-space ligands holding any 3- or 4-membered ring (kept + rejected).
  Rejected ligands count as valid, unique and in the ligand space, not in novelty or diversity.
- FCD: Frechet ChemNet distance to the training ligands with the ``fcd`` package (its ChemNet
  weights ship with the package); ``None`` with a reason when the package is missing or fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from unittest import mock

import numpy as np
import pandas as pd
from rdkit import Chem

from smmflow import tables
from smmflow.chem.enumerate import OUTSIDE_LIGAND_SPACE
from smmflow.chem.stability import RING_STRAIN, has_small_ring, ring_strain_reason


def internal_diversity(smiles: Sequence[str], seed: int, max_set: int = 1000) -> float:
    """1 - mean pairwise Tanimoto similarity (Morgan r=2, 2048 bits); NaN for < 2 molecules."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    smiles = list(smiles)
    if len(smiles) > max_set:
        idx = np.random.default_rng(seed).choice(len(smiles), max_set, replace=False)
        smiles = [smiles[i] for i in sorted(idx)]
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [gen.GetFingerprint(m) for m in (Chem.MolFromSmiles(s) for s in smiles) if m is not None]
    if len(fps) < 2:
        return float("nan")
    total, n = 0.0, 0
    for i in range(1, len(fps)):
        sims = DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])
        total += float(np.sum(sims))
        n += len(sims)
    return 1.0 - total / n


def frechet_chemnet_distance(generated: Sequence[str], reference: Sequence[str]) -> tuple[float | None, str]:
    """(FCD, "") or (None, reason). Uses the ``fcd`` package on CPU."""
    if len(generated) < 2 or len(reference) < 2:
        return None, "fewer than 2 molecules in a set"
    try:
        import fcd
    except ImportError:
        return None, "package fcd not installed"
    try:
        # fcd 1.2 calls np.row_stack, which NumPy 2.x no longer has: lend it for this call only
        with mock.patch.object(np, "row_stack", np.vstack, create=True):
            return float(fcd.get_fcd(list(generated), list(reference), device="cpu")), ""
    except Exception as e:  # noqa: BLE001 - a metric must never crash the rule
        return None, f"fcd failed: {type(e).__name__}: {e}"


def generation_metrics(
    candidates: pd.DataFrame, training_smiles: Sequence[str], seed: int, compute_fcd: bool = True
) -> dict:
    """Metrics of a candidates table (see :data:`smmflow.tables.CANDIDATE_COLUMNS`)."""
    n_decoded = len(candidates)
    failed = candidates[candidates["status"] != tables.STATUS_OK]
    n_dup = int((failed["reason"] == "duplicate").sum())
    outside = failed["reason"].astype(str).str.startswith(OUTSIDE_LIGAND_SPACE)
    n_outside = int(outside.sum())
    strained = failed["reason"].astype(str).str.startswith(RING_STRAIN)
    n_strained = int(strained.sum())
    ok = candidates[candidates["status"] == tables.STATUS_OK]
    n_space = len(ok) + n_strained
    n_valid = n_space + n_dup + n_outside
    n_unique = n_space + n_outside
    n_novel = int(ok["novel"].fillna(False).astype(bool).sum())
    invalid = failed[(failed["reason"] != "duplicate") & ~outside & ~strained]
    judged = [*ok["smiles"].astype(str), *failed.loc[strained, "smiles"].astype(str)]
    mols = [m for m in (Chem.MolFromSmiles(s) for s in judged) if m is not None]
    n_rule = sum(ring_strain_reason(m) is not None for m in mols)
    out: dict = {
        "n_decoded": n_decoded,
        "n_valid": n_valid,
        "n_unique": n_unique,
        "n_in_ligand_space": n_space,
        "n_novel": n_novel,
        "validity": n_valid / n_decoded if n_decoded else float("nan"),
        "uniqueness": n_unique / n_valid if n_valid else float("nan"),
        "in_ligand_space": n_space / n_unique if n_unique else float("nan"),
        "n_ring_strain_rejected": n_strained,
        "ring_strain_rejection_rate": n_strained / n_space if n_space else float("nan"),
        "ring_strain_fraction": n_rule / len(mols) if mols else float("nan"),
        "small_ring_fraction": sum(has_small_ring(m) for m in mols) / len(mols) if mols else float("nan"),
        "novelty": n_novel / len(ok) if len(ok) else float("nan"),
        "internal_diversity": internal_diversity(ok["smiles"].tolist(), seed),
        "invalid_reasons": invalid["reason"].str.split(",").str[0].value_counts().head(10).to_dict(),
        "outside_ligand_space_reasons": failed.loc[outside, "reason"]
        .str.slice(len(OUTSIDE_LIGAND_SPACE) + 2)
        .value_counts()
        .head(10)
        .to_dict(),
    }
    per = {}
    for strat, g in candidates.groupby("strategy"):
        gok = g[g["status"] == tables.STATUS_OK]
        reason = g["reason"].astype(str)
        gvalid = len(gok) + int(
            (
                (reason == "duplicate")
                | reason.str.startswith(OUTSIDE_LIGAND_SPACE)
                | reason.str.startswith(RING_STRAIN)
            ).sum()
        )
        per[strat] = {
            "n_decoded": len(g),
            "validity": gvalid / len(g) if len(g) else float("nan"),
            "n_unique": len(gok),
            "mean_pred_kd2_cm1": float(gok["pred_kd2_cm1"].mean()) if len(gok) else float("nan"),
        }
    out["per_strategy"] = per
    if compute_fcd:
        fcd_value, reason = frechet_chemnet_distance(ok["smiles"].tolist(), list(training_smiles))
        out["fcd"], out["fcd_reason"] = fcd_value, reason
    else:
        out["fcd"], out["fcd_reason"] = None, "disabled in the config"
    return out
