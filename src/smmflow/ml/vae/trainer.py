"""Training by proxy: data assembly, masked multi-task losses, standardisation, KL annealing,
early stopping, and a bootstrap ensemble of KD heads for predictions with an uncertainty.

Conventions
- Missing labels are NaN in the target matrices; every loss is masked so that a missing label
  contributes neither to the loss nor to the gradient.
- Targets are standardised with statistics of the training split only (:class:`Standardizer`).
- Every random choice takes an explicit ``seed``.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from smmflow import tables
from smmflow.ml.data import LearningData, Standardizer, split_indices
from smmflow.ml.heads.ensemble import KDEnsemble
from smmflow.ml.metrics import masked_mse
from smmflow.ml.rng import preserves_torch_rng
from smmflow.ml.tokenizer import SmilesVocabulary
from smmflow.ml.vae.model import SmilesVAE, VAEConfig, pick_device

log = logging.getLogger(__name__)


def reconstruction_loss(logits: torch.Tensor, ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Per-token cross entropy of the teacher-forced decoder, padding ignored."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                       ignore_index=pad_id)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), summed over latent dims, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def kl_weight(epoch: int, warmup_epochs: int, beta_max: float) -> float:
    """Linear KL annealing: 0 at epoch 0, ``beta_max`` from ``warmup_epochs`` on."""
    if warmup_epochs <= 0:
        return beta_max
    return beta_max * min(1.0, epoch / warmup_epochs)


# --- training ------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Training hyper-parameters (config block ``learning``)."""

    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 2e-3
    kl_beta_max: float = 0.05
    kl_warmup_epochs: int = 10
    proxy_weight: float = 1.0
    kd_weight: float = 1.0
    patience: int = 8
    val_fraction: float = 0.1
    grad_clip: float = 5.0
    kd_log_target: bool = False
    device: str = "auto"
    threads: int = 0  # 0: leave torch's default


@dataclass
class TrainedModel:
    """A trained VAE with what is needed to use it: vocabulary, standardisers, KD ensemble."""

    model: SmilesVAE
    vocab: SmilesVocabulary
    proxy_scaler: Standardizer
    side_scaler: Standardizer
    kd_scaler: Standardizer
    proxy_names: list[str]
    side_names: list[str]
    kd_names: list[str]
    struct_names: list[str]
    train_smiles: list[str]
    ensemble: "KDEnsemble | None" = None


def _tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, np.float32), device=device)


def encode_ids(vocab: SmilesVocabulary, smiles: Sequence[str], max_len: int) -> torch.Tensor:
    return torch.tensor([vocab.encode(s, max_len) for s in smiles], dtype=torch.long)


@preserves_torch_rng
def train_vae(data: LearningData, model_cfg: dict, cfg: TrainConfig, seed: int,
              struct_names: Sequence[str] = tables.STRUCTURAL_FEATURES,
              vocab: SmilesVocabulary | None = None,
              representation: str = "smiles") -> tuple[TrainedModel, pd.DataFrame, dict]:
    """Train the VAE with masked proxy and KD heads; early stopping on the validation loss.

    Returns the trained model (best validation epoch restored), the per-epoch history and
    metrics (losses, label counts, KD validation errors when there are enough labels).
    """
    n = len(data.smiles)
    if n < 2:
        raise ValueError(f"need at least 2 ligands to train, got {n}")
    torch.manual_seed(seed)  # on a fork of the global generator (preserves_torch_rng)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    vocab = vocab or SmilesVocabulary.from_smiles(data.smiles, representation)
    max_len = max(vocab.encoded_length(s) for s in data.smiles)
    max_len = max(int(model_cfg.get("max_len", 0)), max_len)
    tr, va = split_indices(n, cfg.val_fraction, seed)

    proxy_scaler = Standardizer.fit(data.proxy[tr])
    side_scaler = Standardizer.fit(data.side[tr])
    kd_scaler = Standardizer.fit(data.kd[tr], [cfg.kd_log_target] * data.kd.shape[1])
    proxy_std = proxy_scaler.transform(data.proxy)
    side_std = np.nan_to_num(side_scaler.transform(data.side), nan=0.0)
    kd_std = kd_scaler.transform(data.kd)

    mcfg = VAEConfig(vocab_size=len(vocab), max_len=max_len, n_proxy=data.proxy.shape[1],
                     n_struct=data.side.shape[1], n_kd=data.kd.shape[1],
                     **{k: v for k, v in model_cfg.items() if k not in ("max_len",)})
    model = SmilesVAE(mcfg, pad_id=vocab.pad_id).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)

    ids = encode_ids(vocab, data.smiles, max_len).to(device)
    P = _tensor(np.nan_to_num(proxy_std), device)
    Pm = torch.as_tensor(np.isfinite(proxy_std), device=device)
    S = _tensor(side_std, device)
    K = _tensor(np.nan_to_num(kd_std), device)
    Km = torch.as_tensor(np.isfinite(kd_std), device=device)
    gen = torch.Generator().manual_seed(seed)

    def run_batch(idx: torch.Tensor, beta: float, train: bool) -> dict[str, float]:
        out = model(ids[idx], S[idx])
        rec = reconstruction_loss(out["logits"], ids[idx], vocab.pad_id)
        kl = kl_divergence(out["mu"], out["logvar"])
        lp = masked_mse(out["proxy"], P[idx], Pm[idx]) if mcfg.n_proxy else rec.new_zeros(())
        lk = masked_mse(out["kd"], K[idx], Km[idx])
        loss = rec + beta * kl + cfg.proxy_weight * lp + cfg.kd_weight * lk
        if train:
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
        return {k: float(v.detach()) for k, v in (("loss", loss), ("recon", rec), ("kl", kl), ("proxy", lp), ("kd", lk))}

    history: list[dict] = []
    best, best_state, bad = math.inf, copy.deepcopy(model.state_dict()), 0
    t0 = time.perf_counter()
    n_seen = 0
    tr_t = torch.as_tensor(tr)
    va_t = torch.as_tensor(va)
    for epoch in range(cfg.epochs):
        beta = kl_weight(epoch, cfg.kl_warmup_epochs, cfg.kl_beta_max)
        model.train()
        perm = tr_t[torch.randperm(len(tr_t), generator=gen)]
        sums: dict[str, float] = {}
        nb = 0
        for b in range(0, len(perm), cfg.batch_size):
            r = run_batch(perm[b:b + cfg.batch_size].to(device), beta, True)
            for k, v in r.items():
                sums[k] = sums.get(k, 0.0) + v
            nb += 1
            n_seen += len(perm[b:b + cfg.batch_size])
        model.eval()
        with torch.no_grad():
            vr = run_batch(va_t.to(device), beta, False) if len(va_t) else {"loss": sums["loss"] / nb}
        # selection criterion: the full objective at the final beta (comparable across epochs)
        crit = vr.get("recon", 0.0) + cfg.kl_beta_max * vr.get("kl", 0.0) + cfg.proxy_weight * vr.get("proxy", 0.0) + cfg.kd_weight * vr.get("kd", 0.0) if len(va_t) else vr["loss"]
        row = {"epoch": epoch, "beta": beta, **{f"train_{k}": v / nb for k, v in sums.items()},
               **{f"val_{k}": v for k, v in vr.items()}, "val_criterion": crit,
               "elapsed_s": time.perf_counter() - t0}
        history.append(row)
        log.info("epoch %d %s", epoch, {k: round(v, 4) for k, v in row.items() if isinstance(v, float)})
        if crit < best - 1e-4:
            best, best_state, bad = crit, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    wall = time.perf_counter() - t0
    tm = TrainedModel(model=model, vocab=vocab, proxy_scaler=proxy_scaler, side_scaler=side_scaler,
                      kd_scaler=kd_scaler, proxy_names=list(data.proxy_names),
                      side_names=list(data.side_names), kd_names=list(data.kd_names),
                      struct_names=list(struct_names), train_smiles=list(data.smiles))
    metrics = {
        "n_ligands": n, "n_train": int(len(tr)), "n_val": int(len(va)),
        "n_proxy_labelled": int(np.isfinite(data.proxy).any(1).sum()),
        "n_kd_labelled": int(np.isfinite(data.kd).any(1).sum()),
        "n_kd_labelled_train": int(np.isfinite(data.kd[tr]).any(1).sum()),
        "epochs_run": len(history), "best_val_criterion": best, "wall_s": wall,
        "train_smiles_per_s": n_seen / wall if wall > 0 else math.nan,
        "device": str(device), "seed": seed, "vocab_size": len(vocab), "max_len": max_len,
        "val_reconstruction_token_accuracy": token_accuracy(tm, [data.smiles[i] for i in va]) if len(va) else math.nan,
    }
    return tm, pd.DataFrame(history), metrics


@torch.no_grad()
def token_accuracy(tm: TrainedModel, smiles: Sequence[str]) -> float:
    """Teacher-forced next-token accuracy of the decoder from the latent mean (non-pad tokens)."""
    if not smiles:
        return math.nan
    m = tm.model
    dev = next(m.parameters()).device
    ids = encode_ids(tm.vocab, smiles, m.cfg.max_len).to(dev)
    mu, _ = m.encode(ids)
    pred = m.decode_logits(mu, ids).argmax(-1)
    tgt = ids[:, 1:]
    mask = tgt != tm.vocab.pad_id
    return float(((pred == tgt) & mask).sum() / mask.sum())


@torch.no_grad()
def latent_means(tm: TrainedModel, smiles: Sequence[str], batch_size: int = 512) -> np.ndarray:
    """Posterior means mu(SMILES), shape (N, latent). The recurrent encoder takes any length, so
    SMILES longer than the training ``max_len`` are encoded too (padded to the batch's longest)."""
    m = tm.model
    dev = next(m.parameters()).device
    out = []
    for b in range(0, len(smiles), batch_size):
        chunk = list(smiles[b:b + batch_size])
        width = max([m.cfg.max_len] + [tm.vocab.encoded_length(s) for s in chunk])
        ids = torch.tensor([tm.vocab.encode(s, width) for s in chunk], dtype=torch.long, device=dev)
        out.append(m.encode(ids)[0].cpu().numpy())
    return np.vstack(out) if out else np.zeros((0, m.cfg.latent_dim))


# --- checkpoint ----------------------------------------------------------------------------
def save_trained_model(tm: TrainedModel, path: str | os.PathLike[str], extra: dict | None = None) -> None:
    """Write model + vocabulary + scalers + KD ensemble to ``path`` atomically (torch.save)."""
    from smmflow.io import atomic_path

    ens = None
    if tm.ensemble is not None:
        ens = {"members": [m.state_dict() for m in tm.ensemble.members],
               "arch": [[l.in_features, l.out_features] for l in tm.ensemble.members[0] if isinstance(l, nn.Linear)],
               "in_scaler": asdict(tm.ensemble.in_scaler), "kd_scaler": asdict(tm.ensemble.kd_scaler),
               "use_latent": tm.ensemble.use_latent}
    blob = {
        "format": "smmflow-vae-1", "config": tm.model.cfg.to_dict(), "state_dict": tm.model.state_dict(),
        "vocab": tm.vocab.to_dict(), "proxy_scaler": asdict(tm.proxy_scaler),
        "side_scaler": asdict(tm.side_scaler), "kd_scaler": asdict(tm.kd_scaler),
        "proxy_names": tm.proxy_names, "side_names": tm.side_names, "kd_names": tm.kd_names,
        "struct_names": tm.struct_names, "train_smiles": tm.train_smiles, "ensemble": ens,
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_trained_model(path: str | os.PathLike[str], device: str = "cpu") -> TrainedModel:
    """Inverse of :func:`save_trained_model`."""
    blob = torch.load(path, map_location=device, weights_only=False)
    if blob.get("format") != "smmflow-vae-1":
        raise ValueError(f"{path}: not a smmflow VAE checkpoint")
    vocab = SmilesVocabulary.from_dict(blob["vocab"])
    model = SmilesVAE(VAEConfig(**blob["config"]), pad_id=vocab.pad_id)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    ens = None
    if blob["ensemble"] is not None:
        e = blob["ensemble"]
        members = []
        (i0, h), _, (_, k) = e["arch"]
        for sd in e["members"]:
            net = nn.Sequential(nn.Linear(i0, h), nn.SiLU(), nn.Dropout(0.0), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, k))
            net.load_state_dict(sd)
            net.eval()
            members.append(net)
        ens = KDEnsemble(members, Standardizer(**e["in_scaler"]), Standardizer(**e["kd_scaler"]), e["use_latent"])
    return TrainedModel(model=model, vocab=vocab, proxy_scaler=Standardizer(**blob["proxy_scaler"]),
                        side_scaler=Standardizer(**blob["side_scaler"]), kd_scaler=Standardizer(**blob["kd_scaler"]),
                        proxy_names=blob["proxy_names"], side_names=blob["side_names"],
                        kd_names=blob["kd_names"], struct_names=blob["struct_names"],
                        train_smiles=blob["train_smiles"], ensemble=ens)
