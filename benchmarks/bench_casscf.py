"""Timing and tier comparison of the SA-CASSCF(9,7)+SO engine.

Complexes: [Dy(H2O)5(OH)2]+ and [Dy(H2O)5L2]+ with L = [O-]C1C(CC1)(C)CCC (9 heavy atoms), idealised
pentagonal bipyramids (tests/casscf_geometries.py; Gasteiger charges stand in for xTB charges).
Prints per tier: median wall time over --repeats runs, SA-CASSCF macro-iterations, KD2, and KD2
relative to the full tier. Baseline measured in the same run: the pointcharge tier with a cold
free-ion reference (computed from scratch: ROHF + SA-CASSCF + AMFI), against the warm (cached) runs.

    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/bench_casscf.py --tiers pointcharge embedded full
    OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/bench_casscf.py --ligands   # KD2 per ligand class
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from casscf_geometries import hydroxide_complex, rdkit_ligand_complex  # noqa: E402

from smmflow import casscf  # noqa: E402

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
    if name == "hydroxide":
        return hydroxide_complex()
    return rdkit_ligand_complex(name)


def run(atoms, tier: str, cache: str, repeats: int) -> dict:
    walls, res = [], None
    for _ in range(repeats):
        res = casscf.run_complex(atoms, casscf.CasscfSettings(tier=tier, cache_dir=cache))
        walls.append(res["wall_s"])
    res["median_wall_s"] = statistics.median(walls)
    res["walls"] = walls
    return res


def bench_tiers(args) -> None:
    cache = tempfile.mkdtemp(prefix="casscf_bench_")
    t0 = time.perf_counter()
    casscf.free_ion_reference(casscf.CasscfSettings(cache_dir=cache))
    cold_ref = time.perf_counter() - t0
    print(f"free-ion reference (ROHF + SA-CASSCF + AMFI on bare Dy3+), computed once: {cold_ref:.1f} s")
    rows = []
    for name in ("hydroxide", NINE_HEAVY):
        atoms = build(name)
        out = {}
        for tier in args.tiers:
            reps = args.repeats if tier == "pointcharge" else 1
            try:
                out[tier] = run(atoms, tier, cache, reps)
            except Exception as exc:  # noqa: BLE001 - report and go on
                print(f"{name} {tier}: FAILED {type(exc).__name__}: {exc}")
        full_kd2 = out["full"]["kd_energies_cm1"][1] if "full" in out else None
        for tier, r in out.items():
            kd2 = r["kd_energies_cm1"][1]
            rel = f"{kd2 - full_kd2:+8.1f}" if full_kd2 is not None else "     n/a"
            rows.append((name, tier, r["median_wall_s"], len(r["walls"]), r["macro_iterations"], r["n_ao"], kd2, rel, r["status"]))
    print(f"\n{'complex':<22} {'tier':<12} {'median s':>9} {'n':>2} {'macro':>5} {'nao':>5} {'KD2/cm-1':>9} {'vs full':>8} status")
    for r in rows:
        print(f"{r[0]:<22} {r[1]:<12} {r[2]:9.1f} {r[3]:>2} {r[4]:>5} {r[5]:>5} {r[6]:9.1f} {r[7]:>8} {r[8]}")
    warm = [r[2] for r in rows if r[1] == "pointcharge"]
    if warm:
        print(f"\npointcharge: cold (reference computed) {cold_ref + warm[0]:.1f} s vs warm median {statistics.median(warm):.1f} s"
              f" -> ratio {(cold_ref + warm[0]) / statistics.median(warm):.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def bench_ligands(args) -> None:
    cache = args.cache_dir or tempfile.mkdtemp(prefix="casscf_bench_")
    print(f"{'ligand':<18} {'SMILES':<22} {'tier':<12} {'KD2/cm-1':>9} {'KD8/cm-1':>9} {'gz(KD1)':>8} {'published KD2':>13} {'s':>6}")
    for label, (smi, pub) in LIGANDS.items():
        atoms = build("hydroxide" if smi == "[OH-]" else smi)
        for tier in args.tiers:
            try:
                r = casscf.run_complex(atoms, casscf.CasscfSettings(tier=tier, cache_dir=cache))
            except Exception as exc:  # noqa: BLE001
                print(f"{label:<18} {smi:<22} {tier:<12} FAILED {exc}")
                continue
            kd = r["kd_energies_cm1"]
            pubs = f"{pub:13.1f}" if pub is not None else f"{'-':>13}"
            print(f"{label:<18} {smi:<22} {tier:<12} {kd[1]:9.1f} {kd[7]:9.1f} {r['g_principal'][0][2]:8.2f} {pubs} {r['wall_s']:6.1f}  {r['status']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiers", nargs="+", default=["pointcharge", "embedded", "full"], choices=casscf.TIERS)
    p.add_argument("--repeats", type=int, default=3, help="repeats of the pointcharge tier (median)")
    p.add_argument("--ligands", action="store_true", help="KD2 of one ligand per class instead of timings")
    p.add_argument("--json", default=None)
    p.add_argument("--cache-dir", default=None, help="reuse a free-ion reference cache (--ligands only)")
    args = p.parse_args()
    (bench_ligands if args.ligands else bench_tiers)(args)


if __name__ == "__main__":
    main()
