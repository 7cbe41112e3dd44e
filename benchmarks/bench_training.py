"""Training throughput of the SMILES VAE (SMILES/s) on this machine's CPU cores.

    PYTHONPATH=src python benchmarks/bench_training.py [--n 2000] [--epochs 3] [--repeats 3]

Trains the default-config model (config/config.yaml) on the first ``--n`` SMILES of the
published excerpt, with 1 torch thread (the baseline, measured in the same run) and with
``--threads`` threads. Throughput of an epoch = training SMILES / wall time of that epoch
(excluding the first epoch, which pays one-off costs); the figure is the median over epochs and
repeats. Also times KD-ensemble fitting (1000 rows) and KD prediction. Prints a small table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from smmflow.ml.heads.ensemble import fit_kd_ensemble
from smmflow.ml.published_benchmark import published_learning_data
from smmflow.ml.vae.trainer import TrainConfig, train_vae

ROOT = Path(__file__).resolve().parents[1]


def epoch_throughputs(data, settings: dict, threads: int, epochs: int, seed: int) -> list[float]:
    torch.set_num_threads(threads)
    cfg = TrainConfig(**{**settings["training"], "epochs": epochs, "patience": 10**6}, threads=threads, device="cpu")
    _, hist, met = train_vae(data, dict(settings["model"]), cfg, seed)
    wall = np.diff(hist["elapsed_s"].to_numpy())  # epochs 1.. (epoch 0 has one-off costs)
    return [met["n_train"] / w for w in wall]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="SMILES to train on")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    s = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["learning"]
    full = published_learning_data(ROOT / "resources/published/kramers_labelled_excerpt.txt", None)
    import dataclasses

    k = slice(0, args.n)
    data = dataclasses.replace(full, smiles=full.smiles[k], ligand_class=full.ligand_class[k], proxy=full.proxy[k],
                               side=full.side[k], kd=full.kd[k])
    print(f"# model {s['model']}, batch {s['training']['batch_size']}, {len(data.smiles)} SMILES, "
          f"{args.repeats} repeats x {args.epochs - 1} timed epochs; torch {torch.__version__}")
    res = {}
    for threads in sorted({1, args.threads}):
        tp = []
        for r in range(args.repeats):
            tp += epoch_throughputs(data, s, threads, args.epochs, seed=r)
        res[threads] = statistics.median(tp)
        print(f"train  threads={threads}: median {res[threads]:8.1f} SMILES/s  (min {min(tp):.1f}, max {max(tp):.1f})")
    if args.threads != 1:
        print(f"speed-up {args.threads} threads / 1 thread (baseline): {res[args.threads] / res[1]:.2f}x")
    torch.set_num_threads(args.threads)
    y = full.kd
    idx = np.arange(min(1000, len(y)))
    times = []
    for r in range(args.repeats):
        t = time.perf_counter()
        fit_kd_ensemble(np.zeros((len(idx), 0)), full.side[idx], y[idx], seed=r, use_latent=False, **s["ensemble"])
        times.append(time.perf_counter() - t)
    print(f"KD ensemble fit ({len(idx)} rows, {s['ensemble']['n_members']} members x {s['ensemble']['epochs']} steps): "
          f"median {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
