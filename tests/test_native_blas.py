"""smmflow.native_blas: AVX2 kernels for PySCF's bundled OpenBLAS, numpy's own left alone."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from smmflow import native_blas


def test_cpu_flags_reads_the_flags_line(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 fma avx512f\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert native_blas.cpu_flags(f) == frozenset({"fpu", "sse2", "avx2", "fma", "avx512f"})
    assert native_blas.cpu_flags(tmp_path / "missing") == frozenset()


def test_coretype_choice():
    assert native_blas.coretype_for(frozenset({"avx2", "fma", "sse2"}), None) == "Haswell"
    assert native_blas.coretype_for(frozenset({"avx2", "fma"}), "Zen") is None  # the user's choice wins
    assert native_blas.coretype_for(frozenset({"sse2", "avx"}), None) is None  # no AVX2: OpenBLAS decides


CHILD = r"""
import ctypes, glob, json, os
from smmflow import native_blas
forced = native_blas.select_pyscf_blas_kernel()
import numpy, pyscf
lib = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(pyscf.__file__), "lib", "libopenblas*"))[0])
lib.openblas_get_corename.restype = ctypes.c_char_p
print(json.dumps({"forced": forced, "pyscf_core": lib.openblas_get_corename().decode(),
                  "env_left": "OPENBLAS_CORETYPE" in os.environ, "again": native_blas.select_pyscf_blas_kernel()}))
"""


def _bundled_openblas() -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec("pyscf")
    return glob.glob(os.path.join(os.path.dirname(spec.origin), "lib", "libopenblas*")) if spec else []


def test_select_loads_pyscf_openblas_with_haswell_kernels_in_a_fresh_process():
    if native_blas.coretype_for(native_blas.cpu_flags(), None) is None:
        pytest.skip("CPU without AVX2+FMA")
    if not _bundled_openblas():
        pytest.skip("this PySCF build has no bundled OpenBLAS")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["forced"] == "Haswell"
    assert res["pyscf_core"].lower() == "haswell"
    assert res["env_left"] is False  # only that one library load saw the variable
    assert res["again"] == "Haswell"  # idempotent


def test_select_is_a_no_op_once_pyscf_lib_is_loaded(monkeypatch):
    import pyscf.lib  # noqa: F401

    monkeypatch.setattr(native_blas, "_DONE", False)
    monkeypatch.setattr(native_blas, "_CHOICE", None)
    assert native_blas.select_pyscf_blas_kernel() is None
