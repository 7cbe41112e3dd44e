#!/usr/bin/env python
"""Speed (and validity) of ligand enumeration and of the molecule generator.

Prints medians over repeated runs and ratios against a baseline measured in the same run
(RDKit parsing + canonical SMILES of the same inputs: the floor any enumerator pays).

    PYTHONPATH=src python benchmarks/bench_enumeration.py                 # quick figures (~1 min)
    PYTHONPATH=src python benchmarks/bench_enumeration.py --full          # + time/memory to >=100k ligands
    PYTHONPATH=src python benchmarks/bench_enumeration.py --published PATH/kramers_labelled_excerpt.txt
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from rdkit import Chem, RDLogger

from smmflow.chem.donors import canonical_donor_smiles
from smmflow.chem.enumerate import LigandFilters, ParentRejected, enumerate_ligands, ligands_from_parent, prepare_parent
from smmflow.chem.grower import GeneratorSettings, generate_smiles
from smmflow.chem.sources import SourceRecord, read_smiles_file
from smmflow.tables import LIGAND_CLASS_CODE

ROOT = Path(__file__).resolve().parents[1]
CURATED = ROOT / "resources" / "source_molecules" / "curated_donors.smi"
PUBLISHED_CLASS = {f"{code:.1f}": cls for cls, code in LIGAND_CLASS_CODE.items()}  # published codes 1.0..4.0


CPU_MEDIANS: dict[str, float] = {}


def median_time(fn, repeats: int, label: str = "") -> float:
    """Median wall time of ``fn`` over ``repeats`` runs (median CPU time kept in CPU_MEDIANS:
    on a shared machine the wall time includes waiting for a core, the CPU time does not)."""
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    if label:
        CPU_MEDIANS[label] = statistics.median(cpu)
    return statistics.median(times)


def parse_baseline(records: list[SourceRecord]) -> None:
    for r in records:
        m = Chem.MolFromSmiles(r.smiles)
        if m is not None:
            Chem.MolToSmiles(m)


def bench_enumeration(name: str, records: list[SourceRecord], repeats: int) -> None:
    RDLogger.DisableLog("rdApp.*")
    res = enumerate_ligands(records)
    t_enum = median_time(lambda: enumerate_ligands(records), repeats, "enum")
    t_base = median_time(lambda: parse_baseline(records), repeats, "base")
    c_enum, c_base = CPU_MEDIANS["enum"], CPU_MEDIANS["base"]
    n_lig = len(res.ligands)
    print(
        f"enumerate [{name}]: {len(records)} inputs -> {n_lig} ligands; median wall {t_enum:.3f} s "
        f"over {repeats} runs = {n_lig / t_enum:,.0f} ligands/s ({n_lig / c_enum:,.0f} ligands per "
        f"CPU-second); parse+canonical baseline {t_base:.3f} s; ratio enum/baseline "
        f"{t_enum / t_base:.1f}x wall, {c_enum / c_base:.1f}x CPU"
    )


def bench_generator(n: int, repeats: int, seed: int) -> list[str]:
    s = GeneratorSettings(n_molecules=n, seed=seed)
    t = median_time(lambda: list(generate_smiles(s)), repeats, "gen")
    smis = list(generate_smiles(s))
    sizes = Counter(Chem.MolFromSmiles(x).GetNumHeavyAtoms() for x in smis)
    print(
        f"generate: {n} distinct molecules (<= {s.max_heavy_atoms} heavy atoms) median {t:.2f} s "
        f"over {repeats} runs = {n / t:,.0f} molecules/s ({n / CPU_MEDIANS['gen']:,.0f} per CPU-second); heavy-atom counts {dict(sorted(sizes.items()))}"
    )
    return smis


def full_scale_child(n_molecules: int, seed: int) -> None:
    """Run in a subprocess: generator + curated library -> ligands; print a JSON line."""
    t0 = time.perf_counter()
    s = GeneratorSettings(n_molecules=n_molecules, seed=seed)
    records = list(read_smiles_file(CURATED))
    smis = list(generate_smiles(s))
    t_gen = time.perf_counter() - t0
    records += [SourceRecord(f"generator(seed={seed})", i + 1, x) for i, x in enumerate(smis)]
    res = enumerate_ligands(records)
    t_all = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"molecules": len(smis), "ligands": len(res.ligands), "t_generate_s": t_gen,
                      "t_total_s": t_all, "cpu_s": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mb": usage.ru_maxrss / 1024, **res.stats}))


def bench_full(n_molecules: int, seed: int) -> None:
    cmd = [sys.executable, __file__, "--_child", str(n_molecules), "--seed", str(seed)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"full scale (generator n_molecules={n_molecules}, seed={seed}, + curated library): "
        f"{r['ligands']:,} distinct ligands (O {r['class_O']:,}, N {r['class_N']:,}, "
        f"O- {r['class_O-']:,}, N- {r['class_N-']:,}) in {r['t_total_s']:.0f} s "
        f"wall (generation {r['t_generate_s']:.0f} s; {r['cpu_s']:.0f} CPU-s in all), peak RSS {r['peak_rss_mb']:.0f} MB, "
        f"{r['ligands'] / r['t_total_s']:,.0f} ligands/s end to end"
    )


def neutral_parent_of(ligand_smiles: str) -> Chem.Mol:
    """The neutral parent of a donor-first ligand: re-protonate an anionic donor (atom 0)."""
    mol = Chem.RWMol(Chem.MolFromSmiles(ligand_smiles))
    donor = mol.GetAtomWithIdx(0)
    if donor.GetFormalCharge() == -1:
        donor.SetFormalCharge(0)
        donor.SetNumExplicitHs(donor.GetTotalNumHs() + 1)
        donor.SetNoImplicit(True)
    out = mol.GetMol()
    Chem.SanitizeMol(out)
    return out


def bench_published(path: Path) -> None:
    """Which published donor-first ligands the enumerator reproduces from their neutral parents."""
    RDLogger.DisableLog("rdApp.*")
    rows = [ln.split()[:2] for ln in path.read_text().splitlines()[1:] if ln.strip()]
    for amide_n in (False, True):
        filters = LigandFilters(ring_sizes=frozenset(range(3, 10)), min_heavy_atoms=1,
                                amide_nitrogen_donor=amide_n)
        hit = same_class = 0
        why: Counter[str] = Counter()
        for smi, cls in rows:
            try:
                parent = prepare_parent(Chem.MolToSmiles(neutral_parent_of(smi)), filters)
            except ParentRejected as err:
                why[f"parent rejected: {err}"] += 1
                continue
            got = {lg.smiles: lg.ligand_class for lg in ligands_from_parent(parent, amide_nitrogen_donor=amide_n)}
            canon = canonical_donor_smiles(smi)
            # second column: the class code (kramers file) or the donor's Z (proxy file)
            want = PUBLISHED_CLASS.get(cls) or {"7.0": "N", "8.0": "O"}.get(cls, cls)
            if canon in got:
                hit += 1
                same_class += got[canon].rstrip("-") == want.rstrip("-") if cls in ("7.0", "8.0") else got[canon] == want
            else:
                why[f"not enumerated (published {want})"] += 1
        print(
            f"published ligands reproduced from neutral parents (amide_nitrogen_donor={amide_n}): "
            f"{hit}/{len(rows)} = {100 * hit / len(rows):.1f}%, same class (or donor element) {same_class}/{hit}; "
            f"misses: {dict(why)}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-generated", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--full", action="store_true", help="time/memory to >= 100k ligands")
    ap.add_argument("--full-molecules", type=int, default=30000)
    ap.add_argument("--published", type=Path, nargs="*", default=[],
                    help="kramers_labelled_excerpt.txt / proxy_excerpt.txt of the paper's data")
    ap.add_argument("--_child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        full_scale_child(args._child, args.seed)
        return 0
    print(f"# bench_enumeration: {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    curated = list(read_smiles_file(CURATED))
    bench_enumeration("curated library", curated, args.repeats)
    smis = bench_generator(args.n_generated, max(1, args.repeats // 2), args.seed)
    generated = [SourceRecord("generator", i + 1, s) for i, s in enumerate(smis)]
    bench_enumeration(f"{len(generated)} generated molecules", generated, args.repeats)
    for path in args.published:
        print(f"# {path.name}")
        bench_published(path)
    if args.full:
        bench_full(args.full_molecules, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
