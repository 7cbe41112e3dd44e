"""Learning curves of the first excited Kramers doublet: held-out R2/MAE versus the number of
KD labels, with and without proxy pretraining of the VAE latent space.

Protocol (same for the workflow's own data and for the published benchmark):
1. a fixed held-out test set of labelled ligands (seeded), never used for anything else;
2. the VAE is pretrained on every ligand's SMILES without any KD label, once with the proxy
   heads switched on ("proxy") and once with reconstruction only ("none");
3. for each n, a KD-head ensemble is fitted on the latent means + structural side inputs of the
   first n ligands of a seeded permutation of the labelled training pool (nested subsets);
4. a third line ("structure_only") fits the same ensemble on the side inputs alone;
5. optionally (``gnn_modes``), a message-passing network on the ligand graph read out at the donor
   atom (:mod:`smmflow.ml.heads.gnn`) is fitted on the same nested subsets, on the graph + side
   inputs ("no_vae"), or with the latent mean of the proxy-pretrained ("proxy") or
   reconstruction-only ("none") VAE as extra side inputs; it may be trained on several KD
   energies at once (multi-task), but is scored, like the rest, on the first one.

Repeats: ``split_seed`` and ``seed`` may each be a list. Every (model seed, split seed) pair is one
repeat of steps 1-5: the VAEs are pretrained once per model seed (pretraining never sees a label, so
the split does not change it) and every held-out split reuses them. The table has one row per
repeat (columns ``seed`` and ``split_seed``); :func:`summarise_repeats` gives the median and range.

The ``kd_model`` column says which KD head made a row ("latent_mlp": the bootstrap MLP ensemble
on [VAE latent, side inputs], or on the side inputs alone for "structure_only"; "gnn").
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from smmflow import tables
from smmflow.ml.data import LearningData
from smmflow.ml.heads.ensemble import fit_kd_ensemble
from smmflow.ml.metrics import mean_absolute_error, r2_score
from smmflow.ml.vae.trainer import TrainConfig, latent_means, train_vae

log = logging.getLogger(__name__)


PRETRAINING_MODES: tuple[str, ...] = ("proxy", "none", "structure_only")
#: pretraining options of the graph KD head: no VAE latent, or the latent of one of the two VAEs
GNN_MODES: tuple[str, ...] = ("no_vae", "proxy", "none")


def held_out_split(labelled: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(test, train_pool) indices of the labelled rows; train_pool in a seeded random order so that
    its first n rows are nested training sets."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(np.asarray(labelled))
    n_test = min(n_test, len(perm) // 2)
    return np.sort(perm[:n_test]), perm[n_test:]


def _seed_list(value: int | Sequence[int], name: str) -> list[int]:
    seeds = [int(value)] if np.ndim(value) == 0 else [int(v) for v in value]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"{name} must be a non-negative integer or a list of distinct ones, got {value!r}")
    return seeds


def proxy_pretraining_curve(data: LearningData, n_trains: Sequence[int], n_test: int,
                            split_seed: int | Sequence[int], seed: int | Sequence[int], model_cfg: dict,
                            train_cfg: TrainConfig, ensemble_cfg: dict,
                            modes: Sequence[str] = PRETRAINING_MODES,
                            representation: str = "smiles", gnn_modes: Sequence[str] = (),
                            gnn_cfg: dict | None = None,
                            gnn_targets: np.ndarray | None = None) -> tuple[pd.DataFrame, dict]:
    """Run the protocol of the module docstring; returns (table, extra metrics).

    ``gnn_targets`` (N, K): what the graph head is trained on (default ``data.kd``); its first
    column must be the scored target ``data.kd[:, 0]``. ``split_seed``/``seed``: one seed or a list
    (repeats, see the module docstring).
    """
    split_seeds, model_seeds = _seed_list(split_seed, "split_seed"), _seed_list(seed, "seed")
    unknown = set(gnn_modes) - set(GNN_MODES)
    if unknown:
        raise ValueError(f"unknown gnn modes {sorted(unknown)} (known: {GNN_MODES})")
    y = data.kd[:, 0]
    labelled = np.flatnonzero(np.isfinite(y))
    test0, pool0 = held_out_split(labelled, n_test, split_seeds[0])
    extra: dict = {"n_labelled": int(len(labelled)), "n_test": int(len(test0)), "pool": int(len(pool0)),
                   "split_seeds": split_seeds, "seeds": model_seeds}
    # the VAE never sees a KD label during pretraining
    blind = dataclasses.replace(data, kd=np.full_like(data.kd, np.nan))
    frames = []
    for s in model_seeds:
        latents: dict[str, np.ndarray] = {}
        for sp in split_seeds:
            frames.append(_one_repeat(data, blind, latents, n_trains, n_test, sp, s, model_cfg, train_cfg,
                                      ensemble_cfg, modes, representation, gnn_modes, gnn_cfg, gnn_targets, extra))
    return pd.concat(frames, ignore_index=True)[list(tables.LEARNING_CURVE_COLUMNS)], extra


def _one_repeat(data: LearningData, blind: LearningData, latents: dict, n_trains: Sequence[int], n_test: int,
                split_seed: int, seed: int, model_cfg: dict, train_cfg: TrainConfig, ensemble_cfg: dict,
                modes: Sequence[str], representation: str, gnn_modes: Sequence[str], gnn_cfg: dict | None,
                gnn_targets: np.ndarray | None, extra: dict) -> pd.DataFrame:
    """Steps 1-5 for one (model seed, split seed); ``latents`` caches this model seed's VAEs."""
    target = data.kd_names[0]
    y = data.kd[:, 0]
    labelled = np.flatnonzero(np.isfinite(y))
    test, pool = held_out_split(labelled, n_test, split_seed)
    rows: list[dict] = []

    def pretrained_latent(mode: str) -> np.ndarray:
        if mode not in latents:
            cfg = dataclasses.replace(train_cfg, proxy_weight=train_cfg.proxy_weight if mode == "proxy" else 0.0, kd_weight=0.0)
            tm, hist, met = train_vae(blind, model_cfg, cfg, seed, representation=representation)
            extra.setdefault(f"pretrain_{mode}", {k: met[k] for k in ("epochs_run", "wall_s", "train_smiles_per_s", "val_reconstruction_token_accuracy")})
            latents[mode] = latent_means(tm, data.smiles)
        return latents[mode]

    def curve_points(mode: str, kd_model: str, fit_predict) -> None:
        """One row per training size: ``fit_predict(train_rows)`` returns the test predictions."""
        for n in n_trains:
            base = {"n_train": int(n), "pretraining": mode, "kd_model": kd_model, "n_test": int(len(test)),
                    "target": target, "seed": seed, "split_seed": split_seed}
            if n > len(pool) or n < 2:
                rows.append({**base, "r2": np.nan, "mae": np.nan, "status": tables.STATUS_FAILED,
                             "reason": f"only {len(pool)} labelled ligands outside the test set"})
                continue
            pred = fit_predict(pool[:n])
            r2, mae = r2_score(y[test], pred[:, 0]), mean_absolute_error(y[test], pred[:, 0])
            log.info("%s %s n=%d r2=%.3f mae=%.1f", kd_model, mode, n, r2, mae)
            rows.append({**base, "r2": r2, "mae": mae, "status": tables.STATUS_OK, "reason": ""})

    for mode in modes:
        mu = pretrained_latent(mode) if mode in ("proxy", "none") else None

        def fit_latent_mlp(tr, mu=mu):
            ens = fit_kd_ensemble(mu[tr] if mu is not None else np.zeros((len(tr), 0)), data.side[tr], data.kd[tr],
                                  seed=seed, use_latent=mu is not None, **ensemble_cfg)
            return ens.predict(mu[test] if mu is not None else np.zeros((len(test), 0)), data.side[test])[0]

        curve_points(mode, "latent_mlp", fit_latent_mlp)
    if gnn_modes:
        import time

        from smmflow.ml.heads.gnn import fit_gnn_ensemble, ligand_graph

        yg = data.kd if gnn_targets is None else np.asarray(gnn_targets, float)
        if yg.ndim != 2 or len(yg) != len(y) or not np.array_equal(yg[labelled, 0], y[labelled]):
            raise ValueError("gnn_targets must be (N, K) with the scored target as first column")
        graphs = {i: ligand_graph(data.smiles[i]) for i in (*test, *pool[:max(n_trains, default=0)])}
        extra.setdefault("gnn", {"config": dict(gnn_cfg or {}), "n_targets": int(yg.shape[1]), "wall_s": {}})
        for mode in gnn_modes:
            mu = pretrained_latent(mode) if mode in ("proxy", "none") else np.zeros((len(y), 0))
            side = np.hstack([data.side, mu])

            def fit_gnn(tr, side=side, mode=mode):
                t0 = time.perf_counter()
                ens = fit_gnn_ensemble([graphs[i] for i in tr], side[tr], yg[tr], seed=seed, **(gnn_cfg or {}))
                pred = ens.predict([graphs[i] for i in test], side[test])[0]
                extra["gnn"]["wall_s"].setdefault(f"{mode}_{len(tr)}", time.perf_counter() - t0)
                return pred

            curve_points(mode, "gnn", fit_gnn)
    return pd.DataFrame(rows, columns=list(tables.LEARNING_CURVE_COLUMNS))


def summarise_repeats(df: pd.DataFrame) -> pd.DataFrame:
    """Median and range over the repeats (model seed x split seed) of each curve point (ok rows):
    columns kd_model, pretraining, n_train, n_repeats, r2_median/min/max, mae_median/min/max."""
    ok = df[df["status"] == tables.STATUS_OK]
    keys = ["kd_model", "pretraining", "n_train"]
    if ok.empty:
        return pd.DataFrame(columns=[*keys, "n_repeats", "r2_median", "r2_min", "r2_max",
                                     "mae_median", "mae_min", "mae_max"])
    g = ok.groupby(keys, sort=True)
    out = g.size().rename("n_repeats").to_frame()
    for col in ("r2", "mae"):
        out[f"{col}_median"] = g[col].median()
        out[f"{col}_min"] = g[col].min()
        out[f"{col}_max"] = g[col].max()
    return out.reset_index()


def plot_learning_curve(df: pd.DataFrame, path: str | Path, title: str = "") -> None:
    """R2 and MAE versus number of KD labels, one line per pretraining mode (PNG, atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from smmflow.io import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    ok = df[df["status"] == tables.STATUS_OK]
    summ = summarise_repeats(df)
    n_rep = int(summ["n_repeats"].max()) if len(summ) else 1
    for (model, mode), g in summ.groupby(["kd_model", "pretraining"]):
        g = g.sort_values("n_train")
        label = mode if model == "latent_mlp" else f"{model} ({mode})"
        for ax, col in zip(axes, ("r2", "mae")):
            (line,) = ax.plot(g["n_train"], g[f"{col}_median"], "o-" if model == "latent_mlp" else "s--", label=label)
            if n_rep > 1:  # the range over the repeats
                ax.fill_between(g["n_train"], g[f"{col}_min"], g[f"{col}_max"], color=line.get_color(), alpha=0.15)
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    n_values = sorted(ok["n_train"].unique())
    for ax, lab in zip(axes, ("held-out R$^2$", "held-out MAE / cm$^{-1}$")):
        ax.set_xscale("log")
        if n_values:  # ticks at the label counts, as plain numbers (no 4x10^0 minor labels)
            ax.xaxis.set_major_locator(FixedLocator(n_values))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("number of KD labels")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle((title or "first excited Kramers doublet")
                 + (f" (median and range of {n_rep} seed x split repeats)" if n_rep > 1 else ""))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
