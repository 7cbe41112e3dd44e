"""Where the configuration-average orbital optimisation spends its iterations, block by block.

Runs one ``DyCasscfSO`` (embedded tier by default, 1 thread) and prints, per orbital iteration, the
norm of the orbital gradient in the core-active, core-virtual and active-virtual blocks (PySCF's
``norm_gorb`` convention: half of |dE/dkappa|), then for the first, fourth and last iteration how
the core-virtual gradient splits between Dy-centred core orbitals (Mulliken Dy population > 0.5)
and ligand core orbitals, with the largest rows. ``--scale-blocks CA CV AV`` divides the
one-electron Hessian diagonal of each block by that factor (a step x factor): the preconditioner
lever of docs/casscf.md ("Speed"). Iterations, CPU time (user+sys) and KD energies are printed for
comparison with a run without it.

This is instrumentation: the gradient is read, and with ``--scale-blocks`` the Hessian estimate
rescaled, by wrapping ``configuration_average.average_energy_terms`` in this process only; the
workflow's solver is untouched.

    OMP_NUM_THREADS=1 python benchmarks/bench_orbital_blocks.py tests/data/dy_oh2_xtb_charges.extxyz --conv 1e-5
    OMP_NUM_THREADS=1 python benchmarks/bench_orbital_blocks.py tests/data/dy_oh2_xtb_charges.extxyz --conv 1e-5 --scale-blocks 1 1.5 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import tempfile
from pathlib import Path

import numpy as np


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("geometry", type=Path, help="extxyz with xTB charges (the workflow's geometry contract)")
    ap.add_argument("--tier", default="embedded", choices=("embedded", "full"))
    ap.add_argument("--conv", type=float, default=None, help="average_conv_tol_grad (default: the settings' 1e-3)")
    ap.add_argument("--scale-blocks", type=float, nargs=3, metavar=("CA", "CV", "AV"), default=None,
                    help="step factors for the core-active, core-virtual and active-virtual blocks")
    ap.add_argument("--cache-dir", default=None, help="free-ion reference cache (default: a temporary folder)")
    args = ap.parse_args(argv)
    if not args.geometry.is_file():
        ap.error(f"no such geometry file: {args.geometry}")
    logging.basicConfig(level=logging.WARNING)

    from smmflow.abinitio import casscf, settings
    from smmflow.abinitio import configuration_average as cav
    from smmflow.geometry.contract import from_extxyz

    kept: list[tuple[np.ndarray, np.ndarray, int, int]] = []
    original = cav.average_energy_terms

    def instrumented(h_ao, get_jk, mo, ncore, ncas, coeffs, e_nuc):
        terms = original(h_ao, get_jk, mo, ncore, ncas, coeffs, e_nuc)
        g = terms.gradient
        c, a, v = slice(0, ncore), slice(ncore, ncore + ncas), slice(ncore + ncas, mo.shape[1])
        norms = [0.5 * np.linalg.norm(g[c, a]), 0.5 * np.linalg.norm(g[c, v]), 0.5 * np.linalg.norm(g[a, v])]
        kept.append((mo.copy(), g.copy(), ncore, ncas))
        print(f"iteration {len(kept):2d}: |g| core-act {norms[0]:.2e}  core-virt {norms[1]:.2e}  "
              f"act-virt {norms[2]:.2e}  E {terms.energy:.10f}", flush=True)
        if args.scale_blocks:
            hd = terms.hessian_diagonal.copy()
            for (p, q), f in zip(((c, a), (c, v), (a, v)), args.scale_blocks):
                hd[p, q] /= f
                hd[q, p] /= f
            terms = dataclasses.replace(terms, hessian_diagonal=hd)
        return terms

    cav.average_energy_terms = instrumented
    overrides = {} if args.conv is None else {"average_conv_tol_grad": args.conv}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = settings.CasscfSettings(tier=args.tier, cache_dir=args.cache_dir or tmp)
        mc = casscf.DyCasscfSO(from_extxyz(args.geometry.read_text()), cfg, **overrides)
        c0 = cpu_s()
        res = mc.kernel()
        cpu = cpu_s() - c0

    mol = mc.mol
    dy = next(i for i in range(mol.natm) if mol.atom_symbol(i) == "Dy")
    a0, a1 = mol.aoslice_by_atom()[dy][2:]
    s = mol.intor("int1e_ovlp")
    for k in sorted({0, min(3, len(kept) - 1), len(kept) - 1}):
        mo, g, nc, na = kept[k]
        dy_pop = np.einsum("ui,ui->i", mo[a0:a1], (s @ mo)[a0:a1])
        rows = 0.5 * np.linalg.norm(g[:nc, nc + na:], axis=1)
        on_dy = dy_pop[:nc] > 0.5
        top = np.argsort(rows)[::-1][:4]
        print(f"iteration {k + 1}: core-virt from Dy core {np.linalg.norm(rows[on_dy]):.2e} ({on_dy.sum()} orbitals), "
              f"from ligand core {np.linalg.norm(rows[~on_dy]):.2e}; largest rows (orbital, |g|, Dy population): "
              + ", ".join(f"({i}, {rows[i]:.1e}, {dy_pop[i]:.2f})" for i in top))
    print(json.dumps({"iterations": res["macro_iterations"], "n_ao": res["n_ao"], "kernel_cpu_s": round(cpu, 1),
                      "kd_cm1": [round(x, 3) for x in res["kd_energies_cm1"]]}))


if __name__ == "__main__":
    main()
