"""Re-validation of generated ligands with the labelling protocol, against a random baseline.

One active-learning round r (smmflow.rounds decides which tables feed it):

1. :func:`select_for_revalidation` picks the top-K generated candidates (novel, valid, not yet
   labelled; ranked by the predicted first excited KD) and, as the baseline, K ligands drawn at
   random (seeded) from the enumerated pool that are not yet labelled either. Both get the round
   model's prediction, so the baseline also measures the model's error on an unbiased draw.
2. Both sets go through the same complex building + xTB relaxation (:func:`revalidation_proxies`;
   a pool ligand already relaxed with the same settings reuses its row) and the same CASSCF tier.
3. :func:`revalidation_table` joins predictions and CASSCF labels; :func:`revalidation_metrics`
   gives MAE, hit rates (computed KD2 above the threshold) for generated vs baseline, and the
   improvement ratio. Failed calculations count as misses for the hit rate (a ligand that does
   not bind is no hit) and never enter the MAE or the next round's training.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from smmflow import tables

log = logging.getLogger(__name__)




def labelled_ids(labels: Sequence[pd.DataFrame]) -> set[str]:
    """Ligand ids that already have a CASSCF result (ok or failed: a failed one is not retried)."""
    out: set[str] = set()
    for df in labels:
        if len(df):
            out.update(df[tables.LIGAND_ID].astype(str))
    return out


def top_generated(candidates: pd.DataFrame, k: int, exclude: set[str]) -> pd.DataFrame:
    """The ``k`` best-ranked valid, novel candidates whose id is not in ``exclude``."""
    ok = candidates[(candidates["status"] == tables.STATUS_OK) & candidates["pred_kd2_cm1"].notna()]
    ok = ok[ok["novel"].fillna(False).astype(bool) & ~ok[tables.LIGAND_ID].isin(exclude)]
    ok = ok.sort_values("rank", kind="mergesort").drop_duplicates(tables.LIGAND_ID)
    return ok.head(k)


def random_baseline(pool: pd.DataFrame, k: int, exclude: set[str], seed: int) -> pd.DataFrame:
    """``k`` ligands drawn uniformly (seeded) from the enumerated pool, none in ``exclude``."""
    cand = pool[~pool[tables.LIGAND_ID].isin(exclude)].drop_duplicates(tables.LIGAND_ID)
    cand = cand.sort_values(tables.LIGAND_ID, kind="mergesort").reset_index(drop=True)
    if len(cand) == 0 or k == 0:
        return cand.head(0)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(cand), size=min(k, len(cand)), replace=False)
    return cand.iloc[np.sort(pick)]


def select_for_revalidation(
    candidates: pd.DataFrame,
    pool: pd.DataFrame,
    labels: Sequence[pd.DataFrame],
    top_k: int,
    baseline_k: int,
    seed: int,
    predict: Callable[[list[str], list[str]], tuple[np.ndarray, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """Top-``top_k`` generated + ``baseline_k`` random pool ligands (``tables.REVALIDATION_SELECTION_COLUMNS``).

    ``predict(smiles, classes) -> (mean, std)`` gives the baseline its predicted KD2 (the round's
    model); without it the baseline predictions are NaN.
    """
    if top_k < 0 or baseline_k < 0:
        raise ValueError("top_k and baseline_k must be >= 0")
    tables.check_columns(candidates, (tables.LIGAND_ID, "smiles", "ligand_class", "status", "novel",
                                      "pred_kd2_cm1", "rank"), "candidates")
    tables.check_columns(pool, (tables.LIGAND_ID, "smiles", "ligand_class"), "ligands")
    done = labelled_ids(labels)
    gen = top_generated(candidates, top_k, done).assign(source=tables.SOURCE_GENERATED)
    base = random_baseline(pool, baseline_k, done | set(gen[tables.LIGAND_ID]), seed)
    base = base[[tables.LIGAND_ID, "smiles", "ligand_class"]].assign(source=tables.SOURCE_BASELINE, strategy="random")
    base["pred_kd2_cm1"] = np.nan
    base["pred_kd2_std_cm1"] = np.nan
    if predict is not None and len(base):
        mean, sd = predict(base["smiles"].tolist(), base["ligand_class"].tolist())
        base["pred_kd2_cm1"], base["pred_kd2_std_cm1"] = mean, sd
    if len(gen) < top_k:
        log.warning("only %d novel, unlabelled, ranked candidates for top_k=%d", len(gen), top_k)
    out = pd.concat([gen.reindex(columns=tables.REVALIDATION_SELECTION_COLUMNS), base.reindex(columns=tables.REVALIDATION_SELECTION_COLUMNS)],
                    ignore_index=True)
    return out[list(tables.REVALIDATION_SELECTION_COLUMNS)]


def revalidation_proxies(selection: pd.DataFrame, pool_proxies: pd.DataFrame | None,
                         compute_row: Callable[[Mapping[str, Any]], dict[str, Any]]) -> pd.DataFrame:
    """Proxy rows (``tables.PROXY_COLUMNS``) for the selected ligands: a pool ligand whose row
    was computed with the same settings is reused, the others are computed by ``compute_row``."""
    cached: dict[str, dict[str, Any]] = {}
    if pool_proxies is not None and len(pool_proxies):
        cached = {r[tables.LIGAND_ID]: r for r in pool_proxies.to_dict("records")}
    rows = []
    for rec in selection.to_dict("records"):
        hit = cached.get(rec[tables.LIGAND_ID])
        rows.append(dict(hit) if hit is not None else compute_row(rec))
    df = pd.DataFrame(rows).reindex(columns=list(tables.PROXY_COLUMNS))
    return df


def hit_threshold(labels: pd.DataFrame, quantile: float = 0.9, threshold_cm1: float | None = None) -> float:
    """KD2 (cm-1) above which a computed ligand is a hit: ``threshold_cm1`` if given, otherwise the
    ``quantile`` of the usable training labels' first excited KD."""
    if threshold_cm1 is not None:
        return float(threshold_cm1)
    kd = tables.usable(labels)[tables.FIRST_EXCITED_KD].dropna().to_numpy(float)
    if kd.size == 0:
        raise ValueError("no usable training labels to set the hit threshold; set active_learning.threshold_cm1")
    return float(np.quantile(kd, quantile))


def revalidation_table(selection: pd.DataFrame, labels: pd.DataFrame, threshold_cm1: float) -> pd.DataFrame:
    """Predicted vs computed first excited KD per selected ligand (``tables.REVALIDATION_COLUMNS``).

    A ligand without a usable label (xTB or CASSCF failed) keeps status failed and the reason."""
    lab = labels.drop_duplicates(tables.LIGAND_ID).set_index(tables.LIGAND_ID)
    rows = []
    for rec in selection.to_dict("records"):
        lid = rec[tables.LIGAND_ID]
        out = {c: rec.get(c) for c in tables.REVALIDATION_SELECTION_COLUMNS}
        if lid in lab.index and lab.at[lid, "status"] == tables.STATUS_OK:
            kd = float(lab.at[lid, tables.FIRST_EXCITED_KD])
            pred = rec.get("pred_kd2_cm1")
            out.update(computed_kd2_cm1=kd, hit=bool(kd > threshold_cm1), status=tables.STATUS_OK, reason="",
                       abs_error_cm1=abs(kd - pred) if pred is not None and np.isfinite(pred) else np.nan)
        else:
            reason = str(lab.at[lid, "reason"]) if lid in lab.index else "no CASSCF result"
            out.update(computed_kd2_cm1=np.nan, abs_error_cm1=np.nan, hit=False,
                       status=tables.STATUS_FAILED, reason=reason)
        rows.append(out)
    return pd.DataFrame(rows, columns=list(tables.REVALIDATION_COLUMNS))


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def revalidation_metrics(table: pd.DataFrame, threshold_cm1: float) -> dict[str, Any]:
    """MAE, hit rates of generated vs baseline and the improvement ratio (JSON-ready).

    ``hit_rate`` = hits / ligands attempted (failures are misses); ``hit_rate_computed`` = hits /
    ligands with a usable label. ``improvement_ratio`` = generated / baseline hit rate (None when
    the baseline has no hit); ``improvement_ratio_add_one`` uses (hits + 1) / (n + 2) for both."""
    out: dict[str, Any] = {"threshold_cm1": float(threshold_cm1)}
    for src in (tables.SOURCE_GENERATED, tables.SOURCE_BASELINE):
        t = table[table["source"] == src]
        ok = t[t["status"] == tables.STATUS_OK]
        hits = int(ok["hit"].sum())
        err = ok["abs_error_cm1"].dropna()
        out[src] = {
            "n": int(len(t)),
            "n_ok": int(len(ok)),
            "n_hits": hits,
            "hit_rate": _nan_to_none(hits / len(t)) if len(t) else None,
            "hit_rate_computed": _nan_to_none(hits / len(ok)) if len(ok) else None,
            "median_kd2_cm1": _nan_to_none(float(ok["computed_kd2_cm1"].median())) if len(ok) else None,
            "max_kd2_cm1": _nan_to_none(float(ok["computed_kd2_cm1"].max())) if len(ok) else None,
            "mae_cm1": _nan_to_none(float(err.mean())) if len(err) else None,
            "n_mae": int(len(err)),
            "failure_reasons": sorted(set(t.loc[t["status"] != tables.STATUS_OK, "reason"].astype(str))),
        }
    g, b = out[tables.SOURCE_GENERATED]["hit_rate"], out[tables.SOURCE_BASELINE]["hit_rate"]
    out["improvement_ratio"] = _nan_to_none(g / b) if g is not None and b else None
    # add-one (Laplace) rates: finite when the baseline has no hit, shrunk toward 1 for small K
    gs, bs = out[tables.SOURCE_GENERATED], out[tables.SOURCE_BASELINE]
    if gs["n"] and bs["n"]:
        out["improvement_ratio_add_one"] = ((gs["n_hits"] + 1) / (gs["n"] + 2)) / ((bs["n_hits"] + 1) / (bs["n"] + 2))
    else:
        out["improvement_ratio_add_one"] = None
    return out


__all__ = ["hit_threshold", "labelled_ids", "random_baseline", "revalidation_metrics", "revalidation_proxies",
           "revalidation_table", "select_for_revalidation", "top_generated"]
