"""The learning benchmark on the published labels (resources/published)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from smmflow import tables
from smmflow.ml.data import LearningData
from smmflow.ml.learning_curve import (
    PRETRAINING_MODES,
    plot_learning_curve,
    proxy_pretraining_curve,
)
from smmflow.ml.vae.trainer import TrainConfig
from smmflow.tables import PUBLISHED_PROXY_TARGETS, PUBLISHED_STRUCT_FEATURES, PUBLISHED_STRUCT_MAP, RDKIT_PROXY_NAMES

log = logging.getLogger(__name__)


def read_published_labels(path: str | Path) -> pd.DataFrame:
    """The labelled excerpt mapped onto the project's names (class code -> O/N/O-/N-,
    KDn_cm1 -> kdn_cm1, structural columns -> lower-case names)."""
    raw = pd.read_csv(path, sep=r"\s+")
    need = ("smiles", "ligand_class", "KD2_cm1", *PUBLISHED_STRUCT_MAP)
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    out = raw.rename(columns={**PUBLISHED_STRUCT_MAP, **{f"KD{i}_cm1": f"kd{i}_cm1" for i in range(2, 9)}})
    codes = out["ligand_class"].astype(float).round().astype(int)
    bad = ~codes.isin(list(tables.LIGAND_CLASS_CODE.values()))
    if bad.any():
        raise ValueError(f"{path}: unknown ligand_class codes {sorted(set(codes[bad]))}")
    out["ligand_class"] = [tables.LIGAND_CLASSES[c - 1] for c in codes]
    return out


def read_published_proxies(path: str | Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=r"\s+")
    for c in ("smiles", *PUBLISHED_PROXY_TARGETS):
        if c not in raw.columns:
            raise ValueError(f"{path}: missing column {c}")
    return raw


def _class_of_smiles(smiles: str) -> str:
    from rdkit import Chem

    m = Chem.MolFromSmiles(smiles)
    if m is None:
        return ""
    a = m.GetAtomWithIdx(0)
    return a.GetSymbol() + ("-" if a.GetFormalCharge() == -1 else "")


def published_learning_data(labels_path: str | Path, proxies_path: str | Path | None,
                            kd_targets: Sequence[str] = (tables.FIRST_EXCITED_KD,)) -> LearningData:
    """LearningData of the published excerpt: every SMILES of both files (pretraining pool),
    proxy targets = published prop_1..3 (where present) + the structural columns (where present)
    + on-the-fly RDKit descriptors; KD labels from the labelled excerpt."""
    from smmflow.ml.data import rdkit_proxy_table, side_features

    lab = read_published_labels(labels_path)
    frame = lab[["smiles", "ligand_class", *PUBLISHED_STRUCT_FEATURES, *kd_targets]].copy()
    if proxies_path is not None:
        px = read_published_proxies(proxies_path)
        frame = frame.merge(px[["smiles", *PUBLISHED_PROXY_TARGETS]].drop_duplicates("smiles"),
                            on="smiles", how="outer")
        new = frame["ligand_class"].isna()
        frame.loc[new, "ligand_class"] = [_class_of_smiles(s) for s in frame.loc[new, "smiles"]]
        frame = frame[frame["ligand_class"].isin(tables.LIGAND_CLASSES)].reset_index(drop=True)
    else:
        for c in PUBLISHED_PROXY_TARGETS:
            frame[c] = np.nan
    rd = rdkit_proxy_table(frame["smiles"].tolist())
    proxy_names = [*PUBLISHED_PROXY_TARGETS, *PUBLISHED_STRUCT_FEATURES, *RDKIT_PROXY_NAMES]
    proxy = np.hstack([frame[[*PUBLISHED_PROXY_TARGETS, *PUBLISHED_STRUCT_FEATURES]].to_numpy(float), rd.to_numpy(float)])
    side, side_names = side_features(frame, frame["ligand_class"].tolist(), PUBLISHED_STRUCT_FEATURES)
    return LearningData(smiles=frame["smiles"].tolist(), ligand_class=frame["ligand_class"].tolist(),
                        proxy=proxy, proxy_names=proxy_names, side=side, side_names=side_names,
                        kd=frame[list(kd_targets)].to_numpy(float), kd_names=list(kd_targets))


def run_published_benchmark(labels_path: str | Path, proxies_path: str | Path | None, out_tsv: str | Path,
                            out_png: str | Path | None, out_json: str | Path | None, *, n_trains: Sequence[int],
                            n_test: int, split_seed: int, seed: int, model_cfg: dict, train_cfg: TrainConfig,
                            ensemble_cfg: dict, modes: Sequence[str] = PRETRAINING_MODES,
                            gnn_modes: Sequence[str] = (), gnn_cfg: dict | None = None,
                            gnn_targets: Sequence[str] = (tables.FIRST_EXCITED_KD,),
                            max_dy_donor_distance_a: float | None = None) -> pd.DataFrame:
    """The published-excerpt learning curve, written atomically to ``out_tsv`` (+ plot, metrics).

    ``max_dy_donor_distance_a``: labelled rows whose ligand drifted away from Dy (either Dy-donor
    distance above it) lose their KD label, i.e. leave both the test set and the training pool
    (their SMILES stay in the unlabelled VAE pretraining set); None keeps every row.
    ``gnn_targets``: KD columns the graph head is trained on (first: KD2, the scored one).
    """
    import time

    from smmflow.io import write_json_atomic, write_table

    t0 = time.perf_counter()
    targets = list(dict.fromkeys([tables.FIRST_EXCITED_KD, *gnn_targets]))
    if gnn_targets and gnn_targets[0] != tables.FIRST_EXCITED_KD:
        raise ValueError(f"gnn_targets must start with {tables.FIRST_EXCITED_KD}")
    full = published_learning_data(labels_path, proxies_path, kd_targets=targets)
    n_detached = 0
    if max_dy_donor_distance_a is not None:
        d = np.nanmax(full.side[:, [full.side_names.index("dist_dy_donor1_a"),
                                    full.side_names.index("dist_dy_donor2_a")]], axis=1, initial=-np.inf)
        detached = np.isfinite(full.kd[:, 0]) & (d > max_dy_donor_distance_a)
        n_detached = int(detached.sum())
        kd = np.array(full.kd, float, copy=True)  # the frame's array may be a read-only view
        kd[detached] = np.nan
        full = dataclasses.replace(full, kd=kd)
        log.info("%d labelled rows with a Dy-donor distance > %.2f A dropped from test and training",
                 n_detached, max_dy_donor_distance_a)
    data = dataclasses.replace(full, kd=full.kd[:, :1], kd_names=full.kd_names[:1])
    df, extra = proxy_pretraining_curve(data, n_trains, n_test, split_seed, seed, model_cfg, train_cfg,
                                        ensemble_cfg, modes, gnn_modes=gnn_modes, gnn_cfg=gnn_cfg,
                                        gnn_targets=full.kd[:, [targets.index(t) for t in gnn_targets]]
                                        if gnn_targets else None)
    extra["max_dy_donor_distance_a"] = max_dy_donor_distance_a
    extra["n_detached_rows_dropped"] = n_detached
    extra["gnn_targets"] = list(gnn_targets)
    write_table(df, out_tsv)
    if out_png is not None:
        plot_learning_curve(df, out_png, "published excerpt: first excited KD (KD2_cm1)")
    if out_json is not None:
        write_json_atomic(out_json, {**extra, "n_ligands_pool": len(data.smiles), "proxy_names": data.proxy_names,
                                     "side_names": data.side_names, "wall_s": time.perf_counter() - t0,
                                     "model": model_cfg, "train": dataclasses.asdict(train_cfg),
                                     "ensemble": ensemble_cfg, "split_seed": split_seed, "seed": seed})
    return df
