"""Re-validation of generated ligands with the labelling protocol, against baselines.

One active-learning round r (smmflow.rounds decides which tables feed it):

1. :func:`select_for_revalidation` picks the top-K generated candidates (novel, valid, not yet
   labelled; ranked by the acquisition score of the generate rule, optionally with a maximum
   Tanimoto similarity between picks) and, per configured baseline, ``baseline_k`` pool ligands
   that are not yet labelled either:

   - ``random`` (source ``baseline``): drawn uniformly, seeded (:func:`seeded_order`: a draw that a
     pool changed by one ligand changes by at most that ligand);
   - ``class_matched``: drawn at random within each ligand class, with the class mix of the
     generated top-K (largest-remainder quotas; a class with too few unlabelled pool ligands gives
     all it has, so the set may be smaller);
   - ``surrogate_screen``: the pool ligands with the best acquisition score of the round model
     (same score, ring-strain guard and diversity constraint as the generated picks): what the
     model finds by screening the enumerated pool, without generation.

   The baselines are drawn independently (a ligand may be in two; it is computed once). Every
   pick gets the round model's prediction, so the baselines also measure the model's error.
2. Every pick goes through the same complex building + xTB relaxation
   (:func:`revalidation_proxies`; a pool ligand already relaxed with the same settings reuses its
   row) and the same CASSCF tier.
3. :func:`revalidation_table` joins predictions and CASSCF labels; :func:`revalidation_metrics`
   gives per method MAE, hit rate (computed KD2 above the threshold), mean/median/max KD2 and the
   Spearman rank correlation of predicted vs computed KD2; which method wins on mean KD2 and on the
   best ligand found; and the improvement ratio of generated against the strongest baseline.
   Failed calculations count as misses for the hit rate (a ligand that does not bind is no hit)
   and never enter the MAE, the KD2 statistics or the next round's training.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from smmflow import tables
from smmflow.chem.stability import ring_strain_reason
from smmflow.ml.acquisition import acquisition_score, best_label, diverse_picks

log = logging.getLogger(__name__)

#: predict(smiles, classes) -> (mean, std) of the first excited KD (cm-1): the round model
Predictor = Callable[[list[str], list[str]], tuple[np.ndarray, np.ndarray]]


def labelled_ids(labels: Sequence[pd.DataFrame]) -> set[str]:
    """Ligand ids that already have a CASSCF result (ok or failed: a failed one is not retried)."""
    out: set[str] = set()
    for df in labels:
        if len(df):
            out.update(df[tables.LIGAND_ID].astype(str))
    return out


def top_generated(
    candidates: pd.DataFrame, k: int, exclude: set[str], max_tanimoto: float | None = None
) -> pd.DataFrame:
    """The ``k`` best-ranked valid, novel candidates whose id is not in ``exclude``; with
    ``max_tanimoto`` no two picks are more similar (:func:`smmflow.ml.acquisition.diverse_picks`)."""
    ok = candidates[(candidates["status"] == tables.STATUS_OK) & candidates["pred_kd2_cm1"].notna()]
    ok = ok[ok["novel"].fillna(False).astype(bool) & ~ok[tables.LIGAND_ID].isin(exclude)]
    ok = ok.sort_values("rank", kind="mergesort").drop_duplicates(tables.LIGAND_ID)
    return ok.iloc[diverse_picks(ok["smiles"].tolist(), k, max_tanimoto)]


def _unlabelled_pool(pool: pd.DataFrame, exclude: set[str]) -> pd.DataFrame:
    """Pool ligands not in ``exclude``, one row per id, sorted by id (a seeded draw then does not
    depend on the pool table's row order)."""
    cand = pool[~pool[tables.LIGAND_ID].isin(exclude)].drop_duplicates(tables.LIGAND_ID)
    return cand.sort_values(tables.LIGAND_ID, kind="mergesort").reset_index(drop=True)


def seeded_order(ids: Sequence[str], seed: int, stream: str) -> np.ndarray:
    """A seeded random order of ``ids`` (positions into it): sorted by sha256 of
    ``"{stream}:{seed}:{id}"``. A ligand's place depends on its own id only, so a pool that gains or
    loses one ligand (say one whose relaxation failed on another machine) changes a draw by at most
    that ligand; an index-based draw (``rng.choice(len(pool))``) would shift every pick."""
    import hashlib

    keys = [hashlib.sha256(f"{stream}:{int(seed)}:{i}".encode()).hexdigest() for i in ids]
    return np.argsort(np.asarray(keys, dtype=object), kind="stable")


def random_baseline(pool: pd.DataFrame, k: int, exclude: set[str], seed: int) -> pd.DataFrame:
    """``k`` ligands drawn uniformly (seeded, :func:`seeded_order`) from the enumerated pool, none in
    ``exclude``; in ligand-id order."""
    cand = _unlabelled_pool(pool, exclude)
    if len(cand) == 0 or k == 0:
        return cand.head(0)
    pick = seeded_order(cand[tables.LIGAND_ID].tolist(), seed, "random")[:k]
    return cand.iloc[np.sort(pick)]


def class_quotas(classes: Sequence[str], k: int) -> dict[str, int]:
    """``k`` split over the classes in proportion to their counts in ``classes`` (largest remainder;
    ties go to the class listed first in :data:`smmflow.tables.LIGAND_CLASSES`, then by name)."""
    counts = pd.Series(list(classes), dtype=object).value_counts()
    if k <= 0 or counts.empty:
        return {}
    order = sorted(
        counts.index,
        key=lambda c: (
            tables.LIGAND_CLASSES.index(c) if c in tables.LIGAND_CLASSES else len(tables.LIGAND_CLASSES),
            str(c),
        ),
    )
    exact = {c: k * counts[c] / counts.sum() for c in order}
    quota = {c: math.floor(exact[c]) for c in order}
    rest = k - sum(quota.values())
    for c in sorted(order, key=lambda c: -(exact[c] - quota[c]))[:rest]:  # stable sort keeps class order on ties
        quota[c] += 1
    return {c: quota[c] for c in order if quota[c] > 0}


def class_matched_baseline(
    pool: pd.DataFrame, k: int, exclude: set[str], classes: Sequence[str], seed: int
) -> pd.DataFrame:
    """``k`` pool ligands (none in ``exclude``) drawn at random within each ligand class, with the
    class mix of ``classes`` (the generated top-K): :func:`class_quotas`. A class with fewer
    unlabelled pool ligands than its quota gives all it has (logged)."""
    cand = _unlabelled_pool(pool, exclude)
    parts = []
    for cls, n in class_quotas(classes, k).items():
        sub = cand[cand["ligand_class"] == cls]
        if len(sub) < n:
            log.warning("class_matched: %d unlabelled pool ligands of class %s for a quota of %d", len(sub), cls, n)
        if len(sub):  # a stream of its own (not the random draw's)
            parts.append(sub.iloc[np.sort(seeded_order(sub[tables.LIGAND_ID].tolist(), seed, "class_matched")[:n])])
    return pd.concat(parts) if parts else cand.head(0)


def surrogate_screen(
    pool: pd.DataFrame,
    k: int,
    exclude: set[str],
    predict: Predictor | None,
    acquisition: Mapping[str, Any] | None = None,
    best_kd2: float | None = None,
    max_tanimoto: float | None = None,
    ring_strain_guard: bool = False,
) -> pd.DataFrame:
    """The ``k`` unlabelled pool ligands (none in ``exclude``) with the best acquisition score of
    the round model, as the generated candidates are ranked (``acquisition``: ``method`` greedy | ucb
    | ei, ``kappa``, ``xi``; ``best_kd2``: the incumbent of ei), skipping strained cages with
    ``ring_strain_guard`` and keeping picks at most ``max_tanimoto`` similar. Ties: ligand id.
    Columns: the pool's plus ``pred_kd2_cm1``, ``pred_kd2_std_cm1`` and ``score``."""
    cand = _unlabelled_pool(pool, exclude)
    if predict is None:
        log.warning("surrogate_screen: the round model has no KD ensemble; no pool ligand screened")
        return cand.head(0)
    if len(cand) == 0 or k == 0:
        return cand.head(0)
    if ring_strain_guard:
        from rdkit import Chem

        strained = [
            ring_strain_reason(m) is not None if (m := Chem.MolFromSmiles(s)) is not None else False
            for s in cand["smiles"]
        ]
        cand = cand[~np.asarray(strained, bool)].reset_index(drop=True)
    a = dict(acquisition or {})
    mean, sd = predict(cand["smiles"].tolist(), cand["ligand_class"].tolist())
    cand = cand.assign(pred_kd2_cm1=np.asarray(mean, float), pred_kd2_std_cm1=np.asarray(sd, float))
    cand["score"] = acquisition_score(
        cand["pred_kd2_cm1"].to_numpy(),
        cand["pred_kd2_std_cm1"].to_numpy(),
        a.get("method", "greedy"),
        a.get("kappa", 1.0),
        a.get("xi", 0.0),
        best_kd2,
    )
    cand = cand[cand["score"].notna()].sort_values(
        ["score", tables.LIGAND_ID], ascending=[False, True], kind="mergesort"
    )
    return cand.iloc[diverse_picks(cand["smiles"].tolist(), k, max_tanimoto)]


def select_for_revalidation(
    candidates: pd.DataFrame,
    pool: pd.DataFrame,
    labels: Sequence[pd.DataFrame],
    top_k: int,
    baseline_k: int,
    seed: int,
    predict: Predictor | None = None,
    baselines: Sequence[str] = ("random",),
    acquisition: Mapping[str, Any] | None = None,
    max_tanimoto: float | None = None,
    ring_strain_guard: bool = False,
) -> pd.DataFrame:
    """Top-``top_k`` generated + ``baseline_k`` pool ligands per baseline
    (``tables.REVALIDATION_SELECTION_COLUMNS``; rows: generated, then the baselines in the order given).

    ``baselines``: names of :data:`smmflow.tables.BASELINE_SOURCES` (random, class_matched,
    surrogate_screen). ``predict(smiles, classes) -> (mean, std)`` (the round's model) gives every
    baseline pick its predicted KD2 and ranks the surrogate screen; without it the baseline
    predictions are NaN and the screen is empty. ``acquisition`` (``method``, ``kappa``, ``xi``),
    ``ring_strain_guard``: as the generate rule ranked the candidates; ``max_tanimoto``: maximum
    similarity between the generated picks and between the screen's picks. The random and the
    class-matched draws use ``seed`` (two streams of it, :func:`seeded_order`).
    """
    if top_k < 0 or baseline_k < 0:
        raise ValueError("top_k and baseline_k must be >= 0")
    unknown = [b for b in baselines if b not in tables.BASELINE_SOURCES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown} (known: {list(tables.BASELINE_SOURCES)})")
    tables.check_columns(
        candidates,
        (tables.LIGAND_ID, "smiles", "ligand_class", "status", "novel", "pred_kd2_cm1", "rank"),
        "candidates",
    )
    tables.check_columns(pool, (tables.LIGAND_ID, "smiles", "ligand_class"), "ligands")
    done = labelled_ids(labels)
    gen = top_generated(candidates, top_k, done, max_tanimoto).assign(source=tables.SOURCE_GENERATED)
    if len(gen) < top_k:
        log.warning("only %d novel, unlabelled, ranked candidates for top_k=%d", len(gen), top_k)
    exclude = done | set(gen[tables.LIGAND_ID])
    parts = [gen.reindex(columns=tables.REVALIDATION_SELECTION_COLUMNS)]
    predicted: dict[str, tuple[float, float]] = {}
    for name in baselines:
        if name == "random":
            base = random_baseline(pool, baseline_k, exclude, seed)
        elif name == "class_matched":
            base = class_matched_baseline(pool, baseline_k, exclude, gen["ligand_class"].tolist(), seed)
        else:
            kd = [
                tables.usable(df)[tables.FIRST_EXCITED_KD].to_numpy(float)
                for df in labels
                if len(df) and tables.FIRST_EXCITED_KD in df.columns
            ]
            best = best_label(np.concatenate(kd) if kd else [])
            base = surrogate_screen(
                pool, baseline_k, exclude, predict, acquisition, best, max_tanimoto, ring_strain_guard
            )
            predicted.update(zip(base[tables.LIGAND_ID], zip(base["pred_kd2_cm1"], base["pred_kd2_std_cm1"])))
        base = base[[tables.LIGAND_ID, "smiles", "ligand_class"]].assign(
            source=tables.BASELINE_SOURCES[name], strategy=name
        )
        parts.append(base.reindex(columns=tables.REVALIDATION_SELECTION_COLUMNS))
    out = pd.concat(parts, ignore_index=True)[list(tables.REVALIDATION_SELECTION_COLUMNS)]
    is_base = out["source"] != tables.SOURCE_GENERATED
    todo = out.loc[is_base & ~out[tables.LIGAND_ID].isin(predicted)].drop_duplicates(tables.LIGAND_ID)
    if predict is not None and len(todo):
        mean, sd = predict(todo["smiles"].tolist(), todo["ligand_class"].tolist())
        predicted.update(zip(todo[tables.LIGAND_ID], zip(np.asarray(mean, float), np.asarray(sd, float))))
    for col, j in (("pred_kd2_cm1", 0), ("pred_kd2_std_cm1", 1)):
        out[col] = out[col].astype(float)
        out.loc[is_base, col] = [predicted.get(lid, (np.nan, np.nan))[j] for lid in out.loc[is_base, tables.LIGAND_ID]]
    return out


def revalidation_proxies(
    selection: pd.DataFrame,
    pool_proxies: pd.DataFrame | None,
    compute_row: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> pd.DataFrame:
    """Proxy rows (``tables.PROXY_COLUMNS``) for the selected ligands, one per ligand (a ligand
    picked by two methods is computed once): a pool ligand whose row was computed with the same
    settings is reused, the others are computed by ``compute_row``."""
    cached: dict[str, dict[str, Any]] = {}
    if pool_proxies is not None and len(pool_proxies):
        cached = {r[tables.LIGAND_ID]: r for r in pool_proxies.to_dict("records")}
    rows = []
    for rec in selection.drop_duplicates(tables.LIGAND_ID).to_dict("records"):
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
            out.update(
                computed_kd2_cm1=kd,
                hit=bool(kd > threshold_cm1),
                status=tables.STATUS_OK,
                reason="",
                abs_error_cm1=abs(kd - pred) if pred is not None and np.isfinite(pred) else np.nan,
            )
        else:
            reason = str(lab.at[lid, "reason"]) if lid in lab.index else "no CASSCF result"
            out.update(
                computed_kd2_cm1=np.nan, abs_error_cm1=np.nan, hit=False, status=tables.STATUS_FAILED, reason=reason
            )
        rows.append(out)
    return pd.DataFrame(rows, columns=list(tables.REVALIDATION_COLUMNS))


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def spearman(pred: Sequence[float], computed: Sequence[float], min_n: int = 3) -> float | None:
    """Spearman rank correlation of predicted vs computed KD2 over the pairs where both are finite;
    ``None`` for fewer than ``min_n`` pairs or a constant side."""
    from scipy.stats import spearmanr

    p, c = np.asarray(pred, float), np.asarray(computed, float)
    keep = np.isfinite(p) & np.isfinite(c)
    p, c = p[keep], c[keep]
    if len(p) < min_n or np.ptp(p) == 0 or np.ptp(c) == 0:
        return None
    return _nan_to_none(float(spearmanr(p, c).statistic))


def _ranking(t: pd.DataFrame) -> dict[str, Any]:
    """Spearman of predicted vs computed KD2 over the usable rows of ``t``: all and per ligand class."""
    ok = t[t["status"] == tables.STATUS_OK]
    by_class = {
        str(cls): {
            "n": int(g["pred_kd2_cm1"].notna().sum()),
            "spearman": spearman(g["pred_kd2_cm1"], g["computed_kd2_cm1"]),
        }
        for cls, g in ok.groupby("ligand_class", sort=True)
    }
    return {
        "n": int(ok["pred_kd2_cm1"].notna().sum()),
        "spearman": spearman(ok["pred_kd2_cm1"], ok["computed_kd2_cm1"]),
        "by_class": by_class,
    }


def method_metrics(t: pd.DataFrame) -> dict[str, Any]:
    """The block of one method (rows of one ``source``): counts, hit rates, KD2 statistics of the
    usable labels, MAE and Spearman of predicted vs computed (where a prediction exists)."""
    ok = t[t["status"] == tables.STATUS_OK]
    hits = int(ok["hit"].astype(bool).sum())
    kd = ok["computed_kd2_cm1"].astype(float)
    err = ok["abs_error_cm1"].dropna()
    rank = _ranking(t)
    return {
        "n": len(t),
        "n_ok": len(ok),
        "n_hits": hits,
        "hit_rate": _nan_to_none(hits / len(t)) if len(t) else None,
        "hit_rate_computed": _nan_to_none(hits / len(ok)) if len(ok) else None,
        "hit_rate_add_one": (hits + 1) / (len(t) + 2),
        "median_kd2_cm1": _nan_to_none(float(kd.median())) if len(ok) else None,
        "mean_kd2_cm1": _nan_to_none(float(kd.mean())) if len(ok) else None,
        "max_kd2_cm1": _nan_to_none(float(kd.max())) if len(ok) else None,
        "best_smiles": str(ok.loc[kd.idxmax(), "smiles"]) if len(ok) else None,
        "mae_cm1": _nan_to_none(float(err.mean())) if len(err) else None,
        "n_mae": len(err),
        "spearman": rank["spearman"],
        "spearman_by_class": rank["by_class"],
        "classes": {str(k): int(v) for k, v in t["ligand_class"].astype(str).value_counts().sort_index().items()},
        "failure_reasons": sorted(set(t.loc[t["status"] != tables.STATUS_OK, "reason"].astype(str))),
    }


def _winner(blocks: Mapping[str, Mapping[str, Any]], key: str) -> str | None:
    """The method with the largest ``key`` (first in order on a tie); ``None`` if no method has one."""
    best, who = -math.inf, None
    for name, b in blocks.items():
        v = b.get(key)
        if v is not None and v > best:
            best, who = v, name
    return who


def _strongest(blocks: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The baseline with the highest add-one hit rate (ties: mean KD2, then order)."""
    bases = {s: b for s, b in blocks.items() if s != tables.SOURCE_GENERATED and b["n"]}
    return max(
        bases,
        key=lambda s: (bases[s]["hit_rate_add_one"], bases[s]["mean_kd2_cm1"] or -math.inf, -list(bases).index(s)),
        default=None,
    )


def revalidation_metrics(
    table: pd.DataFrame, threshold_cm1: float, methods: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per-method blocks, ranking quality, winners and the improvement ratio (JSON-ready).

    ``methods``: the sources to report (default: ``generated`` and every source in ``table``, in
    :data:`smmflow.tables.SOURCES` order); a configured method with no pick gets a block with n = 0.
    Each block (:func:`method_metrics`): ``hit_rate`` = hits / ligands attempted (failures are
    misses), ``hit_rate_computed`` = hits / ligands with a usable label, mean/median/max KD2 over
    the usable labels, MAE and Spearman of predicted vs computed KD2 (and per class).
    ``ranking``: Spearman over every usable re-validated ligand of the round (one row per ligand),
    overall and within each ligand class. ``winner_mean_kd2`` / ``winner_best_found``: the method
    with the highest mean KD2 of its picks / the single best ligand. ``strongest_baseline``: the
    baseline with the highest add-one hit rate (ties: mean KD2, then order).
    ``improvement_ratio`` = generated / strongest-baseline hit rate (None when that baseline has no
    hit); ``improvement_ratio_add_one`` uses (hits + 1) / (n + 2) for both;
    ``improvement_ratio_add_one_by_baseline`` gives it against every baseline."""
    present = set(table["source"].astype(str))
    if methods is None:
        methods = [s for s in tables.SOURCES if s == tables.SOURCE_GENERATED or s in present]
        methods += sorted(present - set(methods))
    blocks = {src: method_metrics(table[table["source"] == src]) for src in methods}
    out: dict[str, Any] = {"threshold_cm1": float(threshold_cm1), "methods": list(methods), **blocks}
    out["ranking"] = _ranking(table.drop_duplicates(tables.LIGAND_ID))
    out["winner_mean_kd2"] = _winner(blocks, "mean_kd2_cm1")
    out["winner_best_found"] = _winner(blocks, "max_kd2_cm1")
    bases = {s: b for s, b in blocks.items() if s != tables.SOURCE_GENERATED and b["n"]}
    strongest = _strongest(blocks)
    out["strongest_baseline"] = strongest
    g = blocks.get(tables.SOURCE_GENERATED)
    if g is None or strongest is None or not g["n"]:
        out["improvement_ratio"] = out["improvement_ratio_add_one"] = None
        out["improvement_ratio_add_one_by_baseline"] = {}
        return out
    b = bases[strongest]
    out["improvement_ratio"] = (
        _nan_to_none(g["hit_rate"] / b["hit_rate"]) if g["hit_rate"] is not None and b["hit_rate"] else None
    )
    # add-one (Laplace) rates: finite when the baseline has no hit, shrunk toward 1 for small K
    out["improvement_ratio_add_one"] = g["hit_rate_add_one"] / b["hit_rate_add_one"]
    out["improvement_ratio_add_one_by_baseline"] = {
        s: g["hit_rate_add_one"] / x["hit_rate_add_one"] for s, x in bases.items()
    }
    return out


def pooled_comparison(table: pd.DataFrame, seed: int, n_boot: int = 10_000, min_n: int = 3) -> pd.DataFrame:
    """Every round's re-validations pooled, one row per method (``source``): counts, hits, hit rate,
    mean/median/max KD2 and the best ligand (:func:`method_metrics`), and for each baseline the
    comparison with generation:

    - ``gen_minus_mean_kd2_cm1``: mean KD2 of the generated picks minus this method's, with a 95 %
      percentile-bootstrap interval (``n_boot`` resamples of each group, seeded by ``seed``);
    - ``p_mannwhitney``: one-sided Mann-Whitney U p-value that generated KD2 are higher;
    - ``p_fisher_hits``: one-sided Fisher exact p-value that generation has the higher hit rate
      (failed calculations count as misses, as in the per-round metrics).

    The interval and the p-values need at least ``min_n`` usable labels on both sides (None below:
    a bootstrap of one or two values has no spread to speak of). ``strongest_baseline`` marks the
    baseline with the highest pooled add-one hit rate (the per-round rule). Rounds differ in their model and threshold, so this pools draws of the
    same protocol, not exchangeable samples: read it with the per-round table."""
    from scipy.stats import fisher_exact, mannwhitneyu

    if table.empty or "source" not in table:
        return pd.DataFrame()
    present = [s for s in tables.SOURCES if s in set(table["source"].astype(str))]
    present += sorted(set(table["source"].astype(str)) - set(present))
    blocks = {src: method_metrics(table[table["source"] == src]) for src in present}
    strongest = _strongest(blocks)

    def usable_kd(src: str) -> np.ndarray:
        t = table[(table["source"] == src) & (table["status"] == tables.STATUS_OK)]
        return t["computed_kd2_cm1"].astype(float).to_numpy()

    gen = usable_kd(tables.SOURCE_GENERATED) if tables.SOURCE_GENERATED in blocks else np.array([])
    g = blocks.get(tables.SOURCE_GENERATED)
    rows = []
    for i, src in enumerate(present):
        b = blocks[src]
        row: dict[str, Any] = {
            "method": src,
            **{k: b[k] for k in ("n", "n_ok", "n_hits", "hit_rate", "mean_kd2_cm1", "median_kd2_cm1", "max_kd2_cm1",
                                 "best_smiles")},
            "strongest_baseline": src == strongest,
            "gen_minus_mean_kd2_cm1": None,
            "ci95_low_cm1": None,
            "ci95_high_cm1": None,
            "p_mannwhitney": None,
            "p_fisher_hits": None,
        }
        base = usable_kd(src)
        if src != tables.SOURCE_GENERATED and len(gen) and len(base):
            row["gen_minus_mean_kd2_cm1"] = float(gen.mean() - base.mean())
        if src != tables.SOURCE_GENERATED and min(len(gen), len(base)) >= min_n:
            rng = np.random.default_rng([int(seed), i])
            diff = (rng.choice(gen, (n_boot, len(gen))).mean(axis=1)
                    - rng.choice(base, (n_boot, len(base))).mean(axis=1))
            lo, hi = np.quantile(diff, [0.025, 0.975])
            row.update(
                ci95_low_cm1=float(lo),
                ci95_high_cm1=float(hi),
                p_mannwhitney=float(mannwhitneyu(gen, base, alternative="greater").pvalue),
                p_fisher_hits=float(fisher_exact(
                    [[g["n_hits"], g["n"] - g["n_hits"]], [b["n_hits"], b["n"] - b["n_hits"]]],
                    alternative="greater",
                ).pvalue),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def pooled_verdict(pooled: pd.DataFrame) -> str:
    """One sentence: does generation beat the strongest baseline over the pooled rounds? "Beats"
    needs the 95 % interval of the mean-KD2 difference above zero; the hit counts are quoted."""
    if pooled.empty or "method" not in pooled:
        return "no comparison: nothing was re-validated"
    gen = pooled[pooled["method"] == tables.SOURCE_GENERATED]
    strong = pooled[pooled["strongest_baseline"].astype(bool)]
    if gen.empty or strong.empty or strong.iloc[0]["gen_minus_mean_kd2_cm1"] is None or pd.isna(
        strong.iloc[0]["gen_minus_mean_kd2_cm1"]
    ):
        return "no comparison: generation or the baselines have no usable label"
    g, s = gen.iloc[0], strong.iloc[0]
    if s["ci95_low_cm1"] is None or pd.isna(s["ci95_low_cm1"]):
        return (
            f"too few usable picks to judge generation against the strongest baseline ({s['method']}): "
            f"{g['n_ok']} vs {s['n_ok']} (mean KD2 {g['mean_kd2_cm1']:.1f} vs {s['mean_kd2_cm1']:.1f} cm-1)"
        )
    beats = s["ci95_low_cm1"] > 0
    worse = s["ci95_high_cm1"] < 0
    word = "beats" if beats else "is beaten by" if worse else "does not beat"
    return (
        f"generation {word} the strongest baseline ({s['method']}): mean KD2 {g['mean_kd2_cm1']:.1f} vs "
        f"{s['mean_kd2_cm1']:.1f} cm-1, difference {s['gen_minus_mean_kd2_cm1']:+.1f} "
        f"[95 % CI {s['ci95_low_cm1']:+.1f}, {s['ci95_high_cm1']:+.1f}], Mann-Whitney p = {s['p_mannwhitney']:.3g}; "
        f"hits {g['n_hits']}/{g['n']} vs {s['n_hits']}/{s['n']} (Fisher p = {s['p_fisher_hits']:.3g}); "
        f"best {g['max_kd2_cm1']:.1f} vs {s['max_kd2_cm1']:.1f} cm-1"
    )


__all__ = [
    "class_matched_baseline",
    "class_quotas",
    "hit_threshold",
    "labelled_ids",
    "method_metrics",
    "pooled_comparison",
    "pooled_verdict",
    "random_baseline",
    "revalidation_metrics",
    "revalidation_proxies",
    "revalidation_table",
    "seeded_order",
    "select_for_revalidation",
    "spearman",
    "surrogate_screen",
    "top_generated",
]
