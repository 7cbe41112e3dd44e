"""Seed spread of the cheap published-benchmark lines (no VAE): structure-only MLP and graph KD head.

    PYTHONPATH=src python benchmarks/published_seed_spread.py --seeds 0,1,2 --n 500,1000,2000,3000 [--drop 3.0]

Same protocol, split (split_seed 0, 1000 held-out rows) and settings as the published_benchmark rule
(config/config.yaml, learning.published_benchmark); ``--drop`` sets max_dy_donor_distance_a. Prints
one table per seed and the median R2/MAE over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from smmflow.ml.learning_curve import proxy_pretraining_curve
from smmflow.ml.published_benchmark import published_learning_data
from smmflow.ml.vae.trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--n", default="500,1000,2000,3000")
    ap.add_argument("--drop", type=float, default=None, help="max Dy-donor distance (A) of a labelled row")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["learning"]["published_benchmark"]
    full = published_learning_data(ROOT / cfg["labels"], ROOT / cfg["proxies"], kd_targets=cfg["gnn_targets"])
    if a.drop is not None:
        i1, i2 = full.side_names.index("dist_dy_donor1_a"), full.side_names.index("dist_dy_donor2_a")
        kd = full.kd.copy()
        kd[np.isfinite(kd[:, 0]) & (np.maximum(full.side[:, i1], full.side[:, i2]) > a.drop)] = np.nan
        full = dataclasses.replace(full, kd=kd)
    data = dataclasses.replace(full, kd=full.kd[:, :1], kd_names=full.kd_names[:1])
    out = []
    for seed in (int(s) for s in a.seeds.split(",")):
        df, _ = proxy_pretraining_curve(data, [int(n) for n in a.n.split(",")], int(cfg["n_test"]),
                                        int(cfg["split_seed"]), seed, {}, TrainConfig(), dict(cfg["ensemble"]),
                                        modes=["structure_only"], gnn_modes=["no_vae"], gnn_cfg=dict(cfg["gnn"]),
                                        gnn_targets=full.kd)
        print(df[["n_train", "pretraining", "kd_model", "r2", "mae", "seed"]].to_string(index=False), flush=True)
        out.append(df)
    allr = pd.concat(out)
    print(allr.groupby(["kd_model", "pretraining", "n_train"])[["r2", "mae"]].median().round(3).to_string())


if __name__ == "__main__":
    main()
