"""``smmflow casscf complex.xyz --charge Q [--tier ...] [--json out.json]``: KD table of one complex."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from smmflow.abinitio import casscf
from smmflow.abinitio import settings as abinitio_settings
from smmflow.cli.args import float_in, int_at_least
from smmflow.geometry.contract import closed_shell_complex_charge, from_extxyz, ligand_fragments
from smmflow.io import write_json_atomic


def _parse_basis(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out = {}
    for item in text.split(","):
        el, _, name = item.partition("=")
        if not name:
            raise ValueError(f"--basis wants ELEMENT=NAME[,default=NAME], got {item!r}")
        out[el.strip()] = name.strip()
    return out


def read_complex(path: str, charge: int | None):
    """Read the first frame of an (extended) XYZ complex with the geometry contract's reader;
    ``charge`` overrides ``atoms.info['charge']``; ``charges`` is taken as ``initial_charges``.

    Every problem of the file is a one-line ``ValueError`` (no such file, empty, not XYZ, unknown
    element)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{path}: no such file")
    text = p.read_text(errors="replace")
    if not text.strip():
        raise ValueError(f"{path}: empty file")
    try:
        atoms = from_extxyz(text, index=0)
    except KeyError as exc:  # ASE: unknown chemical symbol
        raise ValueError(f"{path}: unknown element {exc}") from None
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for a file that is not XYZ
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not an (extended) XYZ file ({msg})") from None
    if charge is not None:
        atoms.info["charge"] = int(charge)
    return atoms


def check_charge(atoms) -> None:
    """The complex charge must be 3 + q(L1) + q(L2) of the closed-shell ligands in the geometry."""
    want = closed_shell_complex_charge(atoms)
    got = int(atoms.info["charge"])
    if got != want:
        n = len(ligand_fragments(atoms))
        raise ValueError(f"charge {got:+d} does not match the geometry: Dy(III) + {n} closed-shell ligand "
                         f"fragment(s) give {want:+d} (an odd-electron ligand is an anion)")


def add_xtb_charges(atoms) -> None:
    """GFN2-xTB (tblite) atomic charges of the complex as ``initial_charges`` (single point)."""
    from smmflow.xtb.engine import XtbError, gfn2_singlepoint

    try:
        props = gfn2_singlepoint(atoms.numbers, atoms.positions, int(atoms.info["charge"]))
    except XtbError as exc:
        raise ValueError(f"GFN2-xTB charges failed: {exc}") from None
    atoms.set_initial_charges(props.charges)


def format_kd_table(res: dict) -> str:
    engine = (res.get("provenance") or {}).get("engine", "pyscf")
    solver = "OpenMolcas RASSCF" if engine == "openmolcas" else res.get("orbital_optimiser", "augmented_hessian")
    lines = [f"tier {res['tier']}  converged {res['converged']}  iterations {res.get('macro_iterations')}"
             f" ({solver})"
             f"  zeta_4f {'n/a' if res.get('zeta_4f_cm1') is None else format(res['zeta_4f_cm1'], '.1f')} cm-1"
             f"  wall {res['wall_s']:.1f} s",
             f"{'KD':>3} {'E/cm-1':>10} {'gx':>8} {'gy':>8} {'gz':>8}"]
    for i, (e, g) in enumerate(zip(res["kd_energies_cm1"], res["g_principal"]), start=1):
        lines.append(f"{i:>3} {e:10.2f} {g[0]:8.3f} {g[1]:8.3f} {g[2]:8.3f}")
    ang = res.get("easy_axis_angle_deg")
    lines.append(f"easy axis vs L-Dy-L: {'n/a' if ang is None else f'{ang:.1f} deg'}"
                 + ("" if res.get("ueff_cm1") is None else
                    f"   Ueff estimate {res['ueff_cm1']:.1f} cm-1 (via KD{res['ueff_kd']})"))
    lines.append(f"status {res['status']} {res['reason']}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="smmflow casscf", description=__doc__)
    p.add_argument("xyz", help="complex geometry (extended XYZ; Dy first; xTB charges as initial_charges)")
    p.add_argument("--charge", type=int, default=None, help="total charge of the complex (3 + 2 q(L))")
    p.add_argument("--tier", choices=abinitio_settings.TIERS, default="pointcharge")
    p.add_argument("--engine", choices=("pyscf", "openmolcas"), default="pyscf",
                   help="openmolcas: OpenMolcas RASSCF/RASSI/SINGLE_ANISO (tier full; pymolcas on PATH or $MOLCAS)")
    p.add_argument("--threads", type=int_at_least(1), default=1, help="openmolcas: OpenMP threads")
    p.add_argument("--mem-mb", type=int_at_least(256), default=2000, help="openmolcas: MOLCAS_MEM")
    p.add_argument("--basis", default=None, help="e.g. 'Dy=x2c-svpall,default=def2-svp'")
    p.add_argument("--soc-scale", type=float_in(0.5, 1.5), default=1.0, help="scale of the SOC operator")
    p.add_argument("--cache-dir", default=None, help="cache of the free-ion reference (default $SMMFLOW_CACHE or ~/.cache/smmflow)")
    p.add_argument("--json", default=None, help="write the full result here")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    t0 = time.perf_counter()
    try:  # usage and file errors: one line, exit 2
        atoms = read_complex(args.xyz, args.charge)
        if "charge" not in atoms.info:
            raise ValueError("no charge: pass --charge Q")
        kw = dict(tier=args.tier, soc_scale=args.soc_scale, cache_dir=args.cache_dir or abinitio_settings.default_cache_dir())
        basis = _parse_basis(args.basis)
        if basis:
            kw["basis"] = basis
        settings = abinitio_settings.CasscfSettings(**kw)
        if args.engine == "openmolcas":
            from smmflow.abinitio import openmolcas as om

            if args.tier != "full":
                raise ValueError(f"--engine openmolcas computes --tier full only, not {args.tier!r}")
            om.find_pymolcas()  # one line now, not after the geometry checks
            engine = om.OpenMolcasCasscf(tier="full", basis=(basis or {}).get("default", om.DEFAULT_BASIS),
                                         threads=args.threads, mem_mb=args.mem_mb)
        else:
            engine = None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        print(f"smmflow casscf: {exc}", file=sys.stderr)
        return 2
    try:  # a geometry that cannot be this complex, then the calculation: failed result, exit 1
        if len(atoms) == 0 or atoms[0].symbol != "Dy":
            raise ValueError("atom 1 must be Dy (then 5 waters, then the two ligands)")
        check_charge(atoms)
        if args.tier != "full" and "initial_charges" not in atoms.arrays:
            print(f"smmflow casscf: {args.xyz} has no atomic charges: computing GFN2-xTB charges (tblite) "
                  "for the point charges", file=sys.stderr)
            add_xtb_charges(atoms)
        res = casscf.DyCasscfSO(atoms, settings).kernel() if engine is None else engine.kernel(atoms)
    except (ValueError, abinitio_settings.CasscfFailure) as exc:
        res = casscf.failed_result(args.tier, str(exc), time.perf_counter() - t0)
        if args.json:
            write_json_atomic(args.json, res)
        print(f"smmflow casscf: failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        write_json_atomic(args.json, res)
    print(format_kd_table(res))
    return 0 if res["status"] == "ok" else 1
