"""Cross-check of the two ab initio engines on identical geometries: OpenMolcas
(:mod:`smmflow.abinitio.openmolcas`, ANO-RCC-VDZP, DKH2, RICD, AMFI) against PySCF (:func:`smmflow.abinitio.casscf.run_complex`,
tier full) with its default basis (x2c-SVPall, sfx2c1e) and with ANO-RCC-VDZP on every atom
(``basis={'default': 'ano-rcc-vdzp'}``, i.e. ``--basis 'default=ano-rcc-vdzp'``).

Complexes (full tier, nothing embedded):
  dy_oh2     /work/shared/reference/openmolcas_dy_oh2/dy_oh2.xyz ([Dy(H2O)5(OH)2]+, the reference geometry)
  methoxide  smmflow.geometry.builder.build_complex('[O-]C')  (unrelaxed builder geometry, seed 0, charge +1)
  methanol   smmflow.geometry.builder.build_complex('OC')     (unrelaxed builder geometry, seed 0, charge +3)
The builder geometries are deterministic; the sha256 of each geometry is printed so runs can be compared.

Every calculation runs in a fresh Python process (as each workflow job does); its CPU time is the
user+sys of that process and all its descendants (os.wait4), so pymolcas' modules are included.
The PySCF free-ion reference (computed once per basis, cached) is run first as its own job and
reported on its own line, so the per-complex PySCF figures exclude it. One BLAS/OpenMP thread per job.

    PYTHONPATH=src python benchmarks/bench_engines.py --jobs 2 --out bench_engines.json
    PYTHONPATH=src python benchmarks/bench_engines.py --table bench_engines.json   # reprint a table
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REFERENCE_XYZ = "/work/shared/reference/openmolcas_dy_oh2/dy_oh2.xyz"
COMPLEXES = {"dy_oh2": None, "methoxide": "[O-]C", "methanol": "OC"}
ENGINES = {
    "openmolcas": {},
    "pyscf-x2c-svpall": {"basis": None},
    "pyscf-ano-rcc-vdzp": {"basis": {"default": "ano-rcc-vdzp"}},
    "pyscf-x2c-tzvpall": {"basis": {"default": "x2c-tzvpall"}},  # triple-zeta: the basis-convergence column
}


def build(name: str):
    """ase.Atoms of one benchmark complex (Dy = atom 0, info['charge'] set)."""
    from ase.io import read

    if name == "dy_oh2":
        atoms = read(REFERENCE_XYZ)
        atoms.info["charge"] = 1
        return atoms
    from smmflow.geometry.builder import build_complex

    return build_complex(COMPLEXES[name], ligand_id=name, seed=0)


def geometry_sha(atoms) -> str:
    text = "".join(f"{s} {x:.8f} {y:.8f} {z:.8f}\n" for s, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def one(engine: str, name: str, cache: str) -> dict:
    """Body of one job (runs inside the child process)."""
    atoms = build(name) if name != "free-ion" else None
    if engine == "openmolcas":
        from smmflow.abinitio.openmolcas import OpenMolcasCasscf

        res = OpenMolcasCasscf(threads=1, mem_mb=2000).kernel(atoms)
    else:
        from smmflow.abinitio import casscf, free_ion, settings

        kw = {"tier": "full", "cache_dir": cache}
        if ENGINES[engine]["basis"]:
            kw["basis"] = ENGINES[engine]["basis"]
        if name == "free-ion":
            t0 = time.perf_counter()
            free_ion.free_ion_reference(settings.CasscfSettings(**kw))
            return {"engine": engine, "complex": name, "status": "ok", "wall_s": time.perf_counter() - t0}
        res = casscf.run_complex(atoms, settings.CasscfSettings(**kw))
    keep = ("kd_energies_cm1", "g_principal", "status", "reason", "converged", "wall_s", "cpu_s",
            "kramers_splitting_max_cm1", "easy_axis", "easy_axis_angle_deg", "provenance", "timings_s",
            "active_f_population", "sf_energies_cm1", "ueff_cm1", "molcas_timing_s", "guess_alter")
    out = {k: res.get(k) for k in keep if k in res}
    out.update(engine=engine, complex=name, geometry=geometry_sha(atoms), n_atoms=len(atoms),
               charge=int(atoms.info["charge"]))
    return out


def launch(engine: str, name: str, cache: str, workdir: Path) -> dict:
    """Run :func:`one` in a fresh process; CPU = user+sys of that process tree (os.wait4)."""
    out = workdir / f"{engine}__{name}.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--one", engine, name, "--cache", cache, "--json", str(out)]
    t0 = time.perf_counter()
    with open(workdir / f"{engine}__{name}.log", "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    try:
        res = json.loads(out.read_text())
    except (OSError, ValueError):
        res = {"engine": engine, "complex": name, "status": "failed",
               "reason": f"job exited {proc.returncode}; see {workdir / (engine + '__' + name + '.log')}"}
    res.update(job_cpu_s=ru.ru_utime + ru.ru_stime, job_user_s=ru.ru_utime, job_sys_s=ru.ru_stime, job_wall_s=wall)
    print(f"done {engine:20s} {name:10s} {res.get('status')} cpu {res['job_cpu_s']:.0f} s wall {wall:.0f} s",
          flush=True)
    return res


def table(results: list[dict]) -> str:
    """Markdown table: KD2..KD8, ground gz, CPU per engine and complex, and the deviation from OpenMolcas."""
    head = "| complex | engine | KD2 | KD3 | KD4 | KD5 | KD6 | KD7 | KD8 | ground gz | CPU s (user+sys) | wall s | status |"
    lines = [head, "|" + "---|" * 13]
    om = {r["complex"]: r for r in results if r["engine"] == "openmolcas" and r.get("kd_energies_cm1")}
    for r in results:
        kd = r.get("kd_energies_cm1")
        g = r.get("g_principal")
        kds = [f"{x:.1f}" for x in kd[1:]] if kd else ["-"] * 7
        gz = f"{g[0][2]:.3f}" if g else "-"
        status = r.get("status", "?") + (f" ({r['reason']})" if r.get("reason") else "")
        lines.append(f"| {r['complex']} | {r['engine']} | " + " | ".join(kds)
                     + f" | {gz} | {r['job_cpu_s']:.0f} | {r['job_wall_s']:.0f} | {status} |")
    dev = ["", "Deviation from OpenMolcas, % (KD2..KD8):", ""]
    for r in results:
        ref = om.get(r["complex"])
        if r["engine"] == "openmolcas" or not ref or not r.get("kd_energies_cm1"):
            continue
        d = [100.0 * (a - b) / b for a, b in zip(r["kd_energies_cm1"][1:], ref["kd_energies_cm1"][1:])]
        dev.append(f"- {r['complex']} {r['engine']}: " + " / ".join(f"{x:+.1f}" for x in d))
    geo = sorted({(r["complex"], r.get("geometry", "?"), r.get("n_atoms"), r.get("charge")) for r in results
                  if r["complex"] != "free-ion"})
    geo_lines = ["", "Geometries (sha256 prefix of the symbols+coordinates text): "
                 + "; ".join(f"{c} {g} ({n} atoms, charge {q:+d})" for c, g, n, q in geo)]
    return "\n".join(lines + dev + geo_lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    ap.add_argument("--complexes", nargs="+", default=list(COMPLEXES), choices=list(COMPLEXES))
    ap.add_argument("--jobs", type=int, default=1, help="jobs at a time (each job uses one thread)")
    ap.add_argument("--cache", default=None, help="PySCF free-ion cache dir (default: a fresh temp dir)")
    ap.add_argument("--out", default=None, help="write all results as JSON")
    ap.add_argument("--table", default=None, help="only print the table of a results JSON")
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "COMPLEX"), help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    if args.one:
        res = one(args.one[0], args.one[1], args.cache)
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
        return 0
    cache = args.cache or tempfile.mkdtemp(prefix="bench-engines-cache-")
    workdir = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    print(f"job logs in {workdir}; PySCF cache {cache}", flush=True)
    pyscf = [e for e in args.engines if e != "openmolcas"]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        # free-ion references first (one per PySCF basis), alongside the OpenMolcas jobs
        first = [pool.submit(launch, e, "free-ion", cache, workdir) for e in pyscf]
        om_jobs = [pool.submit(launch, "openmolcas", c, cache, workdir) for c in args.complexes if "openmolcas" in args.engines]
        done_first = [f.result() for f in first]
        py_jobs = [pool.submit(launch, e, c, cache, workdir) for e in pyscf for c in args.complexes]
        results = done_first + [f.result() for f in om_jobs] + [f.result() for f in py_jobs]
    order = {c: i for i, c in enumerate(["free-ion", *args.complexes])}
    eorder = {e: i for i, e in enumerate(ENGINES)}
    results.sort(key=lambda r: (order.get(r["complex"], 99), eorder.get(r["engine"], 99)))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}  {' '.join(sys.argv)}\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
