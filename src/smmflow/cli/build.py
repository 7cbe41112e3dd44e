"""``smmflow build``: one [Dy(H2O)5L2] complex, optionally xTB-relaxed."""

from __future__ import annotations

import argparse
import sys

from smmflow.chem.conformers import LigandError
from smmflow.cli.args import float_in, int_at_least
from smmflow.geometry.builder import build_complex
from smmflow.geometry.contract import to_extxyz
from smmflow.geometry.descriptors import structural_descriptors


# --------------------------------------------------------------------------------------------
# CLI: smmflow build SMILES [--relax] [-o out.xyz]
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="smmflow build", description=__doc__.split("\n")[0])
    ap.add_argument("smiles", help="ligand SMILES, donor atom first")
    ap.add_argument("--relax", action="store_true", help="GFN2-xTB relaxation of the axial ligands")
    ap.add_argument("--mode", choices=("axial", "rigid", "flexible", "rigid+flexible"), default="rigid",
                    help="relaxation mode (see smmflow.xtb.relax.relax_complex)")
    ap.add_argument("--waters", choices=("fixed", "rotate"), default="fixed",
                    help="equatorial waters frozen, or turning about their fixed O")
    ap.add_argument("--fmax", type=float_in(1e-4, 10.0), default=0.05, help="force threshold, eV/A (default 0.05)")
    ap.add_argument("--seed", type=int_at_least(0), default=0)
    ap.add_argument("--ligand-id", default="")
    ap.add_argument("-o", "--output", default="-", help="extxyz file (default: stdout)")
    args = ap.parse_args(argv)
    try:
        atoms = build_complex(args.smiles, ligand_id=args.ligand_id, seed=args.seed)
        if args.relax:
            from smmflow.xtb.relax import relax_complex

            atoms, info = relax_complex(atoms, mode=args.mode, fmax=args.fmax, waters=args.waters)
            print(f"relaxed: {info.n_steps} steps, converged={info.converged}, E={info.energy_eh:.6f} Eh",
                  file=sys.stderr)
    except (LigandError, RuntimeError, ValueError) as exc:
        print(f"smmflow build: {exc}", file=sys.stderr)
        return 1
    for k, v in structural_descriptors(atoms).items():
        print(f"{k} = {v:.4f}", file=sys.stderr)
    text = to_extxyz(atoms)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        from smmflow.io import write_text_atomic

        write_text_atomic(args.output, text)
    return 0
