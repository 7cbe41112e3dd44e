"""``smmflow build``: one [Dy(H2O)5L2] complex, optionally relaxed (xTB, or xTB then DFT)."""

from __future__ import annotations

import argparse
import sys

from smmflow.chem.conformers import LigandError
from smmflow.cli.args import float_in, int_at_least
from smmflow.geometry.builder import build_complex
from smmflow.geometry.contract import from_extxyz, to_extxyz
from smmflow.geometry.descriptors import structural_descriptors


# --------------------------------------------------------------------------------------------
# CLI: smmflow build SMILES [--relax [--geometry xtb|dft]] [-o out.xyz]
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="smmflow build", description=__doc__.split("\n")[0])
    ap.add_argument("smiles", help="ligand SMILES, donor atom first")
    ap.add_argument("--relax", action="store_true", help="GFN2-xTB relaxation of the axial ligands")
    ap.add_argument(
        "--mode",
        choices=("axial", "rigid", "flexible", "rigid+flexible"),
        default="rigid",
        help="relaxation mode (see smmflow.xtb.relax.relax_complex)",
    )
    ap.add_argument(
        "--waters",
        choices=("fixed", "rotate", "free"),
        default="fixed",
        help="equatorial waters frozen, turning about their fixed O, or free (every atom but Dy moves)",
    )
    ap.add_argument(
        "--symmetry-break",
        type=float_in(0.0, 0.5),
        default=0.0,
        help="RMS random displacement (A, seeded by --seed) of the movable atoms before the xTB "
        "relaxation, so that it can leave the builder's exact C2 (default 0)",
    )
    ap.add_argument("--fmax", type=float_in(1e-4, 10.0), default=0.05, help="force threshold, eV/A (default 0.05)")
    ap.add_argument(
        "--geometry",
        choices=("xtb", "dft"),
        default="xtb",
        help="with --relax: xtb, or dft = xTB then a DFT relaxation of the whole complex "
        "(smmflow.dft.relax; BP86-D3(BJ)/def2-SVP, Dy 4f-in-core ECP)",
    )
    ap.add_argument(
        "--dft-max-steps",
        type=int_at_least(1),
        default=None,
        help="cap on the DFT optimisation steps (default: the relaxer's, 30)",
    )
    ap.add_argument("--threads", type=int_at_least(1), default=None, help="OpenMP threads of the DFT step")
    ap.add_argument("--seed", type=int_at_least(0), default=0)
    ap.add_argument("--ligand-id", default="")
    ap.add_argument("-o", "--output", default="-", help="extxyz file (default: stdout)")
    args = ap.parse_args(argv)
    if args.geometry == "dft" and not args.relax:
        ap.error("--geometry dft needs --relax")
    status = 0
    try:
        atoms = build_complex(args.smiles, ligand_id=args.ligand_id, seed=args.seed)
        if args.relax:
            from smmflow.xtb.relax import relax_complex

            atoms, info = relax_complex(
                atoms,
                mode=args.mode,
                fmax=args.fmax,
                waters=args.waters,
                symmetry_break_a=args.symmetry_break,
                seed=args.seed,
            )
            print(
                f"relaxed: {info.n_steps} steps, converged={info.converged}, E={info.energy_eh:.6f} Eh", file=sys.stderr
            )
            if args.geometry == "dft":
                import logging

                from smmflow.stages.geometry import label_geometry

                logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)  # step lines

                overrides = {} if args.dft_max_steps is None else {"max_steps": args.dft_max_steps}
                text, summary = label_geometry(to_extxyz(atoms), "dft", overrides, threads=args.threads or 0)
                atoms = from_extxyz(text)
                print(
                    f"DFT: {summary['status']} {summary['reason']} ({summary.get('n_gradients', 0)} gradients, "
                    f"wall {summary.get('wall_s', 0):.0f} s, CPU {summary.get('cpu_s', 0):.0f} s; "
                    f"{summary.get('method', '')})",
                    file=sys.stderr,
                )
                if summary["status"] != "ok":
                    status = 2
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
    return status
