"""Seeded randomness without global side effects.

Model initialisation and dropout draw from torch's default generator; the fitting functions seed it
(from the config's ``learning.seed``) inside :func:`preserves_torch_rng`, which restores the caller's
generator state afterwards, so no global random state is changed by calling them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


def preserves_torch_rng(fn: F) -> F:
    """Run ``fn`` on a fork of torch's default generators (CPU and every visible CUDA device)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


#: torch CPU threads (intra-op) of every computation that feeds a result: VAE training, the KD
#: ensemble, the learning curve, generation, predictions. CPU kernels split their sums by thread
#: count (MKL GEMM, ATen's parallel reductions), so the same seed trained with 2 threads gives weights
#: that differ from 1 thread by 1e-8..1e-6 (measured on the tiny config: every tensor of model.pt
#: differs, and the predicted KD2 of a candidate moves by ~1e-4 cm-1), and such differences can flip a
#: sampled token or a ranking. One thread makes the results independent of ``learning.threads``
#: (which then only reserves cores) and costs nothing at this model size (1 thread was already the
#: fastest setting on a 2-core machine). GPU runs (``learning.device: cuda``) are not covered.
RESULT_THREADS: int = 1


def pin_result_threads() -> None:
    """Run torch's CPU kernels on :data:`RESULT_THREADS` threads (call before computing a result)."""
    torch.set_num_threads(RESULT_THREADS)
