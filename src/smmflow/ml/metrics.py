"""Regression metrics and the masked loss shared by the learning modules."""

from __future__ import annotations

import numpy as np
import torch


def r2_score(y: np.ndarray, p: np.ndarray) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (NaN for fewer than 2 points)."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) < 2:
        return float("nan")
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return float("nan") if ss_tot == 0 else 1.0 - float(((y - p) ** 2).sum()) / ss_tot


def mean_absolute_error(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(p, float)))) if len(y) else float("nan")


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
