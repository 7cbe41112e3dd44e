"""CPU time of the float32 DF tensor of one complex: build, one J/K build, active-space ERIs.

Builds the quantum region and molecule of ``COMPLEX.extxyz`` exactly as the ``embedded`` tier does
(default settings), then times with ``time.process_time`` (this process's user+sys CPU):
``Float32DF.build()`` once, ``df_jk_of_orbitals`` on ``--nocc`` random orthonormal orbitals
(split into a core block and 7 "active" ones, like an orbital iteration) ``--repeats`` times, and
``active_eri`` once. Prints the median J/K time, every run, and checksums of J, K and the ERIs, so
that two source trees (``--src``, e.g. a copy of ``src/`` at an older commit) can be compared on the
same numbers. ``--tile-aos`` / ``--aux-batch`` set the tile layout where the tree has one.

    OMP_NUM_THREADS=1 python benchmarks/bench_df_jk.py tests/data/embedded_bench/hydroxyalkoxide.extxyz
    OMP_NUM_THREADS=1 python benchmarks/bench_df_jk.py tests/data/embedded_bench/hydroxyalkoxide.extxyz --src /tmp/old/src
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("complex", help="extxyz of a complex (Dy first, xTB charges)")
    ap.add_argument("--src", help="source tree containing smmflow/ (default: the installed package)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nocc", type=int, default=127, help="orbitals in the J/K build (the last 7 form the active block)")
    ap.add_argument("--tile-aos", type=int)
    ap.add_argument("--aux-batch", type=int)
    args = ap.parse_args(argv)
    if args.src:
        sys.path.insert(0, args.src)
    from smmflow.native_blas import select_pyscf_blas_kernel

    select_pyscf_blas_kernel()
    import numpy as np
    from ase.io import read
    from pyscf import df

    from smmflow.abinitio import lowrank_df, regions
    from smmflow.abinitio.molecule import build_molecule, make_scf, outer_atoms
    from smmflow.abinitio.settings import CasscfSettings

    s = CasscfSettings(tier="embedded")
    region = regions.partition(read(args.complex), s.tier, s.embedded_radius_a, s.embedded_bond_shells)
    region.outer = outer_atoms(region.coords, s)
    mol = build_molecule(region.symbols, region.coords, region.charge, 5, s, outer=region.outer)
    auxmol = df.addons.make_auxmol(mol, make_scf(mol, None, s, use_df=True).with_df.auxbasis)
    f32 = lowrank_df.Float32DF(mol, auxmol, s.max_memory_mb, pair_threshold=s.df_pair_threshold)
    if args.tile_aos:
        f32.tile_aos = args.tile_aos
    if args.aux_batch:
        f32.aux_batch = args.aux_batch
    t = time.process_time()
    f32.build()
    t_build = time.process_time() - t
    c = np.linalg.qr(np.random.default_rng(0).standard_normal((mol.nao, args.nocc)))[0]
    blocks = [c[:, : args.nocc - 7], c[:, args.nocc - 7 :]]
    runs = []
    for _ in range(args.repeats):
        t = time.process_time()
        vj, vk = lowrank_df.df_jk_of_orbitals(f32, blocks, s.max_memory_mb)
        runs.append(time.process_time() - t)
    t = time.process_time()
    eri = f32.active_eri(blocks[1])
    t_eri = time.process_time() - t
    print(f"{args.src or 'installed'}: nao {mol.nao} naux {auxmol.nao} build {t_build:.1f} s, "
          f"J/K median {statistics.median(runs):.2f} s (runs {', '.join(f'{x:.2f}' for x in runs)}), "
          f"active ERIs {t_eri:.2f} s; sum|J| {np.abs(vj).sum():.10e} sum|K| {np.abs(vk).sum():.10e} "
          f"sum|ERI| {np.abs(eri).sum():.8e}")


if __name__ == "__main__":
    main()
