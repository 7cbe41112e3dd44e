"""Ligand stage on a seeded file of hostile lines (tests/test_hostile_input.py's generator): wall and
CPU time, medians over repeats, and the slowest single line.

    python benchmarks/bench_hostile_input.py --lines 1200 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_hostile_input import HOSTILE, hostile_file  # noqa: E402

from smmflow.chem.enumerate import LigandFilters, ParentRejected, enumerate_ligands, prepare_parent  # noqa: E402
from smmflow.chem.sources import read_smiles_file  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "hostile.smi"
        hostile_file(f, n=args.lines)
        walls, cpus = [], []
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            res = enumerate_ligands(read_smiles_file(f), LigandFilters())
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
    per_line = []
    for line in [*HOSTILE, ".".join(["C"] * 20001)]:
        c0 = time.process_time()
        try:
            prepare_parent(line, LigandFilters())
        except ParentRejected:
            pass
        per_line.append((time.process_time() - c0, line[:30]))
    print(f"{args.lines} lines: {len(res.ligands)} ligands, {len(res.rejected)} rejected rows")
    print(f"ligand stage: wall {statistics.median(walls):.2f} s, CPU {statistics.median(cpus):.2f} s "
          f"(medians of {args.repeats})")
    worst = max(per_line)
    print(f"slowest single line: {worst[0] * 1000:.1f} ms CPU ({worst[1]!r})")


if __name__ == "__main__":
    main()
