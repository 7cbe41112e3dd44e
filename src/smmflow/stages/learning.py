"""The learning stages' table-to-table functions (train, learning curve, generation)."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from smmflow import tables
from smmflow.chem.enumerate import LigandFilters
from smmflow.ml.data import TablePaths, assemble_learning_data, read_extra_smiles
from smmflow.ml.generate import STRATEGIES, GenerationConfig, generate
from smmflow.ml.heads.ensemble import _kfold_r2, fit_kd_ensemble
from smmflow.ml.learning_curve import plot_learning_curve, proxy_pretraining_curve, summarise_repeats
from smmflow.ml.vae.trainer import TrainConfig, latent_means, load_trained_model, save_trained_model, train_vae

log = logging.getLogger(__name__)


def with_physics_proxies(proxies: pd.DataFrame | None, physics: pd.DataFrame | None) -> pd.DataFrame | None:
    """The proxies table with the pointcharge-ladder proxies of its ligands added as columns (ok rows
    only; ligands without one get NaN, which the masked proxy head ignores)."""
    if proxies is None or physics is None:
        return proxies
    ok = tables.usable(physics)[[tables.LIGAND_ID, *tables.POINTCHARGE_PROXY_TARGETS]]
    base = proxies.drop(columns=[c for c in tables.POINTCHARGE_PROXY_TARGETS if c in proxies.columns])
    return base.merge(ok.drop_duplicates(tables.LIGAND_ID), on=tables.LIGAND_ID, how="left")


def generate_from_model(
    model_path: str,
    ligands_path: str | Sequence[str],
    labels_path: str | Sequence[str] | None,
    out_candidates: str,
    out_metrics: str,
    settings: dict,
) -> dict:
    """Rule ``generate``: load the model, run the configured strategies, write the candidates table
    and the generation metrics (validity, uniqueness, novelty, internal diversity, FCD)."""

    from smmflow.io import read_tables, write_json_atomic, write_table
    from smmflow.ml.generation_metrics import generation_metrics

    g = dict(settings["generation"])
    compute_fcd = bool(g.pop("fcd", True))
    fields = {f.name for f in dataclasses.fields(GenerationConfig)}
    unknown = set(g) - fields
    if unknown:
        raise ValueError(f"unknown learning.generation keys {sorted(unknown)}")
    cfg = GenerationConfig(**{**g, "strategies": tuple(g.get("strategies", STRATEGIES))})
    tm = load_trained_model(model_path)
    lig = read_tables(ligands_path)
    # novelty is judged against everything the VAE was trained on (run ligands + extra SMILES)
    known = list(dict.fromkeys([*lig["smiles"].tolist(), *tm.train_smiles]))
    kd = np.full(len(known), np.nan)
    lab = read_tables(labels_path)
    if lab is not None:
        lab = tables.usable(lab)
        kmap = dict(zip(lab["smiles"], lab[tables.FIRST_EXCITED_KD]))
        kd = np.array([kmap.get(s_, np.nan) for s_ in known], float)
    seed = int(settings["seed"])
    space = settings.get("ligand_space")
    filters = LigandFilters.from_config(space) if space else None
    df = generate(tm, cfg, seed, known, kd, ligand_filters=filters)
    metrics = generation_metrics(df, known, seed, compute_fcd=compute_fcd)
    metrics["kd_ensemble"] = tm.ensemble is not None
    metrics["acquisition"] = cfg.acquisition
    metrics["ring_strain_guard"] = cfg.ring_strain_guard
    write_table(df, out_candidates)
    write_json_atomic(out_metrics, metrics)
    return metrics


def learning_curve_from_tables(
    ligands_path: str | Path,
    proxies_path: str | Path | None,
    labels_path: str | Path | None,
    out_tsv: str | Path,
    out_png: str | Path,
    settings: dict,
    physics_proxies_path: TablePaths | None = None,
) -> pd.DataFrame:
    """Rule ``learning_curve`` on the run's own tables (config block ``learning``)."""
    from smmflow.io import read_table, read_tables, write_table
    from smmflow.ml.data import assemble_learning_data

    s = settings
    lc = s["learning_curve"]
    proxies = with_physics_proxies(
        read_table(proxies_path) if proxies_path else None, read_tables(physics_proxies_path)
    )
    data = assemble_learning_data(
        read_table(ligands_path),
        proxies,
        read_table(labels_path) if labels_path else None,
        s["proxy_targets"],
        s["struct_features"],
        s["kd_targets"],
        s["rdkit_proxies"],
    )
    tcfg = TrainConfig(**s["training"], device=s["device"], threads=int(s.get("threads", 0)))
    n_lab = int(np.isfinite(data.kd[:, 0]).sum())
    if n_lab < 4:
        df = pd.DataFrame(
            [
                {
                    "n_train": n,
                    "pretraining": m,
                    "r2": np.nan,
                    "mae": np.nan,
                    "n_test": 0,
                    "kd_model": k,
                    "target": data.kd_names[0],
                    "seed": int(s["seed"]),
                    "split_seed": lc["split_seed"] if np.ndim(lc["split_seed"]) == 0 else lc["split_seed"][0],
                    "status": tables.STATUS_FAILED,
                    "reason": f"only {n_lab} KD labels",
                }
                for k, ms in (("latent_mlp", lc["modes"]), ("gnn", lc.get("gnn_modes", [])))
                for m in ms
                for n in lc["n_trains"]
            ],
            columns=list(tables.LEARNING_CURVE_COLUMNS),
        )
    else:
        df, _ = proxy_pretraining_curve(
            data,
            lc["n_trains"],
            int(lc["n_test"]),
            lc["split_seed"],
            lc.get("model_seeds") or int(s["seed"]),
            dict(s["model"]),
            tcfg,
            dict(s["ensemble"]),
            lc["modes"],
            s.get("representation", "smiles"),
            gnn_modes=lc.get("gnn_modes", []),
            gnn_cfg=dict(s.get("gnn", {})),
        )
    write_table(df, out_tsv)
    plot_learning_curve(df, out_png, f"first excited KD ({n_lab} CASSCF labels in this run)")
    summary = summarise_repeats(df)
    if len(summary) and int(summary["n_repeats"].max()) > 1:
        log.info("median [min, max] over the repeats:\n%s", summary.to_string(index=False))
    return df


def train_vae_from_tables(
    ligands_path: TablePaths,
    proxies_path: TablePaths | None,
    labels_path: TablePaths | None,
    out_model: str | os.PathLike[str],
    out_metrics: str | os.PathLike[str],
    out_history: str | os.PathLike[str],
    settings: dict,
    physics_proxies_path: TablePaths | None = None,
) -> dict:
    """Rule ``train_vae``: read the tables, train the VAE by proxy, fit the KD ensemble on the
    frozen latent (when there are at least ``settings['min_kd_labels']`` labels), write outputs.

    Each table argument is one path or a list of paths whose rows are concatenated (an
    active-learning round adds the re-validated ligands of the earlier rounds)."""
    from smmflow.io import read_tables, write_json_atomic, write_table

    s = settings
    seed = int(s["seed"])
    ligands = read_tables(ligands_path)
    if ligands is None:
        raise ValueError("train_vae needs a ligands table")
    proxies = with_physics_proxies(read_tables(proxies_path), read_tables(physics_proxies_path))
    labels = read_tables(labels_path)
    extra = read_extra_smiles(s.get("extra_smiles_files", []), exclude=ligands["smiles"])
    if len(extra):
        ligands = pd.concat([ligands, extra], ignore_index=True)
    data = assemble_learning_data(
        ligands, proxies, labels, s["proxy_targets"], s["struct_features"], s["kd_targets"], s["rdkit_proxies"]
    )
    tcfg = TrainConfig(**s["training"], device=s["device"], threads=int(s.get("threads", 0)))
    tm, hist, metrics = train_vae(
        data,
        dict(s["model"]),
        tcfg,
        seed,
        struct_names=s["struct_features"],
        representation=s.get("representation", "smiles"),
    )
    n_lab = int(np.isfinite(data.kd[:, 0]).sum())
    kd_metrics: dict = {"n_labels": n_lab, "targets": data.kd_names}
    if n_lab >= int(s["min_kd_labels"]):
        mu = latent_means(tm, data.smiles)
        tm.ensemble = fit_kd_ensemble(mu, data.side, data.kd, seed=seed, **s["ensemble"])
        kd_metrics.update(_kfold_r2(mu, data.side, data.kd, seed, int(s["cv_folds"]), s["ensemble"]))
        kd_metrics["status"] = "fitted"
        if n_lab < 50:
            kd_metrics["warning"] = (
                f"only {n_lab} KD labels: the KD head is a rough guide, its CV R2 is noisy; see the learning curve"
            )
    else:
        kd_metrics["status"] = f"not fitted: {n_lab} KD labels < min_kd_labels={s['min_kd_labels']}"
    metrics["kd_head"] = kd_metrics
    metrics["n_extra_unlabelled_smiles"] = len(extra)
    metrics["proxy_names"] = data.proxy_names
    metrics["side_names"] = data.side_names
    save_trained_model(tm, out_model, extra={"settings": s})
    write_table(hist, out_history)
    write_json_atomic(out_metrics, metrics)
    return metrics
