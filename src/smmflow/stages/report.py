"""Figures and tables of the HTML report (``snakemake --report``) for the active-learning rounds.

Every function takes tables that follow the contracts of :mod:`smmflow.tables` and
:mod:`smmflow.stages.revalidation` and writes one file (atomically); nothing here computes physics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from smmflow import tables
from smmflow.io import atomic_path
from smmflow.tables import (
    SOURCE_BASELINE,
    SOURCE_CLASS_MATCHED,
    SOURCE_GENERATED,
    SOURCE_SURROGATE_SCREEN,
    SOURCES,
)

matplotlib.use("Agg")

PathLike = str | os.PathLike[str]
_STYLE = {
    SOURCE_GENERATED: {"color": "tab:red", "marker": "o"},
    SOURCE_BASELINE: {"color": "tab:blue", "marker": "s"},
    SOURCE_CLASS_MATCHED: {"color": "tab:green", "marker": "^"},
    SOURCE_SURROGATE_SCREEN: {"color": "tab:purple", "marker": "D"},
}
#: the per-method fields of metrics.json that the round summaries carry
_METHOD_KEYS = (
    "n",
    "n_ok",
    "n_hits",
    "hit_rate",
    "mae_cm1",
    "median_kd2_cm1",
    "mean_kd2_cm1",
    "max_kd2_cm1",
    "spearman",
)


def _save(fig: plt.Figure, path: PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def revalidation_by_round(paths: Sequence[PathLike]) -> pd.DataFrame:
    """Concatenate the per-round re-validation tables, adding a ``round`` column (0, 1, ...)."""
    frames = [pd.read_csv(p, sep="\t").assign(round=r) for r, p in enumerate(paths)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _methods(m: dict) -> list[str]:
    """The methods of one round's metrics.json (older files: generated and baseline)."""
    return list(m.get("methods") or [k for k in SOURCES if isinstance(m.get(k), dict)])


def rounds_summary(metrics_paths: Sequence[PathLike]) -> pd.DataFrame:
    """One row per round: threshold, winners, strongest baseline, improvement ratio, and per method
    (``{method}_{field}``) counts, hit rate, MAE, KD2 statistics and Spearman."""
    rows = []
    for r, p in enumerate(metrics_paths):
        m = json.loads(Path(p).read_text())
        row: dict = {
            "round": r,
            "threshold_cm1": m["threshold_cm1"],
            "winner_mean_kd2": m.get("winner_mean_kd2"),
            "winner_best_found": m.get("winner_best_found"),
            "strongest_baseline": m.get("strongest_baseline"),
            "improvement_ratio": m["improvement_ratio"],
            "improvement_ratio_add_one": m.get("improvement_ratio_add_one"),
            "spearman_all": (m.get("ranking") or {}).get("spearman"),
        }
        for src in _methods(m):
            for key in _METHOD_KEYS:
                row[f"{src}_{key}"] = m[src].get(key)
        rows.append(row)
    return pd.DataFrame(rows)


def methods_summary(metrics_paths: Sequence[PathLike]) -> pd.DataFrame:
    """One row per round and method (long format, for the report): counts, hit rate, mean/max KD2,
    the best ligand, MAE, Spearman, and which criterion the method wins."""
    rows = []
    for r, p in enumerate(metrics_paths):
        m = json.loads(Path(p).read_text())
        for src in _methods(m):
            b = m[src]
            wins = [
                w
                for w, key in (("mean KD2", "winner_mean_kd2"), ("best found", "winner_best_found"))
                if m.get(key) == src
            ]
            rows.append(
                {
                    "round": r,
                    "method": src,
                    **{k: b.get(k) for k in _METHOD_KEYS},
                    "best_smiles": b.get("best_smiles"),
                    "wins": ", ".join(wins),
                    "strongest_baseline": src == m.get("strongest_baseline"),
                    "improvement_ratio_add_one": m.get("improvement_ratio_add_one")
                    if src == SOURCE_GENERATED
                    else None,
                }
            )
    return pd.DataFrame(rows)


def plot_parity(reval: pd.DataFrame, path: PathLike, threshold_cm1: float | None = None) -> None:
    """Predicted (model of the round, with ensemble spread) vs CASSCF first excited KD."""
    fig, ax = plt.subplots(figsize=(5.2, 5))
    ok = reval[reval["status"] == tables.STATUS_OK].dropna(subset=["pred_kd2_cm1", "computed_kd2_cm1"])
    for src, style in _STYLE.items():
        t = ok[ok["source"] == src]
        if src != SOURCE_GENERATED:  # a ligand picked by two baselines is drawn once per baseline
            t = t.drop_duplicates(tables.LIGAND_ID)
        if len(t):
            mae = np.mean(np.abs(t["pred_kd2_cm1"] - t["computed_kd2_cm1"]))
            ax.errorbar(
                t["computed_kd2_cm1"],
                t["pred_kd2_cm1"],
                yerr=t["pred_kd2_std_cm1"],
                ls="none",
                mfc="none" if src != SOURCE_GENERATED else style["color"],
                mec=style["color"],
                ecolor=style["color"],
                marker=style["marker"],
                alpha=0.8,
                label=f"{src} (n={len(t)}, MAE {mae:.0f} cm$^{{-1}}$)",
            )
    lim = (
        [0.0, 1.05 * float(np.nanmax([ok["pred_kd2_cm1"].max(), ok["computed_kd2_cm1"].max(), 1.0]))]
        if len(ok)
        else [0, 1]
    )
    ax.plot(lim, lim, "k--", lw=0.8)
    if threshold_cm1 is not None:
        ax.axvline(threshold_cm1, color="grey", lw=0.8, ls=":", label=f"hit threshold {threshold_cm1:.0f} cm$^{{-1}}$")
    ax.set(
        xlim=lim,
        ylim=lim,
        xlabel="CASSCF first excited KD (cm$^{-1}$)",
        ylabel="predicted first excited KD (cm$^{-1}$)",
        title="Re-validation: predicted vs computed",
    )
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, path)


def plot_hit_rate(summary: pd.DataFrame, path: PathLike) -> None:
    """Hit rate per round, generated vs each baseline (failures count as misses)."""
    fig, ax = plt.subplots(figsize=(6.2, 3.8))
    x = np.arange(len(summary))
    methods = [s for s in _STYLE if f"{s}_hit_rate" in summary.columns]
    width = 0.8 / max(len(methods), 1)
    for k, src in enumerate(methods):
        style = _STYLE[src]
        rate = summary[f"{src}_hit_rate"].astype(float).fillna(0.0).to_numpy()
        bars = ax.bar(x + (k - (len(methods) - 1) / 2) * width, rate, width, color=style["color"], alpha=0.8, label=src)
        for b, h, n in zip(bars, summary[f"{src}_n_hits"], summary[f"{src}_n"]):
            ax.annotate(
                f"{h}/{n}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8
            )
    ax.set_xticks(x, [f"round {r}" for r in summary["round"]])
    ax.set(ylim=(0, 1.1), ylabel="hit rate", title="Computed first excited KD above the threshold")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_latent_space(mu: np.ndarray, kd2: np.ndarray, is_generated: np.ndarray, path: PathLike) -> None:
    """First two principal components of the latent means, coloured by the CASSCF first excited KD
    (grey: unlabelled); re-validated generated ligands circled."""
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    x = mu - mu.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    pc = x @ vt[:2].T
    var = s[:2] ** 2 / max(float((s**2).sum()), 1e-12)
    lab = np.isfinite(kd2)
    ax.scatter(pc[~lab, 0], pc[~lab, 1], s=6, c="lightgrey", label="unlabelled")
    sc = ax.scatter(pc[lab, 0], pc[lab, 1], s=22, c=kd2[lab], cmap="viridis", edgecolors="none")
    if is_generated.any():
        ax.scatter(
            pc[is_generated, 0],
            pc[is_generated, 1],
            s=70,
            facecolors="none",
            edgecolors="tab:red",
            label="generated, re-validated",
        )
    if lab.any():
        fig.colorbar(sc, ax=ax, label="CASSCF first excited KD (cm$^{-1}$)")
    ax.set(
        xlabel=f"PC1 ({100 * var[0]:.0f} %)",
        ylabel=f"PC2 ({100 * var[1]:.0f} %)",
        title="Latent space (last round's VAE)",
    )
    ax.legend(fontsize=8)
    _save(fig, path)


def best_labelled(labels: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` usable labels with the largest first excited KD (ties: ligand id)."""
    ok = tables.usable(labels).dropna(subset=[tables.FIRST_EXCITED_KD])
    return ok.sort_values([tables.FIRST_EXCITED_KD, tables.LIGAND_ID], ascending=[False, True]).head(n)


def spread_labels(ys: Sequence[float], min_gap: float) -> np.ndarray:
    """Label heights near ``ys`` (any order) with neighbours at least ``min_gap`` apart: close levels
    are pushed apart symmetrically about their mean, so every label stays readable."""
    ys = np.asarray(ys, dtype=float)
    order = np.argsort(ys)
    pos = ys[order].copy()
    for _ in range(len(pos)):  # merge overlapping clusters until none overlaps (at most n passes)
        clusters = [[0]]
        for i in range(1, len(pos)):
            if pos[i] - pos[clusters[-1][-1]] < min_gap - 1e-9:
                clusters[-1].append(i)
            else:
                clusters.append([i])
        if all(len(c) == 1 for c in clusters):
            break
        for c in clusters:
            centre = ys[order][c].mean()
            pos[c] = centre + (np.arange(len(c)) - (len(c) - 1) / 2) * min_gap
        for i in range(1, len(pos)):
            pos[i] = max(pos[i], pos[i - 1] + min_gap)
    out = np.empty_like(pos)
    out[order] = pos
    return out


def plot_kd_ladders(best: pd.DataFrame, path: PathLike) -> None:
    """Kramers-doublet ladders (8 KDs of 6H15/2) of the best ligands, each KD annotated with its
    principal g-values (gx, gy, gz); labels of close levels are spread out and joined to their level."""
    n = max(len(best), 1)
    fig, ax = plt.subplots(figsize=(2.6 * n + 1, 5.5))
    top = max([float(best[f"kd{tables.N_KD}_cm1"].max())] if len(best) else [1.0]) or 1.0
    for i, (_, row) in enumerate(best.iterrows()):
        energies = [row[f"kd{k}_cm1"] for k in range(1, tables.N_KD + 1)]
        label_y = spread_labels(energies, 0.045 * top)
        for k, (e, y) in enumerate(zip(energies, label_y), start=1):
            ax.hlines(e, i - 0.3, i + 0.3, color="k", lw=1.4)
            g = [row[f"g{k}_{a}"] for a in "xyz"]
            ax.plot([i + 0.3, i + 0.36], [e, y], color="0.6", lw=0.5)
            ax.annotate(f"{g[0]:.2f} {g[1]:.2f} {g[2]:.1f}", (i + 0.37, y), fontsize=6, va="center")
    ax.set_xticks(
        range(len(best)), [f"{s}\n{c}" for s, c in zip(best["smiles"], best["ligand_class"])], fontsize=7, rotation=20
    )
    ax.set(xlim=(-0.6, n + 0.1), ylabel="energy (cm$^{-1}$)", title="KD ladders of the best ligands (labels: gx gy gz)")
    _save(fig, path)


def write_html_table(df: pd.DataFrame, path: PathLike, title: str) -> None:
    """A table as a small standalone HTML page (readable inside the Snakemake report), atomically."""
    body = df.to_html(
        index=False,
        float_format=lambda x: f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}",
        na_rep="",
        border=0,
        classes="smm",
    )
    style = (
        "<style>body{font-family:sans-serif;font-size:13px} table.smm{border-collapse:collapse}"
        "table.smm td,table.smm th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "table.smm th{background:#f4f4f4}</style>"
    )
    text = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{style}</head>"
        f"<body><h3>{title}</h3>{body}</body></html>\n"
    )
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def draw_ligand_grid(smiles: Sequence[str], legends: Sequence[str], path: PathLike, per_row: int = 4) -> None:
    """RDKit grid drawing of ligands (donor atom first) with one legend each."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    mols = [Chem.MolFromSmiles(s) for s in smiles]
    keep = [(m, lg) for m, lg in zip(mols, legends) if m is not None]
    if not keep:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no re-validated ligand with a usable label", ha="center")
        _save(fig, path)
        return
    img = Draw.MolsToGridImage(
        [m for m, _ in keep],
        molsPerRow=per_row,
        subImgSize=(260, 220),
        legends=[lg for _, lg in keep],
        highlightAtomLists=[[0]] * len(keep),
    )
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


__all__ = [
    "best_labelled",
    "draw_ligand_grid",
    "methods_summary",
    "plot_hit_rate",
    "plot_kd_ladders",
    "plot_latent_space",
    "plot_parity",
    "revalidation_by_round",
    "rounds_summary",
    "spread_labels",
    "write_html_table",
]
