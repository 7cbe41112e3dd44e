"""CPU time and KD energies of the embedded (and full) tier on the xTB-relaxed benchmark set.

Complexes: ``tests/data/embedded_bench/*.extxyz`` (see the README there: 9 complexes, the four
ligand classes, 7-9 heavy atoms, two with a second ligand O within 3.1 A of Dy). Every
calculation runs in a fresh Python process (as each workflow ``casscf`` job does) with one thread;
the CPU time is user + sys of that process: ``kernel`` (``DyCasscfSO.kernel()`` alone) and
``process`` (including the Python/PySCF imports). Prints per complex and tier the median over
``--repeats`` of the CPU times, the orbital iterations, KD2 and KD8, and with ``--baseline-src`` the
same numbers of another source tree (e.g. a copy of ``src/`` at the previous commit) run
interleaved in the same session, with the KD2/KD8 changes in percent.

    OMP_NUM_THREADS=1 python benchmarks/bench_embedded.py --tiers embedded --repeats 3
    OMP_NUM_THREADS=1 python benchmarks/bench_embedded.py --baseline-src /tmp/old_src --settings '{"conv_tol_grad": 1e-3}'
    OMP_NUM_THREADS=1 python benchmarks/bench_embedded.py --tiers full --repeats 1 --json full.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "tests" / "data" / "embedded_bench"


def run_once(path: Path, tier: str, cache: str, overrides: dict, src: str | None) -> dict:
    """One ``DyCasscfSO(...).kernel()`` in a fresh 1-thread process; its result dict plus CPU times."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--one", str(path), tier, str(out), "--cache-dir", cache,
               "--settings", json.dumps(overrides)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
        return json.loads(out.read_text())


def one(args) -> None:
    """Child process of :func:`run_once`."""
    import resource

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    from smmflow.abinitio import casscf, settings
    from smmflow.geometry.contract import from_extxyz

    path, tier, out = args.one
    atoms = from_extxyz(Path(path).read_text())
    c0 = cpu()
    res = casscf.DyCasscfSO(atoms, settings.CasscfSettings(tier=tier, cache_dir=args.cache_dir), **args.overrides).kernel()
    res["cpu_kernel_s"] = cpu() - c0
    res["cpu_process_s"] = cpu()
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["engine_file"] = casscf.__file__
    Path(out).write_text(json.dumps(res))


def summary(runs: list[dict]) -> dict:
    r = runs[-1]
    kd = r["kd_energies_cm1"]
    return {"cpu_kernel_s": statistics.median(x["cpu_kernel_s"] for x in runs),
            "cpu_process_s": statistics.median(x["cpu_process_s"] for x in runs),
            "cpu_runs": [round(x["cpu_kernel_s"], 1) for x in runs],
            "iterations": r["macro_iterations"], "solver": r.get("orbital_optimiser"), "n_ao": r["n_ao"],
            "n_quantum_atoms": r["n_quantum_atoms"], "kd2": kd[1], "kd8": kd[7], "status": r["status"],
            "reason": r["reason"], "timings_s": r["timings_s"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiers", nargs="+", default=["embedded"])
    p.add_argument("--complexes", nargs="+", default=None, help="extxyz files (default: the benchmark set)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--settings", default=None, help="JSON of CasscfSettings overrides for the tested code")
    p.add_argument("--baseline-src", default=None, help="source tree (containing smmflow/) of the baseline")
    p.add_argument("--baseline-settings", default=None, help="JSON overrides for the baseline")
    p.add_argument("--cache-dir", default=None, help="free-ion reference cache (default: a fresh one)")
    p.add_argument("--json", default=None)
    p.add_argument("--one", nargs=3, metavar=("XYZ", "TIER", "OUT_JSON"), help=argparse.SUPPRESS)
    args = p.parse_args()
    args.overrides = json.loads(args.settings) if args.settings else {}
    if args.one:
        one(args)
        return
    cache = args.cache_dir or tempfile.mkdtemp(prefix="casscf_bench_")
    paths = [Path(x) for x in args.complexes] if args.complexes else sorted(BENCH_DIR.glob("*.extxyz"))
    base_over = json.loads(args.baseline_settings) if args.baseline_settings else {}
    variants = [("new", None, args.overrides)]
    if args.baseline_src:
        variants.insert(0, ("base", args.baseline_src, base_over))
    results: dict = {}
    for path in paths:
        for tier in args.tiers:
            runs: dict[str, list] = {v[0]: [] for v in variants}
            for _ in range(args.repeats):
                for name, src, over in variants:  # interleaved: base, new, base, new, ...
                    try:
                        runs[name].append(run_once(path, tier, cache, over, src))
                    except Exception as exc:  # noqa: BLE001 - report and go on
                        print(f"{path.stem} {tier} {name}: FAILED {exc}", flush=True)
            row = {name: summary(r) for name, r in runs.items() if r}
            results[f"{path.stem}/{tier}"] = row
            for name, s in row.items():
                rel = ""
                if name == "new" and "base" in row:
                    b = row["base"]
                    rel = (f"  dKD2 {100 * (s['kd2'] / b['kd2'] - 1):+.2f}%  dKD8 {100 * (s['kd8'] / b['kd8'] - 1):+.2f}%"
                           f"  CPU x{b['cpu_kernel_s'] / s['cpu_kernel_s']:.2f}")
                print(f"{path.stem:<16} {tier:<10} {name:<4} CPU {s['cpu_kernel_s']:6.1f} s (process {s['cpu_process_s']:6.1f}; "
                      f"runs {s['cpu_runs']}) iter {s['iterations']:>3} nao {s['n_ao']:>4} KD2 {s['kd2']:8.2f} KD8 {s['kd8']:8.2f} "
                      f"{s['status']}{rel}", flush=True)
    for tier in args.tiers:
        for name in [v[0] for v in variants]:
            cpus = [row[name]["cpu_kernel_s"] for key, row in results.items() if key.endswith("/" + tier) and name in row]
            if cpus:
                print(f"median over complexes, {tier} {name}: kernel CPU {statistics.median(cpus):.1f} s "
                      f"(min {min(cpus):.1f}, max {max(cpus):.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
