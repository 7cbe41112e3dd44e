"""Bootstrap ensemble of KD heads on the frozen VAE latent (prediction + uncertainty)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from smmflow.ml.data import Standardizer
from smmflow.ml.metrics import masked_mse
from smmflow.ml.rng import preserves_torch_rng


#: standardised inputs are clipped to +-this many training standard deviations. With a handful of
#: labels some input columns are nearly constant, so a new ligand sits thousands of "standard
#: deviations" away and the MLPs extrapolate to absurd KD2 (1.9e6 cm-1 in a default run)
INPUT_CLIP_SD = 5.0


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
        return np.clip(np.nan_to_num(self.in_scaler.transform(x), nan=0.0), -INPUT_CLIP_SD, INPUT_CLIP_SD)


@preserves_torch_rng
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
    x = torch.as_tensor(np.clip(np.nan_to_num(in_scaler.transform(x_raw), nan=0.0), -INPUT_CLIP_SD, INPUT_CLIP_SD),
                        dtype=torch.float32)
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


def _kfold_r2(mu: np.ndarray, side: np.ndarray, y: np.ndarray, seed: int, folds: int, ens_cfg: dict) -> dict:
    """K-fold cross-validated R2/MAE of the KD ensemble on the labelled rows (first KD column)."""
    from smmflow.ml.metrics import mean_absolute_error, r2_score

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
