"""Learning data: proxy/label tables -> arrays, side features, standardisation, splits."""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np
import pandas as pd

from smmflow import tables

log = logging.getLogger(__name__)


# --- cheap proxies computable on the fly ---------------------------------------------------


TablePaths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def rdkit_proxies(smiles: str) -> list[float]:
    """:data:`tables.RDKIT_PROXY_NAMES` for a donor-first SMILES; NaNs if RDKit cannot parse it."""
    from rdkit import Chem
    from rdkit.Chem import Crippen, rdMolDescriptors, rdPartialCharges

    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return [math.nan] * len(tables.RDKIT_PROXY_NAMES)
    rdPartialCharges.ComputeGasteigerCharges(mol)
    d = mol.GetAtomWithIdx(0)

    def q(a) -> float:
        v = a.GetDoubleProp("_GasteigerCharge")
        return v if math.isfinite(v) else 0.0

    return [
        q(d), sum(q(n) for n in d.GetNeighbors()), float(d.GetDegree()), float(d.GetTotalNumHs()),
        float(d.GetIsAromatic()), float(d.IsInRing()), Crippen.MolLogP(mol),
        rdMolDescriptors.CalcTPSA(mol), float(mol.GetNumHeavyAtoms()),
    ]


def rdkit_proxy_table(smiles: Sequence[str]) -> pd.DataFrame:
    """One row of :data:`tables.RDKIT_PROXY_NAMES` per SMILES."""
    return pd.DataFrame([rdkit_proxies(s) for s in smiles], columns=list(tables.RDKIT_PROXY_NAMES))


# --- KD-head side inputs (structure + class) -----------------------------------------------
def axial_field_features(d1: np.ndarray, d2: np.ndarray, angle_deg: np.ndarray) -> np.ndarray:
    """Point-charge-motivated combinations of the axial geometry, shape (N, 4).

    The axial crystal-field parameter of two donors scales as sum_i r_i^-3 (rank-2) and
    r_i^-5 (rank-4); bending the L-Dy-L axis lowers the axial symmetry as cos(angle) -> -1.
    Columns: r1^-3 + r2^-3, r1^-5 + r2^-5, cos(L-Dy-L), |r1 - r2|.
    """
    d1 = np.asarray(d1, float)
    d2 = np.asarray(d2, float)
    a = np.radians(np.asarray(angle_deg, float))
    return np.stack([d1**-3 + d2**-3, d1**-5 + d2**-5, np.cos(a), np.abs(d1 - d2)], axis=1)


AXIAL_FIELD_NAMES: tuple[str, ...] = ("inv_r3_sum", "inv_r5_sum", "cos_l_dy_l", "abs_dr")


def class_one_hot(classes: Sequence[str]) -> np.ndarray:
    """One-hot of :data:`smmflow.tables.LIGAND_CLASSES` (unknown class -> all zeros)."""
    out = np.zeros((len(classes), len(tables.LIGAND_CLASSES)))
    for i, c in enumerate(classes):
        if c in tables.LIGAND_CLASS_CODE:
            out[i, tables.LIGAND_CLASS_CODE[c] - 1] = 1.0
    return out


# --- standardisation -----------------------------------------------------------------------
@dataclass
class Standardizer:
    """Per-column mean/std computed on the training split only, NaN-aware."""

    mean: list[float]
    std: list[float]
    log: list[bool] = field(default_factory=list)

    @classmethod
    def fit(cls, x: np.ndarray, log_columns: Sequence[bool] | None = None) -> "Standardizer":
        x = np.asarray(x, float)
        logs = list(log_columns) if log_columns is not None else [False] * x.shape[1]
        xt = _apply_log(x, logs)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(xt, axis=0) if len(xt) else np.zeros(x.shape[1])
            std = np.nanstd(xt, axis=0) if len(xt) else np.ones(x.shape[1])
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        return cls([float(v) for v in mean], [float(v) for v in std], logs)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (_apply_log(np.asarray(x, float), self.log) - np.array(self.mean)) / np.array(self.std)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(x, float) * np.array(self.std) + np.array(self.mean)
        for j, lg in enumerate(self.log):
            if lg:
                y[..., j] = np.expm1(y[..., j])
        return y

    def inverse_std(self, mean_std: np.ndarray, sd_std: np.ndarray) -> np.ndarray:
        """Propagate a standard deviation in standardised space to physical units (delta method)."""
        sd = np.asarray(sd_std, float) * np.array(self.std)
        mean = np.asarray(mean_std, float) * np.array(self.std) + np.array(self.mean)
        for j, lg in enumerate(self.log):
            if lg:
                sd[..., j] = sd[..., j] * np.exp(mean[..., j])
        return sd


def _apply_log(x: np.ndarray, logs: Sequence[bool]) -> np.ndarray:
    x = np.array(x, float, copy=True)
    for j, lg in enumerate(logs):
        if lg:
            x[:, j] = np.log1p(np.clip(x[:, j], 0.0, None))
    return x


# --- data ----------------------------------------------------------------------------------
@dataclass
class LearningData:
    """Everything the VAE trains on, one row per ligand.

    ``proxy`` (N, P) and ``kd`` (N, K) hold NaN where a label is missing; ``side`` (N, S) are the
    KD head's extra inputs in physical units (structure, axial-field combinations, class one-hot)
    with NaN where unknown.
    """

    smiles: list[str]
    ligand_class: list[str]
    proxy: np.ndarray
    proxy_names: list[str]
    side: np.ndarray
    side_names: list[str]
    kd: np.ndarray
    kd_names: list[str]


def side_features(struct: pd.DataFrame, classes: Sequence[str], struct_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """KD-head side inputs: the structural columns, their axial-field combinations (when the
    two Dy-donor distances and the L-Dy-L angle are among them) and the class one-hot."""
    cols = [np.asarray(struct[c], float)[:, None] for c in struct_names]
    names = list(struct_names)
    geo = ("dist_dy_donor1_a", "dist_dy_donor2_a", "angle_l_dy_l_deg")
    if all(g in struct_names for g in geo):
        cols.append(axial_field_features(struct[geo[0]], struct[geo[1]], struct[geo[2]]))
        names += list(AXIAL_FIELD_NAMES)
    cols.append(class_one_hot(classes))
    names += [f"class_{c}" for c in tables.LIGAND_CLASSES]
    return np.hstack(cols) if cols else np.zeros((len(classes), 0)), names


def assemble_learning_data(
    ligands: pd.DataFrame,
    proxies: pd.DataFrame | None,
    labels: pd.DataFrame | None,
    proxy_targets: Sequence[str] = tables.PROXY_TARGETS,
    struct_features: Sequence[str] = tables.STRUCTURAL_FEATURES,
    kd_targets: Sequence[str] = (tables.FIRST_EXCITED_KD,),
    use_rdkit_proxies: bool = True,
) -> LearningData:
    """Join the ligand, proxy and CASSCF label tables on ``ligand_id`` (failed rows dropped).

    Proxy targets = the requested proxy columns + the structural descriptors (so the model learns
    to predict structure for ligands that were never relaxed) + optionally the on-the-fly RDKit
    proxies. KD labels with several tiers: the first ok row per ligand is used.
    """
    tables.check_columns(ligands, (tables.LIGAND_ID, "smiles", "ligand_class"), "ligands")
    lig = ligands.drop_duplicates(tables.LIGAND_ID).reset_index(drop=True)
    base = lig[[tables.LIGAND_ID, "smiles", "ligand_class"]].copy()
    if proxies is not None and len(proxies):
        tables.check_columns(proxies, (tables.LIGAND_ID, "status"), "proxies")
        px = tables.usable(proxies).drop_duplicates(tables.LIGAND_ID)
        keep = [c for c in (*proxy_targets, *struct_features) if c in px.columns]
        base = base.merge(px[[tables.LIGAND_ID, *keep]], on=tables.LIGAND_ID, how="left")
    if labels is not None and len(labels):
        tables.check_columns(labels, (tables.LIGAND_ID, "status", *kd_targets), "labels")
        lb = tables.usable(labels).drop_duplicates(tables.LIGAND_ID)
        base = base.merge(lb[[tables.LIGAND_ID, *kd_targets]], on=tables.LIGAND_ID, how="left")
    for c in (*proxy_targets, *struct_features, *kd_targets):
        if c not in base.columns:
            base[c] = np.nan
    proxy_names = list(proxy_targets) + list(struct_features)
    proxy = base[proxy_names].to_numpy(float)
    if use_rdkit_proxies:
        rd = rdkit_proxy_table(base["smiles"].tolist())
        proxy = np.hstack([proxy, rd.to_numpy(float)])
        proxy_names += list(tables.RDKIT_PROXY_NAMES)
    side, side_names = side_features(base, base["ligand_class"].tolist(), struct_features)
    return LearningData(
        smiles=base["smiles"].tolist(), ligand_class=base["ligand_class"].tolist(),
        proxy=proxy, proxy_names=proxy_names, side=side, side_names=side_names,
        kd=base[list(kd_targets)].to_numpy(float), kd_names=list(kd_targets),
    )


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/validation split of ``range(n)``; validation has at least 1 row when
    ``val_fraction`` > 0 and n > 1, none when ``val_fraction`` is 0 (then early stopping watches the
    training loss)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if val_fraction <= 0 or n < 2:
        return np.sort(perm), perm[:0]
    n_val = min(max(int(round(val_fraction * n)), 1), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


# --- workflow entry point ------------------------------------------------------------------------
def read_extra_smiles(paths: Sequence[str], exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Unlabelled donor-first ligands from whitespace-separated files (first column; a header line
    whose first token is 'smiles' is skipped). Invalid or duplicate SMILES are dropped (logged).
    Returns ligand rows (ligand_id, smiles, ligand_class) for the VAE's reconstruction loss only."""
    from smmflow.chem.donors import donor_first_ligand, ligand_id

    seen = {str(x) for x in exclude}
    rows, bad = [], 0
    for p in paths:
        with open(p) as fh:
            for line in fh:
                tok = line.split()
                if not tok or tok[0].startswith("#") or tok[0].lower() == "smiles":
                    continue
                try:
                    canon, cls = donor_first_ligand(tok[0])
                except ValueError:
                    bad += 1
                    continue
                if tok[0] in seen or canon in seen:
                    continue
                seen.add(canon)
                rows.append({tables.LIGAND_ID: ligand_id(canon), "smiles": tok[0], "ligand_class": cls})
    if bad:
        log.warning("extra SMILES: %d lines rejected (not a valid donor-first ligand)", bad)
    return pd.DataFrame(rows, columns=[tables.LIGAND_ID, "smiles", "ligand_class"])
