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
import warnings
from dataclasses import asdict, dataclass, field
from typing import Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch import nn

from smmflow import tables
from smmflow.tokenizer import SmilesVocabulary
from smmflow.vae import SmilesVAE, VAEConfig, pick_device

log = logging.getLogger(__name__)


# --- cheap proxies computable on the fly ---------------------------------------------------
#: RDKit descriptors of the free ligand computed on the fly (no QM): the donor atom is atom 0.
RDKIT_PROXY_NAMES: tuple[str, ...] = (
    "gasteiger_donor_charge",  # Gasteiger-Marsili partial charge on the donor atom, e
    "gasteiger_donor_neighbor_charge_sum",  # summed Gasteiger charge of the donor's neighbours, e
    "donor_degree",  # heavy-atom neighbours of the donor
    "donor_total_h",  # hydrogens on the donor
    "donor_aromatic",  # 1 if the donor is aromatic
    "donor_in_ring",  # 1 if the donor is in a ring
    "mol_logp",  # Crippen logP of the ligand
    "tpsa",  # topological polar surface area, A^2
    "n_heavy",  # heavy atoms
)


TablePaths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]


def rdkit_proxies(smiles: str) -> list[float]:
    """:data:`RDKIT_PROXY_NAMES` for a donor-first SMILES; NaNs if RDKit cannot parse it."""
    from rdkit import Chem
    from rdkit.Chem import Crippen, rdMolDescriptors, rdPartialCharges

    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return [math.nan] * len(RDKIT_PROXY_NAMES)
    rdPartialCharges.ComputeGasteigerCharges(mol)
    d = mol.GetAtomWithIdx(0)

    def q(a) -> float:
        v = a.GetDoubleProp("_GasteigerCharge")
        return v if math.isfinite(v) else 0.0

    return [
        q(d), sum(q(n) for n in d.GetNeighbors()), float(d.GetDegree()), float(d.GetTotalNumHs()),
        float(d.GetIsAromatic()), float(d.IsInRing()), Crippen.MolLogP(mol),
        rdMolDescriptors.CalcTPSA(mol), float(mol.GetNumHeavyAtoms()),
    ]


def rdkit_proxy_table(smiles: Sequence[str]) -> pd.DataFrame:
    """One row of :data:`RDKIT_PROXY_NAMES` per SMILES."""
    return pd.DataFrame([rdkit_proxies(s) for s in smiles], columns=list(RDKIT_PROXY_NAMES))


# --- KD-head side inputs (structure + class) -----------------------------------------------
def axial_field_features(d1: np.ndarray, d2: np.ndarray, angle_deg: np.ndarray) -> np.ndarray:
    """Point-charge-motivated combinations of the axial geometry, shape (N, 4).

    The axial crystal-field parameter of two donors scales as sum_i r_i^-3 (rank-2) and
    r_i^-5 (rank-4); bending the L-Dy-L axis lowers the axial symmetry as cos(angle) -> -1.
    Columns: r1^-3 + r2^-3, r1^-5 + r2^-5, cos(L-Dy-L), |r1 - r2|.
    """
    d1 = np.asarray(d1, float)
    d2 = np.asarray(d2, float)
    a = np.radians(np.asarray(angle_deg, float))
    return np.stack([d1**-3 + d2**-3, d1**-5 + d2**-5, np.cos(a), np.abs(d1 - d2)], axis=1)


AXIAL_FIELD_NAMES: tuple[str, ...] = ("inv_r3_sum", "inv_r5_sum", "cos_l_dy_l", "abs_dr")


def class_one_hot(classes: Sequence[str]) -> np.ndarray:
    """One-hot of :data:`smmflow.tables.LIGAND_CLASSES` (unknown class -> all zeros)."""
    out = np.zeros((len(classes), len(tables.LIGAND_CLASSES)))
    for i, c in enumerate(classes):
        if c in tables.LIGAND_CLASS_CODE:
            out[i, tables.LIGAND_CLASS_CODE[c] - 1] = 1.0
    return out


# --- standardisation -----------------------------------------------------------------------
@dataclass
class Standardizer:
    """Per-column mean/std computed on the training split only, NaN-aware."""

    mean: list[float]
    std: list[float]
    log: list[bool] = field(default_factory=list)

    @classmethod
    def fit(cls, x: np.ndarray, log_columns: Sequence[bool] | None = None) -> "Standardizer":
        x = np.asarray(x, float)
        logs = list(log_columns) if log_columns is not None else [False] * x.shape[1]
        xt = _apply_log(x, logs)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(xt, axis=0) if len(xt) else np.zeros(x.shape[1])
            std = np.nanstd(xt, axis=0) if len(xt) else np.ones(x.shape[1])
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        return cls([float(v) for v in mean], [float(v) for v in std], logs)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (_apply_log(np.asarray(x, float), self.log) - np.array(self.mean)) / np.array(self.std)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(x, float) * np.array(self.std) + np.array(self.mean)
        for j, lg in enumerate(self.log):
            if lg:
                y[..., j] = np.expm1(y[..., j])
        return y

    def inverse_std(self, mean_std: np.ndarray, sd_std: np.ndarray) -> np.ndarray:
        """Propagate a standard deviation in standardised space to physical units (delta method)."""
        sd = np.asarray(sd_std, float) * np.array(self.std)
        mean = np.asarray(mean_std, float) * np.array(self.std) + np.array(self.mean)
        for j, lg in enumerate(self.log):
            if lg:
                sd[..., j] = sd[..., j] * np.exp(mean[..., j])
        return sd


def _apply_log(x: np.ndarray, logs: Sequence[bool]) -> np.ndarray:
    x = np.array(x, float, copy=True)
    for j, lg in enumerate(logs):
        if lg:
            x[:, j] = np.log1p(np.clip(x[:, j], 0.0, None))
    return x


# --- losses --------------------------------------------------------------------------------
def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over entries where ``mask`` is true; 0 (with a graph) if none are.

    Entries outside the mask contribute exactly zero to the loss and its gradient, even when
    the target there is NaN.
    """
    mask = mask.to(pred.dtype)
    safe_target = torch.where(mask > 0, target, pred.detach())
    sq = (pred - safe_target) ** 2 * mask
    return sq.sum() / mask.sum().clamp(min=1.0)


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


# --- data ----------------------------------------------------------------------------------
@dataclass
class LearningData:
    """Everything the VAE trains on, one row per ligand.

    ``proxy`` (N, P) and ``kd`` (N, K) hold NaN where a label is missing; ``side`` (N, S) are the
    KD head's extra inputs in physical units (structure, axial-field combinations, class one-hot)
    with NaN where unknown.
    """

    smiles: list[str]
    ligand_class: list[str]
    proxy: np.ndarray
    proxy_names: list[str]
    side: np.ndarray
    side_names: list[str]
    kd: np.ndarray
    kd_names: list[str]


def side_features(struct: pd.DataFrame, classes: Sequence[str], struct_names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """KD-head side inputs: the structural columns, their axial-field combinations (when the
    two Dy-donor distances and the L-Dy-L angle are among them) and the class one-hot."""
    cols = [np.asarray(struct[c], float)[:, None] for c in struct_names]
    names = list(struct_names)
    geo = ("dist_dy_donor1_a", "dist_dy_donor2_a", "angle_l_dy_l_deg")
    if all(g in struct_names for g in geo):
        cols.append(axial_field_features(struct[geo[0]], struct[geo[1]], struct[geo[2]]))
        names += list(AXIAL_FIELD_NAMES)
    cols.append(class_one_hot(classes))
    names += [f"class_{c}" for c in tables.LIGAND_CLASSES]
    return np.hstack(cols) if cols else np.zeros((len(classes), 0)), names


def assemble_learning_data(
    ligands: pd.DataFrame,
    proxies: pd.DataFrame | None,
    labels: pd.DataFrame | None,
    proxy_targets: Sequence[str] = tables.PROXY_TARGETS,
    struct_features: Sequence[str] = tables.STRUCTURAL_FEATURES,
    kd_targets: Sequence[str] = (tables.FIRST_EXCITED_KD,),
    use_rdkit_proxies: bool = True,
) -> LearningData:
    """Join the ligand, proxy and CASSCF label tables on ``ligand_id`` (failed rows dropped).

    Proxy targets = the requested proxy columns + the structural descriptors (so the model learns
    to predict structure for ligands that were never relaxed) + optionally the on-the-fly RDKit
    proxies. KD labels with several tiers: the first ok row per ligand is used.
    """
    tables.check_columns(ligands, (tables.LIGAND_ID, "smiles", "ligand_class"), "ligands")
    lig = ligands.drop_duplicates(tables.LIGAND_ID).reset_index(drop=True)
    base = lig[[tables.LIGAND_ID, "smiles", "ligand_class"]].copy()
    if proxies is not None and len(proxies):
        tables.check_columns(proxies, (tables.LIGAND_ID, "status"), "proxies")
        px = tables.usable(proxies).drop_duplicates(tables.LIGAND_ID)
        keep = [c for c in (*proxy_targets, *struct_features) if c in px.columns]
        base = base.merge(px[[tables.LIGAND_ID, *keep]], on=tables.LIGAND_ID, how="left")
    if labels is not None and len(labels):
        tables.check_columns(labels, (tables.LIGAND_ID, "status", *kd_targets), "labels")
        lb = tables.usable(labels).drop_duplicates(tables.LIGAND_ID)
        base = base.merge(lb[[tables.LIGAND_ID, *kd_targets]], on=tables.LIGAND_ID, how="left")
    for c in (*proxy_targets, *struct_features, *kd_targets):
        if c not in base.columns:
            base[c] = np.nan
    proxy_names = list(proxy_targets) + list(struct_features)
    proxy = base[proxy_names].to_numpy(float)
    if use_rdkit_proxies:
        rd = rdkit_proxy_table(base["smiles"].tolist())
        proxy = np.hstack([proxy, rd.to_numpy(float)])
        proxy_names += list(RDKIT_PROXY_NAMES)
    side, side_names = side_features(base, base["ligand_class"].tolist(), struct_features)
    return LearningData(
        smiles=base["smiles"].tolist(), ligand_class=base["ligand_class"].tolist(),
        proxy=proxy, proxy_names=proxy_names, side=side, side_names=side_names,
        kd=base[list(kd_targets)].to_numpy(float), kd_names=list(kd_targets),
    )


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/validation split of ``range(n)``; validation has at least 1 row when
    ``val_fraction`` > 0 and n > 1, none when ``val_fraction`` is 0 (then early stopping watches the
    training loss)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if val_fraction <= 0 or n < 2:
        return np.sort(perm), perm[:0]
    n_val = min(max(int(round(val_fraction * n)), 1), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


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
    torch.manual_seed(seed)
    np.random.seed(seed)
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


# --- KD ensemble on the frozen latent --------------------------------------------------------
@dataclass
class KDEnsemble:
    """Bootstrap ensemble of small MLPs: [mu(SMILES), standardised side inputs] -> KD energies.

    The spread of the members is the predictive uncertainty. ``use_latent`` False gives the
    structure-only reference model (no SMILES information).
    """

    members: list[nn.Module]
    in_scaler: Standardizer
    kd_scaler: Standardizer
    use_latent: bool = True

    def predict(self, mu: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the KD predictions in physical units (cm-1), shape (N, K) each."""
        x = self._inputs(mu, side)
        with torch.no_grad():
            xt = torch.as_tensor(x, dtype=torch.float32)
            preds = np.stack([m(xt).numpy() for m in self.members])  # (M, N, K)
        phys = np.stack([self.kd_scaler.inverse(p) for p in preds])
        return phys.mean(0), phys.std(0)

    def _inputs(self, mu: np.ndarray, side: np.ndarray) -> np.ndarray:
        x = np.hstack([mu, side]) if self.use_latent else np.asarray(side, float)
        return np.nan_to_num(self.in_scaler.transform(x), nan=0.0)


def fit_kd_ensemble(mu: np.ndarray, side: np.ndarray, y: np.ndarray, seed: int, n_members: int = 8,
                    hidden: int = 64, epochs: int = 400, learning_rate: float = 3e-3,
                    weight_decay: float = 1e-3, dropout: float = 0.1, log_target: bool = False,
                    use_latent: bool = True) -> KDEnsemble:
    """Fit ``n_members`` MLPs on bootstrap resamples of the labelled rows (NaN labels masked).

    Inputs and targets are standardised with the statistics of these (training) rows only.
    Full-batch Adam with weight decay; deterministic for a given ``seed``.
    """
    y = np.asarray(y, float)
    if y.ndim == 1:
        y = y[:, None]
    ok = np.isfinite(y).any(1)
    if ok.sum() < 2:
        raise ValueError(f"need at least 2 KD labels to fit the KD head, got {int(ok.sum())}")
    mu, side, y = np.asarray(mu, float)[ok], np.asarray(side, float)[ok], y[ok]
    x_raw = np.hstack([mu, side]) if use_latent else side
    in_scaler = Standardizer.fit(x_raw)
    kd_scaler = Standardizer.fit(y, [log_target] * y.shape[1])
    x = torch.as_tensor(np.nan_to_num(in_scaler.transform(x_raw), nan=0.0), dtype=torch.float32)
    ys = kd_scaler.transform(y)
    yt = torch.as_tensor(np.nan_to_num(ys), dtype=torch.float32)
    ym = torch.as_tensor(np.isfinite(ys))
    rng = np.random.default_rng(seed)
    members: list[nn.Module] = []
    for k in range(n_members):
        torch.manual_seed(seed * 1000 + k)
        boot = torch.as_tensor(rng.integers(0, len(x), len(x))) if n_members > 1 else torch.arange(len(x))
        net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.SiLU(), nn.Dropout(dropout),
                            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, y.shape[1]))
        opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        net.train()
        for _ in range(epochs):
            opt.zero_grad()
            loss = masked_mse(net(x[boot]), yt[boot], ym[boot])
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        members.append(net)
    return KDEnsemble(members=members, in_scaler=in_scaler, kd_scaler=kd_scaler, use_latent=use_latent)


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


# --- workflow entry point ------------------------------------------------------------------------
def read_extra_smiles(paths: Sequence[str], exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Unlabelled donor-first ligands from whitespace-separated files (first column; a header line
    whose first token is 'smiles' is skipped). Invalid or duplicate SMILES are dropped (logged).
    Returns ligand rows (ligand_id, smiles, ligand_class) for the VAE's reconstruction loss only."""
    from smmflow.generation import donor_first_ligand, ligand_id

    seen = {str(x) for x in exclude}
    rows, bad = [], 0
    for p in paths:
        with open(p) as fh:
            for line in fh:
                tok = line.split()
                if not tok or tok[0].startswith("#") or tok[0].lower() == "smiles":
                    continue
                try:
                    canon, cls = donor_first_ligand(tok[0])
                except ValueError:
                    bad += 1
                    continue
                if tok[0] in seen or canon in seen:
                    continue
                seen.add(canon)
                rows.append({tables.LIGAND_ID: ligand_id(canon), "smiles": tok[0], "ligand_class": cls})
    if bad:
        log.warning("extra SMILES: %d lines rejected (not a valid donor-first ligand)", bad)
    return pd.DataFrame(rows, columns=[tables.LIGAND_ID, "smiles", "ligand_class"])


def _kfold_r2(mu: np.ndarray, side: np.ndarray, y: np.ndarray, seed: int, folds: int, ens_cfg: dict) -> dict:
    """K-fold cross-validated R2/MAE of the KD ensemble on the labelled rows (first KD column)."""
    from smmflow.learning_curve import mean_absolute_error, r2_score

    lab = np.flatnonzero(np.isfinite(y[:, 0]))
    folds = min(folds, len(lab))
    if folds < 2 or len(lab) < 4:
        return {"cv_r2": None, "cv_mae": None, "cv_note": f"only {len(lab)} labels: no cross-validation"}
    perm = np.random.default_rng(seed).permutation(lab)
    pred = np.full(len(y), np.nan)
    for k in range(folds):
        te = perm[k::folds]
        tr = np.setdiff1d(perm, te)
        ens = fit_kd_ensemble(mu[tr], side[tr], y[tr], seed=seed + k, **ens_cfg)
        pred[te] = ens.predict(mu[te], side[te])[0][:, 0]
    return {"cv_r2": r2_score(y[lab, 0], pred[lab]), "cv_mae": mean_absolute_error(y[lab, 0], pred[lab]),
            "cv_folds": folds, "cv_note": "K-fold CV of the KD ensemble on the frozen latent"}


def train_vae_from_tables(ligands_path: TablePaths, proxies_path: TablePaths | None,
                          labels_path: TablePaths | None, out_model: str | os.PathLike[str],
                          out_metrics: str | os.PathLike[str], out_history: str | os.PathLike[str],
                          settings: dict) -> dict:
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
    proxies = read_tables(proxies_path)
    labels = read_tables(labels_path)
    extra = read_extra_smiles(s.get("extra_smiles_files", []), exclude=ligands["smiles"])
    if len(extra):
        ligands = pd.concat([ligands, extra], ignore_index=True)
    data = assemble_learning_data(ligands, proxies, labels, s["proxy_targets"], s["struct_features"],
                                  s["kd_targets"], s["rdkit_proxies"])
    tcfg = TrainConfig(**s["training"], device=s["device"], threads=int(s.get("threads", 0)))
    tm, hist, metrics = train_vae(data, dict(s["model"]), tcfg, seed, struct_names=s["struct_features"],
                                  representation=s.get("representation", "smiles"))
    n_lab = int(np.isfinite(data.kd[:, 0]).sum())
    kd_metrics: dict = {"n_labels": n_lab, "targets": data.kd_names}
    if n_lab >= int(s["min_kd_labels"]):
        mu = latent_means(tm, data.smiles)
        tm.ensemble = fit_kd_ensemble(mu, data.side, data.kd, seed=seed, **s["ensemble"])
        kd_metrics.update(_kfold_r2(mu, data.side, data.kd, seed, int(s["cv_folds"]), s["ensemble"]))
        kd_metrics["status"] = "fitted"
        if n_lab < 50:
            kd_metrics["warning"] = (f"only {n_lab} KD labels: the KD head is a rough guide, its CV R2 "
                                     "is noisy; see the learning curve")
    else:
        kd_metrics["status"] = f"not fitted: {n_lab} KD labels < min_kd_labels={s['min_kd_labels']}"
    metrics["kd_head"] = kd_metrics
    metrics["n_extra_unlabelled_smiles"] = int(len(extra))
    metrics["proxy_names"] = data.proxy_names
    metrics["side_names"] = data.side_names
    save_trained_model(tm, out_model, extra={"settings": s})
    write_table(hist, out_history)
    write_json_atomic(out_metrics, metrics)
    return metrics
