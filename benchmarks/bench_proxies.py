"""Benchmark of the xTB proxy stage on 9-heavy-atom ligands (prints figures; no assertions).

Measures, per ligand (medians over ligands; each timing the median of --repeats runs):
  * stage times: RDKit embedding (ETKDG+MMFF, n_conformers), free-ligand GFN2 single point,
    complex build, complex relaxation per mode;
  * GFN2 evaluations per relaxation, ligands/s/core of the whole proxy row per mode;
  * the baseline measured in the same run: naive ASE BFGS + tblite on the whole complex with the
    waters fixed (fmax 0.05 eV/A), as first measured by a colleague; the speed-up against it;
  * descriptor errors: against a tight flexible relaxation (fmax 0.01, every ligand atom free,
    --reference) and against the published DFT-relaxed values (different method: GFN2 vs DFT);
  * throughput of the full proxy row (default settings) on --workers processes.
Times are process CPU seconds (OMP_NUM_THREADS=1: one core), so that figures taken on a machine
shared with other jobs still mean "per free core"; the throughput run also prints wall time.

Ligands: 16 rows (4 per class, 9 heavy atoms, seeded sample) of the published GAUSS data
(arXiv 2602.23230, Khatibi, Mariano, Frangoulis, Lunghi; data/VAE_129k_DB.txt, commit 6328a53):
SMILES, class, published Dy-donor distances (A), L-Dy-L angle (deg), KD2 (cm-1); classes
interleaved so that --n 4k takes k of each.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_proxies.py --reference --baseline 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from multiprocessing import get_context

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

PUBLISHED = [
    ("O=C(N)C(NC=O)C#C", "O", 2.239, 2.240, 178.8, 67.9),
    ("N1C2(C1)C1NC1C2(C)C", "N", 2.415, 2.426, 147.7, 155.8),
    ("[O-]C=1C=CC(NC1F)=O", "O-", 2.159, 2.082, 159.8, 424.4),
    ("[N-]1C2(C1CC=C2)CC#C", "N-", 2.277, 2.176, 157.3, 418.2),
    ("OC(C(C)(C)OC)CO", "O", 2.331, 2.371, 148.4, 68.3),
    ("N=C1C(=CC(=NN1)C)N", "N", 2.363, 2.363, 167.8, 253.4),
    ("[O-]C=1N=C(N(C)C1C)N", "O-", 2.187, 2.134, 153.1, 385.0),
    ("[N-]1C(C1)C#CCC#CC", "N-", 2.192, 2.324, 152.5, 356.3),
    ("O=C1CC(C2C1N2)C#C", "O", 2.182, 2.182, 177.4, 319.6),
    ("N1C(C1)(C#CC)C(=O)N", "N", 2.527, 2.535, 150.6, 140.0),
    ("[O-]CC12N3C4(C3C1C42)C", "O-", 2.077, 2.187, 176.2, 480.8),
    ("[N-]1C2(C(OC2)C1)COC", "N-", 2.521, 2.534, 163.0, 88.4),
    ("OC1CC1C1=CNN=C1", "O", 2.364, 2.392, 141.7, 93.6),
    ("N1=C2NCCN3C(C32)C1", "N", 2.355, 2.354, 175.1, 297.1),
    ("[O-]C12C3C=CCC2C1C3", "O-", 2.048, 2.229, 152.4, 457.9),
    ("[N-]=C1N=C(C=CN=C1)O", "N-", 2.268, 2.318, 151.6, 237.9),
]


def _median_time(fn, repeats):
    """Median CPU time of this process (s) over ``repeats`` calls: with OMP_NUM_THREADS=1 this is
    the time on one free core, insensitive to other users of a shared machine (wall time is not)."""
    times, out = [], None
    for _ in range(repeats):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return statistics.median(times), out


def naive_ase_baseline(atoms, fmax=0.05, steps=400):
    """The colleague's baseline: ASE BFGS on every ligand atom, Dy + waters fixed, tblite GFN2."""
    from ase.constraints import FixAtoms
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    a = atoms.copy()
    a.calc = TBLite(method="GFN2-xTB", charge=atoms.info["charge"], multiplicity=1, verbosity=0)
    a.set_constraint(FixAtoms(indices=list(range(16))))
    opt = BFGS(a, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    return a, opt.get_number_of_steps()


def _proxy_worker(smiles_cls):
    from smmflow.xtb.proxies import proxy_row

    smi, cls = smiles_cls
    t = time.process_time()
    r = proxy_row({"ligand_id": smi, "smiles": smi, "ligand_class": cls})
    return r["status"], r["wall_s"], time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=len(PUBLISHED))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--modes", default="axial,rigid,rigid:rotate")
    ap.add_argument("--reference", action="store_true", help="tight flexible relaxation for errors")
    ap.add_argument("--baseline", type=int, default=2, help="ligands for the naive ASE baseline (0: skip)")
    ap.add_argument("--workers", type=int, default=2, help="processes for the throughput run (0: skip)")
    args = ap.parse_args()

    from smmflow.chem.conformers import ligand_conformers
    from smmflow.geometry.builder import build_complex
    from smmflow.geometry.descriptors import structural_descriptors
    from smmflow.xtb.engine import XtbError
    from smmflow.xtb.proxies import free_ligand_descriptors
    from smmflow.xtb.relax import relax_complex

    ligs = PUBLISHED[: args.n]
    modes = [(m.split(":")[0], m.split(":")[1] if ":" in m else "fixed") for m in args.modes.split(",")]
    print(f"# {len(ligs)} ligands (9 heavy atoms), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    stage = {"embed": [], "ligand_sp": [], "build": []}
    per_mode = {m: [] for m in modes}
    ref, base = [], []
    for i, (smi, cls, r1, r2, ang, kd2) in enumerate(ligs):
        t_emb, lc = _median_time(lambda: ligand_conformers(smi, 8, 0), args.repeats)
        best = int(np.argmin(lc.energies_kcal))
        t_sp, _ = _median_time(lambda: free_ligand_descriptors(lc.symbols, lc.conformers[best], lc.formal_charge,
                                                               lc.neighbors_of_donor), args.repeats)
        t_b, atoms = _median_time(lambda: build_complex(smi, conformers=lc), args.repeats)
        stage["embed"].append(t_emb)
        stage["ligand_sp"].append(t_sp)
        stage["build"].append(t_b)
        line = f"{smi:26s} {cls:2s} pub r={r1:.2f} ang={ang:5.1f} |"
        for m in modes:
            try:
                t_r, (relaxed, info) = _median_time(lambda: relax_complex(atoms, mode=m[0], waters=m[1]),
                                                    args.repeats)
            except XtbError as exc:
                line += f" {m[0][:5]}/{m[1][:3]} FAILED ({exc}) |"
                per_mode[m].append(None)
                continue
            d = structural_descriptors(relaxed)
            per_mode[m].append((t_r, info.n_steps, d, (r1, r2, ang), t_emb + t_sp + t_b + t_r))
            line += f" {m[0][:5]}/{m[1][:3]} r={d['dist_dy_donor1_a']:.2f} ang={d['angle_l_dy_l_deg']:5.1f} n={info.n_steps:3d} {t_r:5.2f}s |"
        if args.reference:
            t = time.process_time()
            relaxed, info = relax_complex(atoms, mode="flexible", fmax=0.01, max_steps=1500)
            ref.append((structural_descriptors(relaxed), time.process_time() - t, info.n_steps))
            line += f" ref r={ref[-1][0]['dist_dy_donor1_a']:.2f} ang={ref[-1][0]['angle_l_dy_l_deg']:5.1f} n={info.n_steps}"
        if i < args.baseline:
            t = time.process_time()
            relaxed, nsteps = naive_ase_baseline(atoms)
            base.append((time.process_time() - t, nsteps))
            line += f" | ASE-naive {base[-1][0]:.1f}s n={nsteps}"
        print(line, flush=True)

    med = statistics.median
    print("\n# times are CPU seconds of one process (one core)\n# stage medians (s/ligand): " + ", ".join(f"{k} {med(v):.3f}" for k, v in stage.items()))
    if base:
        print(f"# baseline naive ASE BFGS (waters fixed, fmax 0.05), {len(base)} ligands: median "
              f"{med([b[0] for b in base]):.2f} s, {med([b[1] for b in base]):.0f} steps")
    print(f"\n{'mode':16s} {'relax s':>8s} {'steps':>6s} {'lig/s/core':>10s} {'x naive':>8s} "
          f"{'|dr| pub':>8s} {'|dang| pub':>10s} {'|dr| ref':>8s} {'|dang| ref':>10s} {'r>3A':>5s}")
    for m, rows_all in per_mode.items():
        ok_idx = [i for i, r in enumerate(rows_all) if r is not None]
        rows = [rows_all[i] for i in ok_idx]
        ref_m = [ref[i] for i in ok_idx] if ref else []
        if len(rows) < len(rows_all):
            print(f"# {m[0]}/{m[1]}: {len(rows_all) - len(rows)} relaxation(s) failed (SCC), left out below")
        t_relax = med([r[0] for r in rows])
        t_total = med([r[4] for r in rows])
        steps = med([r[1] for r in rows])
        dr_pub = med([abs(r[2]["dist_dy_donor1_a"] - r[3][0]) for r in rows] +
                     [abs(r[2]["dist_dy_donor2_a"] - r[3][1]) for r in rows])
        da_pub = med([abs(r[2]["angle_l_dy_l_deg"] - r[3][2]) for r in rows])
        if ref_m:
            dr_ref = med([abs(r[2]["dist_dy_donor1_a"] - f[0]["dist_dy_donor1_a"]) for r, f in zip(rows, ref_m)])
            da_ref = med([abs(r[2]["angle_l_dy_l_deg"] - f[0]["angle_l_dy_l_deg"]) for r, f in zip(rows, ref_m)])
        else:
            dr_ref = da_ref = float("nan")
        far = sum(max(r[2]["dist_dy_donor1_a"], r[2]["dist_dy_donor2_a"]) > 3.0 for r in rows)
        ratio = med([b[0] for b in base]) / t_relax if base else float("nan")
        print(f"{m[0] + '/' + m[1]:16s} {t_relax:8.2f} {steps:6.0f} {1.0 / t_total:10.2f} {ratio:8.1f} "
              f"{dr_pub:8.3f} {da_pub:10.1f} {dr_ref:8.3f} {da_ref:10.1f} {far:5d}")
    if ref:
        print(f"# reference (flexible, fmax 0.01): median {med([f[1] for f in ref]):.1f} s, "
              f"{med([f[2] for f in ref]):.0f} steps; its |dr| vs published "
              f"{med([abs(f[0]['dist_dy_donor1_a'] - p[2]) for f, p in zip(ref, ligs)]):.3f} A, |dang| "
              f"{med([abs(f[0]['angle_l_dy_l_deg'] - p[4]) for f, p in zip(ref, ligs)]):.1f} deg")
    print("# (all errors are medians of absolute differences; 'pub' = published DFT-relaxed geometry)")

    if args.workers > 0:
        ctx = get_context("spawn")
        t = time.perf_counter()
        with ctx.Pool(args.workers) as pool:
            res = pool.map(_proxy_worker, [(p[0], p[1]) for p in ligs], chunksize=1)
        wall = time.perf_counter() - t
        ok = sum(r[0] == "ok" for r in res)
        cpu = sum(r[2] for r in res)
        print(f"\n# full proxy rows (default settings) on {args.workers} processes: {len(ligs)} ligands, {ok} ok, "
              f"wall {wall:.1f} s = {len(ligs) / wall:.2f} ligands/s on this (shared) machine; CPU "
              f"{cpu:.1f} s = {len(ligs) / cpu:.2f} ligands/s per free core; median row CPU "
              f"{med([r[2] for r in res]):.2f} s")


if __name__ == "__main__":
    main()
