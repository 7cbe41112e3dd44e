"""Choice of the CPU kernels of the OpenBLAS that PySCF's wheels bundle.

PySCF's Linux wheels ship their own OpenBLAS 0.3.3 (``pyscf/lib/libopenblas-r0-*.3.3.so``, used by
``libnp_helper``/``libao2mo``/``libcvhf`` and by ``pyscf.lib.dot``). That release predates AMD Zen 3/4
(CPU family 0x19): on such a CPU it falls back to its generic "Barcelona" SSE2 kernels
(``OPENBLAS_VERBOSE=2`` prints ``Core: Barcelona``), whose dgemm is about 3x slower than the AVX2
"Haswell" kernels on the same machine (benchmarks/bench_native_blas.py). numpy's newer OpenBLAS
detects the CPU correctly and is not touched here.

:func:`select_pyscf_blas_kernel` loads PySCF's library with ``OPENBLAS_CORETYPE=Haswell`` set only
for that load, when the CPU has AVX2 and FMA and the user has not chosen a core type. It must run
before anything imports ``pyscf.lib``; after that it is a no-op (the kernel is fixed at load time).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

#: OpenBLAS core type used for PySCF's bundled library on CPUs with AVX2 + FMA
PYSCF_CORETYPE_AVX2 = "Haswell"
_REQUIRED_FLAGS = frozenset({"avx2", "fma"})
_CHOICE: str | None = None
_DONE = False


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags of the first processor in ``/proc/cpuinfo`` (empty if unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def coretype_for(flags: frozenset[str], user_choice: str | None) -> str | None:
    """The core type to force on PySCF's OpenBLAS: the user's ``OPENBLAS_CORETYPE`` wins (None: leave
    it to OpenBLAS), else Haswell on an AVX2+FMA CPU, else None."""
    if user_choice:
        return None
    return PYSCF_CORETYPE_AVX2 if _REQUIRED_FLAGS <= flags else None


def select_pyscf_blas_kernel() -> str | None:
    """Load ``pyscf.lib`` with AVX2 OpenBLAS kernels where they apply; returns the core type forced
    (None if none was, or if ``pyscf.lib`` was already loaded). Idempotent."""
    global _CHOICE, _DONE
    if _DONE:
        return _CHOICE
    _DONE = True
    if "pyscf.lib" in sys.modules:
        log.debug("pyscf.lib already loaded: its OpenBLAS kernels are fixed")
        return None
    choice = coretype_for(cpu_flags(), os.environ.get("OPENBLAS_CORETYPE"))
    if choice is None:
        return None
    import numpy  # noqa: F401  (numpy's own OpenBLAS is loaded first and keeps its detection)

    os.environ["OPENBLAS_CORETYPE"] = choice
    try:
        import pyscf.lib  # noqa: F401  (dlopen of the bundled OpenBLAS reads the variable now)
    finally:
        del os.environ["OPENBLAS_CORETYPE"]
    _CHOICE = choice
    log.info("PySCF's bundled OpenBLAS: %s kernels", choice)
    return choice
