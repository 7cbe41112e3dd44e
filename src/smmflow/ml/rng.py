"""Seeded randomness without global side effects.

Model initialisation and dropout draw from torch's default generator; the fitting functions seed it
(from the config's ``learning.seed``) inside :func:`preserves_torch_rng`, which restores the caller's
generator state afterwards, so no global random state is changed by calling them.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

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
