"""Acquisition over the KD-head ensemble and diverse picks: which ligands to re-validate next.

The KD head is an ensemble; for one ligand it gives the mean ``mu`` and the spread ``sigma`` of the
predicted first excited KD (cm-1). An acquisition function turns them into one score (higher is
better):

- ``greedy``: ``mu`` (exploit the model);
- ``ucb``: upper confidence bound ``mu + kappa * sigma`` (optimism under uncertainty);
- ``ei``: expected improvement over the best labelled KD2 ``f*`` under a Gaussian
  ``N(mu, sigma^2)``: ``EI = (mu - f* - xi) Phi(u) + sigma phi(u)``, ``u = (mu - f* - xi) / sigma``,
  and ``max(mu - f* - xi, 0)`` where ``sigma = 0``.

:func:`diverse_picks` walks a ranking and keeps a ligand only when its Tanimoto similarity (Morgan
radius 2, 2048 bits, as in :mod:`smmflow.ml.generation_metrics`) to every ligand already picked is
at most ``max_tanimoto`` (``None``: no constraint), until ``k`` are picked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

ACQUISITIONS: tuple[str, ...] = ("greedy", "ucb", "ei")


def acquisition_score(
    mean: np.ndarray,
    std: np.ndarray,
    method: str = "greedy",
    kappa: float = 1.0,
    xi: float = 0.0,
    best: float | None = None,
) -> np.ndarray:
    """Acquisition score of each ligand from the ensemble ``mean`` and ``std`` (cm-1); NaN where the
    mean is NaN. A NaN ``std`` counts as 0. ``best``: the best labelled KD2 (``ei`` only)."""
    mean = np.asarray(mean, float)
    sd = np.nan_to_num(np.asarray(std, float), nan=0.0)
    if method == "greedy":
        return mean.copy()
    if method == "ucb":
        return mean + float(kappa) * sd
    if method == "ei":
        if best is None or not np.isfinite(best):
            raise ValueError("acquisition 'ei' needs the best labelled KD2 (no usable label)")
        gain = mean - float(best) - float(xi)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(sd > 0, gain / np.where(sd > 0, sd, 1.0), 0.0)
            ei = np.where(sd > 0, gain * norm.cdf(u) + sd * norm.pdf(u), np.maximum(gain, 0.0))
        return np.where(np.isfinite(mean), ei, np.nan)
    raise ValueError(f"unknown acquisition {method!r} (known: {ACQUISITIONS})")


def best_label(kd: Sequence[float] | np.ndarray) -> float | None:
    """The largest finite value of ``kd`` (the incumbent of ``ei``), ``None`` when there is none."""
    a = np.asarray(kd, float)
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else None


def diverse_picks(smiles: Sequence[str], k: int, max_tanimoto: float | None = None) -> list[int]:
    """Indices of the first ``k`` entries of ``smiles`` (already in ranking order) such that no two
    picks are more similar than ``max_tanimoto`` (Tanimoto on Morgan fingerprints); ``None`` = the
    first ``k``. An entry RDKit cannot parse is skipped when a constraint is set."""
    if k <= 0:
        return []
    if max_tanimoto is None:
        return list(range(min(k, len(smiles))))
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    picked: list[int] = []
    fps: list = []
    for i, s in enumerate(smiles):  # lazily: a long ranking (a whole pool) is walked only as far as needed
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            continue
        fp = gen.GetFingerprint(mol)
        if fps and max(DataStructs.BulkTanimotoSimilarity(fp, fps)) > float(max_tanimoto):
            continue
        picked.append(i)
        fps.append(fp)
        if len(picked) == k:
            break
    return picked


__all__ = ["ACQUISITIONS", "acquisition_score", "best_label", "diverse_picks"]
