"""PySCF's bundled OpenBLAS with its own CPU detection vs forced AVX2 kernels (smmflow.native_blas).

Each setting runs in a fresh process (the kernel is fixed when the library loads), --repeats times;
prints the median wall time of each step and the ratio default / forced measured in the same run:
  * dgemm 2000x2000x2000 through pyscf.lib.dot,
  * the DF integral transformation of one SA-CASSCF macro-iteration: PySCF's (mc.ao2mo, df_ao2mo)
    and smmflow.abinitio.lowrank_df.df_casscf_integrals (df_ao2mo_smmflow),
  * one augmented-Hessian JK build (smmflow.abinitio.lowrank_df.LowRankDFCASSCF.update_jk_in_ah): the first of a
    macro-iteration (ah_jk) and the median of three later ones (ah_jk_reuse, fixed-factor
    products kept from the first),
on [Dy(H2O)5(OH)2]+, full tier (243 AOs).

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/bench_native_blas.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(forced: bool) -> dict[str, float]:
    sys.path.insert(0, str(ROOT / "tests"))
    from smmflow import native_blas

    if forced:
        native_blas.select_pyscf_blas_kernel()
    import numpy as np
    from casscf_geometries import hydroxide_complex
    from pyscf import lib, mcscf

    from smmflow.abinitio import free_ion, lowrank_df, molecule, regions, start_orbitals
    from smmflow.abinitio import settings as abinitio_settings

    out: dict[str, float] = {}
    rng = np.random.default_rng(0)
    m = rng.random((2000, 2000))
    t = time.perf_counter()
    lib.dot(m, m)
    out["dgemm_2000"] = time.perf_counter() - t

    settings = abinitio_settings.CasscfSettings(tier="full")
    region = regions.partition(hydroxide_complex(), "full")
    mol = molecule.build_molecule(region.symbols, region.coords, region.charge, 5, settings)
    mf = molecule.make_scf(mol, None, settings, use_df=True)
    ref = free_ion.free_ion_reference(abinitio_settings.CasscfSettings(tier="full", cache_dir=str(ROOT / "results/casscf/cache")))
    mo, ncore, _ = start_orbitals.ion_plus_fragments_start(mol, ref, region, settings)
    mc = mcscf.DFCASSCF(mf, abinitio_settings.NCAS, abinitio_settings.NELECAS, ncore=ncore)
    mf.with_df.build()
    t = time.perf_counter()
    eris = mc.ao2mo(mo)
    out["df_ao2mo"] = time.perf_counter() - t
    t = time.perf_counter()
    lowrank_df.df_casscf_integrals(mc, mo)  # the in-memory replacement of PySCF's transformation
    out["df_ao2mo_smmflow"] = time.perf_counter() - t
    nmo = mo.shape[1]
    r = rng.standard_normal((nmo, nmo)) * 1e-3
    r = r - r.T
    casdm1 = np.eye(abinitio_settings.NCAS) * 2.0 / abinitio_settings.NCAS
    jk = lowrank_df.low_rank_dfcasscf(mf, abinitio_settings.NCAS, abinitio_settings.NELECAS, ncore=ncore).update_jk_in_ah
    t = time.perf_counter()
    jk(mo, r, casdm1, eris)
    out["ah_jk"] = time.perf_counter() - t
    reuse = []  # later AH steps of the same macro-iteration: the fixed-factor products are kept
    for _ in range(3):
        r = rng.standard_normal((nmo, nmo)) * 1e-3
        r = r - r.T
        t = time.perf_counter()
        jk(mo, r, casdm1, eris)
        reuse.append(time.perf_counter() - t)
    out["ah_jk_reuse"] = statistics.median(reuse)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--child", choices=["default", "forced"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child == "forced")))
        return 0
    runs: dict[str, list[dict[str, float]]] = {"default": [], "forced": []}
    for _ in range(a.repeats):
        for mode in runs:  # interleaved, so drifting machine load hits both alike
            res = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True, text=True,
                                 check=True, env=dict(os.environ))
            runs[mode].append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {a.repeats} repeats, medians (s)")
    print(f"{'step':<12} {'default':>9} {'forced':>9} {'default/forced':>15}")
    for step in runs["default"][0]:
        d = statistics.median(r[step] for r in runs["default"])
        f = statistics.median(r[step] for r in runs["forced"])
        print(f"{step:<12} {d:9.2f} {f:9.2f} {d / f:15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
