"""Timing and tier comparison of the SA-CASSCF(9,7)+SO engine.

Complexes: [Dy(H2O)5(OH)2]+ and [Dy(H2O)5L2]+ with L = [O-]C1C(CC1)(C)CCC (9 heavy atoms), idealised
pentagonal bipyramids (tests/casscf_geometries.py; Gasteiger charges stand in for xTB charges).
Prints per tier: median wall time over --repeats runs (--repeats-expensive for embedded/full), the
split start orbitals / SA-CASSCF / spin-orbit, orbital iterations (SA-CASSCF macro or configuration-average SCF), KD2, KD2 relative to the
full tier, the smallest active-orbital Dy-f population and the largest Kramers splitting.
Other complexes: --complexes hydroxide "SMILES" relaxed.xyz (extxyz from `smmflow build --relax`).
Every calculation runs in a fresh Python process, as each `casscf` job of the workflow does: in one
long-lived process, runs after a large one were 2-3x slower (nitrile embedded 138 s vs 65 s fresh,
alcohol full 969 s vs 308 s; likely cause: the leftover RSS counts against PySCF's `max_memory`,
which sizes its blocks).

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/bench_casscf.py --tiers pointcharge embedded full
    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/bench_casscf.py --ligands   # KD2 per ligand class
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from casscf_geometries import hydroxide_complex, rdkit_ligand_complex  # noqa: E402

from smmflow.abinitio import casscf, free_ion, settings

NINE_HEAVY = "[O-]C1C(CC1)(C)CCC"
#: one ligand per class (donor first); published KD2 (cm-1) from the GAUSS excerpt where present
LIGANDS = {
    "hydroxide (O-)": ("[OH-]", None),
    "alkoxide (O-)": ("[O-]C1C(CC1)(C)CCC", 550.19),
    "amide O (O)": ("O=CNC1CC1", 206.06),
    "alcohol (O)": ("OC(C)CCCO", 3.81),
    "nitrile N (N)": ("N#CC1NC1C", 121.16),
    "azetidide (N-)": ("[N-]1CC(C#N)C1C#N", 398.18),
}


def build(name: str):
    """A complex from ``hydroxide``, a donor-first SMILES (idealised RDKit bipyramid, Gasteiger
    charges) or an extxyz file (e.g. ``smmflow build SMILES --relax -o x.xyz``: xTB geometry and charges)."""
    if name == "hydroxide":
        return hydroxide_complex()
    if name.endswith(".xyz") and Path(name).exists():
        from smmflow.geometry.contract import from_extxyz

        return from_extxyz(Path(name).read_text())
    return rdkit_ligand_complex(name)


def run_once(name: str, tier: str, cache: str, overrides: dict | None = None) -> dict:
    """One ``DyCasscfSO(...).kernel()`` in a fresh Python process (see the module docstring); its result dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--one", name, tier, str(out), "--cache-dir", cache,
               "--settings", json.dumps(overrides or {})]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
        return json.loads(out.read_text())


def one(args) -> None:
    """Child process of :func:`run_once`."""
    import resource

    name, tier, out = args.one
    res = casscf.DyCasscfSO(build(name), settings.CasscfSettings(tier=tier, cache_dir=args.cache_dir), **args.overrides).kernel()
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps(res))


def run(name: str, tier: str, cache: str, repeats: int, overrides: dict | None = None) -> dict:
    walls, res = [], None
    for _ in range(repeats):
        res = run_once(name, tier, cache, overrides)
        walls.append(res["wall_s"])
    res["median_wall_s"] = statistics.median(walls)
    res["walls"] = walls
    return res


def bench_tiers(args) -> None:
    cache = args.cache_dir or tempfile.mkdtemp(prefix="casscf_bench_")
    t0 = time.perf_counter()
    free_ion.free_ion_reference(settings.CasscfSettings(cache_dir=cache))
    cold_ref = time.perf_counter() - t0
    print(f"free-ion reference (ROHF + SA-CASSCF + AMFI on bare Dy3+, or read from {cache}): {cold_ref:.1f} s", flush=True)
    rows = []
    for name in args.complexes:
        out = {}
        for tier in args.tiers:
            reps = args.repeats if tier == "pointcharge" else args.repeats_expensive
            try:
                out[tier] = run(name, tier, cache, reps, args.overrides)
            except Exception as exc:  # noqa: BLE001 - report and go on
                print(f"{name} {tier}: FAILED {type(exc).__name__}: {exc}", flush=True)
                continue
            r = out[tier]
            t = r["timings_s"]
            print(f"{name} {tier}: {r['median_wall_s']:.1f} s (start {t.get('start_orbitals', 0):.1f}, SA-CASSCF "
                  f"{t['sa_casscf']:.1f}, SO {t.get('spin_orbit', 0):.1f}), {r['macro_iterations']} iterations "
                  f"({r.get('orbital_optimiser', 'augmented_hessian')}), "
                  f"KD2 {r['kd_energies_cm1'][1]:.1f} cm-1, peak RSS {r['peak_rss_mb']:.0f} MB, "
                  f"runs {' '.join(f'{w:.1f}' for w in r['walls'])} s, {r['status']} {r['reason']}", flush=True)
        full_kd2 = out["full"]["kd_energies_cm1"][1] if "full" in out else None
        for tier, r in out.items():
            kd2 = r["kd_energies_cm1"][1]
            rel = f"{kd2 - full_kd2:+8.1f}" if full_kd2 is not None else "     n/a"
            rows.append((Path(name).name, tier, r["median_wall_s"], len(r["walls"]), r["macro_iterations"], r["n_ao"], kd2, rel,
                         r["status"], min(r["active_f_population"]), r["kramers_splitting_max_cm1"]))
    print(f"\n{'complex':<26} {'tier':<12} {'median s':>9} {'n':>2} {'iter':>5} {'nao':>5} {'KD2/cm-1':>9} {'vs full':>8} "
          f"{'min f-pop':>9} {'Kramers':>8} status")
    for r in rows:
        print(f"{r[0]:<26} {r[1]:<12} {r[2]:9.1f} {r[3]:>2} {r[4]:>5} {r[5]:>5} {r[6]:9.1f} {r[7]:>8} {r[9]:9.3f} {r[10]:8.1e} {r[8]}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def bench_ligands(args) -> None:
    cache = args.cache_dir or tempfile.mkdtemp(prefix="casscf_bench_")
    print(f"{'ligand':<18} {'SMILES':<22} {'tier':<12} {'KD2/cm-1':>9} {'KD8/cm-1':>9} {'gz(KD1)':>8} {'published KD2':>13} {'s':>6} {'iter':>4} {'nao':>4}")
    free_ion.free_ion_reference(settings.CasscfSettings(cache_dir=cache))
    for label, (smi, pub) in LIGANDS.items():
        for tier in args.tiers:
            try:
                r = run_once("hydroxide" if smi == "[OH-]" else smi, tier, cache, args.overrides)
            except Exception as exc:  # noqa: BLE001
                print(f"{label:<18} {smi:<22} {tier:<12} FAILED {exc}")
                continue
            kd = r["kd_energies_cm1"]
            pubs = f"{pub:13.1f}" if pub is not None else f"{'-':>13}"
            print(f"{label:<18} {smi:<22} {tier:<12} {kd[1]:9.1f} {kd[7]:9.1f} {r['g_principal'][0][2]:8.2f} {pubs} {r['wall_s']:6.1f} {r['macro_iterations']:>4} {r['n_ao']:>4}  "
                  f"{r['status']} {r['orbital_optimiser']}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiers", nargs="+", default=["pointcharge", "embedded", "full"], choices=settings.TIERS)
    p.add_argument("--complexes", nargs="+", default=["hydroxide", NINE_HEAVY],
                   help="'hydroxide', donor-first SMILES (idealised) or extxyz files (xTB-relaxed)")
    p.add_argument("--repeats", type=int, default=3, help="repeats of the pointcharge tier (median)")
    p.add_argument("--repeats-expensive", type=int, default=1, help="repeats of the embedded/full tiers (median)")
    p.add_argument("--settings", default=None, help="JSON of CasscfSettings overrides, e.g. '{\"frozen_core\": false}'")
    p.add_argument("--ligands", action="store_true", help="KD2 of one ligand per class instead of timings")
    p.add_argument("--json", default=None)
    p.add_argument("--cache-dir", default=None, help="reuse a free-ion reference cache")
    p.add_argument("--one", nargs=3, metavar=("COMPLEX", "TIER", "OUT_JSON"), help=argparse.SUPPRESS)
    args = p.parse_args()
    args.overrides = json.loads(args.settings) if args.settings else {}
    if args.one:
        one(args)
        return
    (bench_ligands if args.ligands else bench_tiers)(args)


if __name__ == "__main__":
    main()
