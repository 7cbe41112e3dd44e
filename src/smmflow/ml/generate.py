"""Latent-space generation of new ligands and their ranking by the predicted KD gap.

Strategies (config ``learning.generation.strategies``):
- ``prior``: z ~ N(0, I);
- ``perturb``: Gaussian perturbation around the latent means of the best known ligands;
- ``interpolate``: spherical interpolation (slerp) between pairs of the best known ligands;
- ``gradient``: gradient ascent of the predicted first excited KD in latent space, with a
  Gaussian-prior penalty that keeps z where the decoder was trained.

Decoded strings are kept only if RDKit parses them as a single-fragment ligand whose first atom is
an O or N donor (neutral or anionic, net charge = donor charge); they are canonicalised
donor-first, deduplicated, marked novel or not against the training ligands, and ranked by an
acquisition score over the KD-head ensemble (:mod:`smmflow.ml.acquisition`: ``greedy`` = the mean,
``ucb`` = mean + kappa * spread, ``ei`` = expected improvement over the best labelled KD2). With
``ring_strain_guard`` a ligand holding a strained small-ring cage
(:func:`smmflow.chem.stability.ring_strain_reason`) is rejected. Invalid and rejected decodes are
kept as ``status=failed`` rows with a reason so that validity is auditable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from rdkit import Chem

from smmflow import tables
from smmflow.chem.donors import donor_first_ligand, ligand_id
from smmflow.chem.enumerate import LigandFilters, ligand_space_reason
from smmflow.chem.stability import ring_strain_reason
from smmflow.ml.acquisition import ACQUISITIONS, acquisition_score, best_label
from smmflow.ml.data import side_features
from smmflow.ml.vae.trainer import TrainedModel, latent_means

log = logging.getLogger(__name__)


STRATEGIES: tuple[str, ...] = ("prior", "perturb", "interpolate", "gradient")


def canonical_set(smiles: Sequence[str]) -> set[str]:
    """Canonical donor-first forms of the valid ligands among ``smiles``."""
    out = set()
    for s in smiles:
        try:
            out.add(donor_first_ligand(s)[0])
        except ValueError:
            pass
    return out


# --- latent strategies ---------------------------------------------------------------------
def slerp(z0: np.ndarray, z1: np.ndarray, t: float) -> np.ndarray:
    """Spherical linear interpolation between two latent vectors (linear if nearly parallel)."""
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 == 0 or n1 == 0:
        return (1 - t) * z0 + t * z1
    cos = float(np.clip(np.dot(z0 / n0, z1 / n1), -1.0, 1.0))
    om = math.acos(cos)
    if abs(math.sin(om)) < 1e-6:
        return (1 - t) * z0 + t * z1
    return (math.sin((1 - t) * om) * z0 + math.sin(t * om) * z1) / math.sin(om)


def _side_torch(tm: TrainedModel, z: torch.Tensor, class_onehot: torch.Tensor) -> torch.Tensor:
    """Differentiable KD-head side inputs from z: structure predicted by the proxy head."""
    m = tm.model
    sd = m.predict_proxies(z)
    cols = [tm.proxy_names.index(s) for s in tm.struct_names]
    mean = torch.tensor([tm.proxy_scaler.mean[c] for c in cols], dtype=z.dtype)
    std = torch.tensor([tm.proxy_scaler.std[c] for c in cols], dtype=z.dtype)
    struct = sd[:, cols] * std + mean
    parts = [struct]
    if "inv_r3_sum" in tm.side_names:
        byname = {s: struct[:, i] for i, s in enumerate(tm.struct_names)}
        d1 = byname["dist_dy_donor1_a"].clamp(min=1.5)
        d2 = byname["dist_dy_donor2_a"].clamp(min=1.5)
        a = torch.deg2rad(byname["angle_l_dy_l_deg"])
        parts.append(torch.stack([d1**-3 + d2**-3, d1**-5 + d2**-5, torch.cos(a), (d1 - d2).abs()], 1))
    parts.append(class_onehot)
    return torch.cat(parts, 1)


def predict_kd_from_latent(tm: TrainedModel, z: torch.Tensor, class_onehot: torch.Tensor) -> torch.Tensor:
    """Ensemble-mean first excited KD (standardised ensemble output, differentiable in z)."""
    if tm.ensemble is None:
        raise ValueError("the model has no KD ensemble (too few KD labels)")
    ens = tm.ensemble
    side = _side_torch(tm, z, class_onehot)
    x = torch.cat([z, side], 1) if ens.use_latent else side
    x = (x - torch.tensor(ens.in_scaler.mean, dtype=z.dtype)) / torch.tensor(ens.in_scaler.std, dtype=z.dtype)
    return torch.stack([mm(x)[:, 0] for mm in ens.members]).mean(0)


def gradient_ascent(
    tm: TrainedModel, z0: np.ndarray, classes: Sequence[str], steps: int, lr: float, prior_weight: float
) -> np.ndarray:
    """Maximise predicted KD(z) - prior_weight * |z|^2 / 2 from each row of ``z0`` (Adam)."""
    from smmflow.ml.data import class_one_hot

    z = torch.tensor(np.asarray(z0, np.float32), requires_grad=True)
    oh = torch.tensor(class_one_hot(classes), dtype=torch.float32)
    opt = torch.optim.Adam([z], lr=lr)
    params = [p for p in tm.model.parameters()] + [
        p for m in (tm.ensemble.members if tm.ensemble else []) for p in m.parameters()
    ]
    saved = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            opt.zero_grad()
            obj = predict_kd_from_latent(tm, z, oh) - 0.5 * prior_weight * (z**2).sum(1)
            (-obj.sum()).backward()
            opt.step()
    finally:
        for p, r in zip(params, saved):
            p.requires_grad_(r)
    return z.detach().numpy()


@dataclass
class GenerationConfig:
    """Config block ``learning.generation``."""

    n_per_strategy: int = 500
    strategies: tuple[str, ...] = STRATEGIES
    temperature: float = 0.8
    top_k_seeds: int = 20
    perturb_sigma: float = 0.3
    interpolation_points: int = 8
    gradient_steps: int = 50
    gradient_lr: float = 0.05
    gradient_prior_weight: float = 0.1
    acquisition: str = "greedy"  # greedy | ucb | ei (smmflow.ml.acquisition)
    ucb_kappa: float = 1.0  # ucb: mean + ucb_kappa * std
    ei_xi: float = 0.0  # ei: improvement counted above best labelled KD2 + ei_xi (cm-1)
    ring_strain_guard: bool = True  # reject strained small-ring cages (chem.stability.ring_strain_reason)


def _seed_ligands(tm: TrainedModel, known_smiles: Sequence[str], known_kd: np.ndarray, k: int) -> list[str]:
    """The ``k`` best known ligands by KD label (predicted where unlabelled)."""
    order = np.argsort(-np.nan_to_num(np.asarray(known_kd, float), nan=-np.inf))
    return [known_smiles[i] for i in order[:k]]


def generate(
    tm: TrainedModel,
    cfg: GenerationConfig,
    seed: int,
    known_smiles: Sequence[str],
    known_kd: np.ndarray | None = None,
    known_classes: Sequence[str] | None = None,
    ligand_filters: LigandFilters | None = None,
) -> pd.DataFrame:
    """Generate, filter, deduplicate, mark novelty and rank; returns the candidates table.

    ``known_smiles``/``known_kd``: the training ligands and their KD labels (NaN if none); the best
    of them seed the perturb/interpolate/gradient strategies and define novelty.
    ``ligand_filters``: the enumerator's rules; a valid ligand outside that ligand space (e.g. an
    O-O bond, a nitroso group, too many atoms) is kept as a failed row with the reason.
    """
    bad = [s for s in cfg.strategies if s not in STRATEGIES]
    if bad:
        raise ValueError(f"unknown generation strategies {bad} (known: {STRATEGIES})")
    if cfg.acquisition not in ACQUISITIONS:
        raise ValueError(f"unknown acquisition {cfg.acquisition!r} (known: {ACQUISITIONS})")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    m = tm.model
    dim = m.cfg.latent_dim
    known = list(known_smiles)
    kd = np.full(len(known), np.nan) if known_kd is None else np.asarray(known_kd, float)
    incumbent = best_label(kd)  # best labelled KD2 (before predictions fill unlabelled seeds)
    if np.isfinite(kd).sum() == 0 and tm.ensemble is not None and known:
        kd = predict_kd(tm, known)[0]
    seeds = _seed_ligands(tm, known, kd, cfg.top_k_seeds) if known else []
    seed_mu = latent_means(tm, seeds) if seeds else np.zeros((0, dim))
    classes_of = dict(zip(known, known_classes)) if known_classes is not None else {}

    batches: list[tuple[str, np.ndarray]] = []
    for strat in cfg.strategies:
        n = cfg.n_per_strategy
        if strat == "prior":
            z = rng.standard_normal((n, dim))
        elif strat == "perturb":
            if not len(seed_mu):
                log.warning("perturb: no seed ligands, skipped")
                continue
            z = seed_mu[rng.integers(0, len(seed_mu), n)] + cfg.perturb_sigma * rng.standard_normal((n, dim))
        elif strat == "interpolate":
            if len(seed_mu) < 2:
                log.warning("interpolate: fewer than 2 seed ligands, skipped")
                continue
            zs = []
            while len(zs) < n:
                i, j = rng.choice(len(seed_mu), 2, replace=False)
                for t in np.linspace(0, 1, cfg.interpolation_points + 2)[1:-1]:
                    zs.append(slerp(seed_mu[i], seed_mu[j], float(t)))
            z = np.array(zs[:n])
        else:  # gradient
            if not len(seed_mu) or tm.ensemble is None:
                log.warning("gradient: needs seed ligands and a KD ensemble, skipped")
                continue
            pick = rng.integers(0, len(seed_mu), n)
            start = seed_mu[pick] + 0.1 * rng.standard_normal((n, dim))
            cls = [classes_of.get(seeds[i]) or donor_first_ligand(seeds[i])[1] for i in pick]
            z = gradient_ascent(tm, start, cls, cfg.gradient_steps, cfg.gradient_lr, cfg.gradient_prior_weight)
        batches.append((strat, np.asarray(z, np.float32)))

    rows: list[dict] = []
    seen: set[str] = set()
    known_canon = canonical_set(known)
    for strat, z in batches:
        ids = m.sample_ids(
            torch.as_tensor(z), tm.vocab.bos_id, tm.vocab.eos_id, temperature=cfg.temperature, generator=gen
        )
        for row in ids.tolist():
            raw = tm.vocab.decode(row)
            try:
                canon, cls = donor_first_ligand(raw)
            except ValueError as e:
                rows.append({"smiles": raw, "strategy": strat, "status": tables.STATUS_FAILED, "reason": str(e)})
                continue
            if canon in seen:
                rows.append({"smiles": canon, "strategy": strat, "status": "duplicate", "reason": "duplicate"})
                continue
            seen.add(canon)
            why = ligand_space_reason(canon, ligand_filters) if ligand_filters is not None else None
            if not why and cfg.ring_strain_guard:
                why = ring_strain_reason(Chem.MolFromSmiles(canon))
            if why:
                rows.append(
                    {
                        tables.LIGAND_ID: ligand_id(canon),
                        "smiles": canon,
                        "ligand_class": cls,
                        "strategy": strat,
                        "status": tables.STATUS_FAILED,
                        "reason": why,
                    }
                )
                continue
            rows.append(
                {
                    tables.LIGAND_ID: ligand_id(canon),
                    "smiles": canon,
                    "ligand_class": cls,
                    "strategy": strat,
                    "novel": canon not in known_canon,
                    "status": tables.STATUS_OK,
                    "reason": "",
                }
            )
    df = pd.DataFrame(rows)
    for c in tables.CANDIDATE_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    ok = df["status"] == tables.STATUS_OK
    df["pred_kd2_cm1"] = np.nan
    df["pred_kd2_std_cm1"] = np.nan
    if ok.any() and tm.ensemble is not None:
        try:
            mean, sd = predict_kd(tm, df.loc[ok, "smiles"].tolist(), df.loc[ok, "ligand_class"].tolist())
            df.loc[ok, "pred_kd2_cm1"] = mean
            df.loc[ok, "pred_kd2_std_cm1"] = sd
        except ValueError as e:  # no usable KD ensemble
            log.warning("KD prediction failed: %s", e)
    score = pd.Series(
        acquisition_score(
            df["pred_kd2_cm1"].to_numpy(float),
            df["pred_kd2_std_cm1"].to_numpy(float),
            cfg.acquisition,
            cfg.ucb_kappa,
            cfg.ei_xi,
            incumbent,
        )
        if ok.any() and df["pred_kd2_cm1"].notna().any()
        else np.nan,
        index=df.index,
    )
    df["rank"] = pd.Series(np.nan, index=df.index)
    okr = ok & score.notna()
    df.loc[okr, "rank"] = score[okr].rank(ascending=False, method="first")
    df = df.sort_values(
        ["status", "rank"], key=lambda s: s.map({"ok": 0}).fillna(1) if s.name == "status" else s, na_position="last"
    ).reset_index(drop=True)
    df["novel"] = df["novel"].astype("boolean")
    df["status"] = df["status"].replace({"duplicate": tables.STATUS_FAILED})
    return df[list(tables.CANDIDATE_COLUMNS)]


def predict_kd(
    tm: TrainedModel, smiles: Sequence[str], classes: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the first excited KD (cm-1) for ligands without a relaxed structure: the
    structural side inputs are the proxy head's predictions from the latent mean."""
    if tm.ensemble is None:
        raise ValueError("the model has no KD ensemble (too few KD labels)")
    mu = latent_means(tm, list(smiles))
    if classes is None:
        classes = [donor_first_ligand(s)[1] for s in smiles]
    with torch.no_grad():
        proxy = tm.proxy_scaler.inverse(tm.model.predict_proxies(torch.as_tensor(mu)).numpy())
    struct = pd.DataFrame({s: proxy[:, tm.proxy_names.index(s)] for s in tm.struct_names})
    side, _ = side_features(struct, list(classes), tm.struct_names)
    mean, sd = tm.ensemble.predict(mu, side)
    mean, sd = mean[:, 0], sd[:, 0]
    return mean, sd


__all__ = ["STRATEGIES", "GenerationConfig", "canonical_set", "generate", "gradient_ascent", "predict_kd", "slerp"]
