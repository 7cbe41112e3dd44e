"""``smmflow enumerate``: donor-first ligands from SMILES files."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Iterable, Sequence

from smmflow.chem.enumerate import LigandFilters, enumerate_ligands, subsample_ligands
from smmflow.chem.sources import SourceRecord, read_smiles_file
from smmflow.cli.args import int_at_least

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# command line: smmflow enumerate
# ----------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``smmflow enumerate FILE.smi ... -o ligands.parquet --rejected rejected.tsv``"""
    from smmflow.io import check_table_path, write_table

    ap = argparse.ArgumentParser(
        prog="smmflow enumerate",
        description="Enumerate donor-first monodentate ligands (O, N, O-, N-) from SMILES files.",
    )
    ap.add_argument("smiles_files", nargs="*", help=".smi files (first token of a line = SMILES)")
    ap.add_argument("-o", "--output", default="ligands.parquet", help="ligand table (.parquet/.tsv/.csv)")
    ap.add_argument("--rejected", default="rejected.tsv", help="rejected inputs table")
    ap.add_argument("--generate", type=int_at_least(0), default=0, metavar="N",
                    help="also grow N random C/N/O/F molecules (smmflow.chem.grower)")
    ap.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the generator and subsample")
    ap.add_argument("--max-heavy-atoms", type=int_at_least(1), default=9)
    ap.add_argument("--elements", default="C,N,O,F")
    ap.add_argument("--max-ligands", type=int_at_least(0), default=None)
    ap.add_argument("--amide-nitrogen-donor", action="store_true")
    args = ap.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        check_table_path(args.output)
        check_table_path(args.rejected)
        filters = LigandFilters(
            elements=frozenset(e.strip() for e in args.elements.split(",") if e.strip()),
            max_heavy_atoms=args.max_heavy_atoms,
            amide_nitrogen_donor=args.amide_nitrogen_donor,
        )
    except ValueError as err:
        print(f"smmflow enumerate: {err}", file=sys.stderr)
        return 2
    records: list[Iterable[SourceRecord]] = []
    for f in args.smiles_files:
        try:
            records.append(list(read_smiles_file(f)))
        except FileNotFoundError as err:
            print(f"smmflow enumerate: {err}", file=sys.stderr)
            return 2
    if args.generate:
        from smmflow.chem.grower import GeneratorSettings, generated_records

        records.append(
            generated_records(
                GeneratorSettings(
                    n_molecules=args.generate,
                    max_heavy_atoms=args.max_heavy_atoms,
                    elements=tuple(sorted(filters.elements)),
                    seed=args.seed,
                )
            )
        )
    if not records:
        print("smmflow enumerate: give SMILES files and/or --generate N", file=sys.stderr)
        return 2
    result = enumerate_ligands((r for rs in records for r in rs), filters)
    ligands = subsample_ligands(result.ligands, args.max_ligands, args.seed)
    write_table(ligands, args.output)
    write_table(result.rejected, args.rejected)
    log.info("%s; written %d ligands to %s", result.stats, len(ligands), args.output)
    return 0
