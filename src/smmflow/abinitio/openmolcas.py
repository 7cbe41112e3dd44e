"""OpenMolcas engine: SA-CASSCF(9,7) + RASSI spin-orbit + SINGLE_ANISO for [Dy(H2O)5L2] complexes.

An independent second engine next to :mod:`smmflow.casscf` (PySCF), in PySCF's idiom: configure an
:class:`OpenMolcasCasscf` by attributes, call ``kernel(atoms)``; it writes the input, runs
``pymolcas`` in a fresh scratch folder, parses the output and returns a result dict with the same
keys as :func:`smmflow.casscf.run_complex` (``kd_energies_cm1``, ``g_principal``, ``status`` ...).

    from smmflow.abinitio.openmolcas import OpenMolcasCasscf
    mc = OpenMolcasCasscf(threads=2, mem_mb=4000)
    res = mc.kernel(atoms)          # ase.Atoms, Dy = atom 0, atoms.info["charge"]

Method (the reference input ``/work/shared/reference/openmolcas_dy_oh2/openmolcas.inp``):
GATEWAY (``Basis`` default ANO-RCC-VDZP on every atom, scalar DKH2 = the ANO-RCC default, RICD
(acCD) two-electron integrals, AMFI, ANGMOM at Dy, Group=NoSym); SEWARD; GUESSORB; RASSCF
CAS(9,7) Spin 6 over all 21 sextet roots with equal weights, Inactive = (N_electrons - 9)/2,
started from the GUESSORB orbitals (``FileOrb = $Project.GssOrb``) after checking that the 7 orbitals
going into the active space are Dy 4f (and swapping the Dy-4f ones in with ``Alter`` when the guess
orders them differently); RASSI SpinOrbit over the 21 x 6 components; SINGLE_ANISO (MLTP 8 x 2).
After RASSCF the active natural orbitals are checked to be Dy-4f dominated.

Only the ``full`` tier (the whole complex quantum) is implemented; see docs/openmolcas.md.

The input writer (:func:`write_input`) and the output parsers (:func:`parse_output`,
:func:`parse_orbitals`) are pure functions of text, so they are unit-tested without pymolcas.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from smmflow.constants import DY_4F_ELECTRONS, N_KRAMERS_DOUBLETS_GROUND_MULTIPLET
from smmflow.geometry.contract import N_FRAME_ATOMS

ENGINE = "openmolcas"
TIERS = ("full",)
NCAS = 7
NACTEL = DY_4F_ELECTRONS
N_SEXTETS = 21
SPIN_MULTIPLICITY = 6
DEFAULT_BASIS = "ANO-RCC-VDZP"
N_KD = N_KRAMERS_DOUBLETS_GROUND_MULTIPLET
PROJECT = "smm"  # $Project: names the files pymolcas writes (smm.GssOrb, smm.RasOrb, ...)


class OpenMolcasNotFound(RuntimeError):
    """No ``pymolcas`` executable (install with ``apt-get install openmolcas`` or load a module)."""


class OpenMolcasError(RuntimeError):
    """pymolcas ran but did not finish (non-zero exit, missing output sections)."""


# ---------------------------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------------------------


def electron_count(symbols: list[str], charge: int) -> int:
    from ase.data import atomic_numbers

    return int(sum(atomic_numbers[s] for s in symbols)) - int(charge)


def inactive_orbitals(symbols: list[str], charge: int) -> int:
    """Doubly occupied (inactive) orbitals outside the CAS(9,7): (N_electrons - 9) / 2."""
    n_el = electron_count(symbols, charge)
    if (n_el - NACTEL) % 2 or n_el <= NACTEL:
        raise ValueError(
            f"{n_el} electrons (charge {charge}) leave an odd number ({n_el - NACTEL}) outside the "
            f"{NACTEL} active 4f electrons: the charge does not fit a Dy(III) 4f9 complex"
        )
    return (n_el - NACTEL) // 2


def xyz_text(symbols: list[str], coords: np.ndarray, title: str = "") -> str:
    """The XYZ file GATEWAY reads (angstrom, 8 decimals); its sha256 is the geometry provenance."""
    lines = [str(len(symbols)), title.replace("\n", " ")]
    lines += [f"{s:<2s} {x:16.8f} {y:16.8f} {z:16.8f}" for s, (x, y, z) in zip(symbols, np.asarray(coords, float))]
    return "\n".join(lines) + "\n"


def check_complex(symbols: list[str], charge: int) -> None:
    """The geometry contract this engine relies on: exactly one Dy, at index 0; charge fits 4f9."""
    if not symbols or symbols[0] != "Dy":
        raise ValueError("atom 0 of the complex must be Dy (geometry contract)")
    if symbols.count("Dy") != 1:
        raise ValueError("the complex must contain exactly one Dy")
    inactive_orbitals(symbols, charge)


def write_guess_input(symbols: list[str], coords: np.ndarray, charge: int, basis: str = DEFAULT_BASIS,
                      xyz_name: str = "geom.xyz", title: str = "") -> tuple[str, str]:
    """(input, XYZ text) of stage 1: GATEWAY, SEWARD, GUESSORB (prints the guess orbitals' composition)."""
    check_complex(list(symbols), charge)
    if not isinstance(basis, str) or not re.fullmatch(r"[A-Za-z0-9.\-_+*]+", basis):
        raise ValueError(f"basis {basis!r}: one OpenMolcas basis label for every atom expected (e.g. ANO-RCC-VDZP)")
    dy = np.asarray(coords, float)[0]
    xyz = xyz_text(list(symbols), coords, title or f"Dy complex charge={int(charge)}")
    text = (
        "&GATEWAY\n"
        f"  Title = smmflow Dy(III) SA-CASSCF(9,7)+SO, {basis}, DKH2, AMFI, acCD-RI\n"
        f"  Coord = {xyz_name}\n"
        f"  Basis = {basis}\n"
        "  Group = NoSym\n"
        "  RICD\n"
        "  AMFI\n"
        f"  ANGMOM = {dy[0]:.8f} {dy[1]:.8f} {dy[2]:.8f} Angstrom\n"
        "&SEWARD\n"
        "&GUESSORB\n"
        "  PrMO = 3 1.0\n"
    )
    return text, xyz


def write_casscf_input(symbols: list[str], charge: int, alter: list[tuple[int, int]] | None = None) -> str:
    """Stage 2: RASSCF CAS(9,7)/21 sextets from the GUESSORB orbitals, RASSI SO, SINGLE_ANISO.

    ``alter``: pairs of (1-based) guess orbital indices to swap before RASSCF (brings Dy 4f
    orbitals into the active space; see :func:`plan_active_space`).
    """
    check_complex(list(symbols), charge)
    n_inact = inactive_orbitals(list(symbols), charge)
    roots = " ".join(str(i) for i in range(1, N_SEXTETS + 1))
    alter_block = ""
    if alter:
        # OpenMolcas syntax: the number of swaps, then one "symmetry orbital orbital" record per swap,
        # records separated by ';' (a plain blank-separated list fails: "Failure reading data after ALTER")
        pairs = " ; ".join(f"1 {a} {b}" for a, b in alter)
        alter_block = f"  Alter = {len(alter)} ; {pairs}\n"
    return (
        "&RASSCF\n"
        f"  Title = SA-CASSCF({NACTEL},{NCAS}) {N_SEXTETS} sextets\n"
        "  FileOrb = $Project.GssOrb\n"
        f"  Charge = {int(charge)}\n"
        f"  Spin = {SPIN_MULTIPLICITY}\n"
        f"  nActEl = {NACTEL} 0 0\n"
        f"  Inactive = {n_inact}\n"
        f"  Ras2 = {NCAS}\n"
        f"  CIRoot = {N_SEXTETS} {N_SEXTETS} 1\n"
        f"{alter_block}"
        "  OrbAppear = Compact\n"
        "  PrWF = 0.3\n"
        "  Iterations = 200 100\n"
        "&RASSI\n"
        f"  Nr of JobIph = 1 {N_SEXTETS}\n"
        f"  {roots}\n"
        "  SpinOrbit\n"
        "  Ejob\n"
        "  MEES\n"
        "&SINGLE_ANISO\n"
        "  MLTP\n"
        f"  {N_KD}\n"
        f"  {' '.join(['2'] * N_KD)}\n"
        "  UBAR\n"
    )


def write_input(symbols: list[str], coords: np.ndarray, charge: int, basis: str = DEFAULT_BASIS,
                xyz_name: str = "geom.xyz", alter: list[tuple[int, int]] | None = None) -> tuple[str, str]:
    """(single OpenMolcas input of both stages, XYZ text): the reference input's structure.

    The engine runs the two stages as two pymolcas calls on one work directory so that the guess
    can be checked (and ``Alter`` chosen) before RASSCF; this joined text is for users who want
    to run the same calculation by hand. Pure function: nothing is written.
    """
    guess, xyz = write_guess_input(symbols, coords, charge, basis, xyz_name)
    return guess + write_casscf_input(symbols, charge, alter), xyz


# ---------------------------------------------------------------------------------------------
# output parsing (pure functions of the output text)
# ---------------------------------------------------------------------------------------------

_FLOAT = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[EeDd][-+]?\d+)?"


def _f(x: str) -> float:
    return float(x.replace("D", "E").replace("d", "e"))


def module_sections(text: str) -> dict[str, str]:
    """Text of each module run (``--- Start Module: name`` ... ``--- Stop Module: name``), last wins."""
    out = {}
    for m in re.finditer(r"--- Start Module: (\w+).*?\n(.*?)--- Stop Module: \1[^\n]*?/rc=(\w+)", text, re.S):
        out[m.group(1).lower()] = m.group(2)
        out[m.group(1).lower() + ":rc"] = m.group(3)
    return out


def parse_version(text: str) -> str:
    m = re.search(r"version:\s*(v?[\w.\-]+)", text)
    return m.group(1) if m else "unknown"


_ORB_HEAD = re.compile(rf"^\s*(\d+)\s*({_FLOAT})\s+({_FLOAT})(.*)$")
_ORB_TERM = re.compile(rf"(\d+)\s+([A-Za-z]+\d*)\s+(\S+)\s+\(\s*({_FLOAT})\)")


def orbital_listing(module_text: str) -> str:
    """The last ``++ Molecular orbitals:`` block of one module's output (GUESSORB or RASSCF)."""
    i = module_text.rfind("Molecular orbitals:")
    if i < 0:
        return ""
    block = module_text[i:]
    m = re.search(r"^--\s*$", block, re.M)
    return block[: m.start()] if m else block


def parse_orbitals(block: str) -> list[dict[str, Any]]:
    """Orbitals of a PrMO / OrbAppear=Compact listing (GUESSORB or RASSCF): index, energy,
    occupation and the printed terms (basis function number, centre label, function label, coefficient).

    Only coefficients above the print threshold (~0.1) are listed, so compositions are approximate.
    """
    orbs: list[dict[str, Any]] = []
    cur = None
    for line in block.splitlines():
        m = _ORB_HEAD.match(line)
        if m and not re.match(r"\s*\(", m.group(4)) and not re.match(r"\s*[A-Za-z]", m.group(4)):
            cur = {"index": int(m.group(1)), "energy": _f(m.group(2)), "occupation": _f(m.group(3)), "terms": []}
            orbs.append(cur)
            rest = m.group(4)
        elif cur is not None and _ORB_TERM.search(line):
            rest = line
        else:
            if line.strip():
                cur = None
            continue
        for t in _ORB_TERM.finditer(rest):
            cur["terms"].append((int(t.group(1)), t.group(2), t.group(3), _f(t.group(4))))
    return orbs


def dy_f_weight(orb: dict[str, Any], dy_label: str = "DY1") -> float:
    """Sum of squared printed coefficients on Dy f functions (~1 for a pure Dy 4f orbital)."""
    return float(sum(c * c for _, centre, fn, c in orb["terms"] if centre.upper() == dy_label and fn[1:2] == "f"))


#: default Dy-f weight every guess orbital chosen for the active space must reach. Lower than the
#: final check (``f_population_min``, 0.8): GUESSORB's guess often mixes one or two 4f orbitals with a
#: near-degenerate ligand lone pair (weights 0.63-0.65 for the 7th orbital, 0.26 for the 8th, on
#: tiny-config complexes in ANO-RCC-MB), which RASSCF then unmixes; the RASSCF active orbitals are
#: checked against ``f_population_min``.
GUESS_F_MIN = 0.5


def plan_active_space(orbs: list[dict[str, Any]], n_inactive: int, f_min: float = GUESS_F_MIN) -> tuple[list[tuple[int, int]], list[float]]:
    """``Alter`` swaps that put the 7 most Dy-4f orbitals of the guess into the active space
    (orbitals n_inactive+1 .. n_inactive+7) and their Dy-f weights.

    Raises :class:`ValueError` when the guess has fewer than 7 orbitals with Dy-f weight >= f_min.
    """
    by_index = {o["index"]: o for o in orbs}
    weights = {i: dy_f_weight(o) for i, o in by_index.items()}
    f_like = sorted([i for i, w in weights.items() if w >= f_min], key=lambda i: -weights[i])
    if len(f_like) < NCAS:
        raise ValueError(
            f"the guess orbitals contain only {len(f_like)} Dy-4f orbitals (Dy-f weight >= {f_min}); "
            f"{NCAS} needed for the active space"
        )
    f_like = sorted(f_like[:NCAS])
    active = list(range(n_inactive + 1, n_inactive + NCAS + 1))
    missing = [i for i in active if i not in by_index]
    if missing:
        raise ValueError(f"orbitals {missing} of the active space are not in the printed guess listing")
    outside = [i for i in f_like if i not in active]
    intruders = [i for i in active if i not in f_like]
    return list(zip(intruders, outside)), [weights[i] for i in (sorted(set(active) - set(intruders)) + outside)]


# ---------------------------------------------------------------------------------------------
# running pymolcas
# ---------------------------------------------------------------------------------------------


def find_pymolcas(executable: str | None = None) -> str:
    """Path of the pymolcas driver: ``executable`` (name or path), else ``pymolcas`` on PATH, else
    ``$MOLCAS/pymolcas``. Raises :class:`OpenMolcasNotFound` (one line) when there is none."""
    candidates = [executable] if executable else ["pymolcas"]
    if not executable and os.environ.get("MOLCAS"):
        candidates.append(str(Path(os.environ["MOLCAS"]) / "pymolcas"))
    for c in candidates:
        hit = shutil.which(c)
        if hit:
            return hit
    raise OpenMolcasNotFound(
        f"pymolcas not found ({', '.join(candidates)}): install OpenMolcas (apt-get install openmolcas) "
        "or put pymolcas on PATH / set MOLCAS"
    )


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_pymolcas(pymolcas: str, input_name: str, job_dir: Path, env: dict[str, str], timeout_s: float | None) -> str:
    """Run ``pymolcas input_name`` in ``job_dir``; returns the output text (raises OpenMolcasError)."""
    log = job_dir / (Path(input_name).stem + ".log")
    with open(log, "w") as fh:
        try:
            proc = subprocess.run([pymolcas, input_name], cwd=job_dir, env=env, stdout=fh,
                                  stderr=subprocess.STDOUT, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise OpenMolcasError(f"pymolcas {input_name} exceeded {timeout_s} s") from exc
    text = log.read_text(errors="replace")
    bad = re.findall(r"--- Stop Module: (\w+)[^\n]*/rc=(?!_RC_ALL_IS_WELL_)(\w+)", text)
    if proc.returncode != 0 or bad:
        where = ", ".join(f"{m} rc={rc}" for m, rc in bad) or f"exit status {proc.returncode}"
        raise OpenMolcasError(f"pymolcas {input_name} failed ({where}); see {log.name}")
    return text


def _table_after(text: str, marker: str, row: re.Pattern) -> list[re.Match]:
    """Consecutive rows matching ``row`` in the table that follows the last ``marker``."""
    i = text.rfind(marker)
    if i < 0:
        return []
    rows, started = [], False
    for line in text[i + len(marker):].splitlines():
        m = row.match(line)
        if m:
            rows.append(m)
            started = True
        elif started and line.strip():
            break
    return rows


def parse_so_energies(text: str) -> np.ndarray:
    """All spin-orbit energies (cm-1, ascending, relative to the lowest).

    From SINGLE_ANISO's ``ENERGY OF THE SPIN-ORBIT STATE`` lines (14 decimals); falls back to
    RASSI's ``Eigenvalues of complex Hamiltonian`` table (relative a.u. column)."""
    vals = [_f(x) for x in re.findall(rf"ENERGY OF THE SPIN-ORBIT STATE\s*\(\s*\d+\)\s*=\s*({_FLOAT})", text)]
    if vals:
        e = np.array(vals)
    else:
        from smmflow.constants import HARTREE_TO_CM1

        rows = _table_after(text, "Eigenvalues of complex Hamiltonian:",
                            re.compile(rf"^\s*\d+\s+({_FLOAT})\s+{_FLOAT}\s+{_FLOAT}\s*$"))
        e = np.array([_f(m.group(1)) for m in rows]) * HARTREE_TO_CM1
    if e.size == 0:
        raise OpenMolcasError("no spin-orbit energies in the output (RASSI/SINGLE_ANISO missing?)")
    e = np.sort(e)
    return e - e[0]


def parse_sf_energies(text: str) -> np.ndarray:
    """Spin-free (SA-CASSCF root) energies, cm-1 relative to the lowest, ascending."""
    vals = [_f(x) for x in re.findall(rf"ENERGY OF THE SPIN-FREE STATE\s*\(\s*\d+\)\s*=\s*({_FLOAT})", text)]
    if not vals:
        roots = re.findall(rf"RASSCF root number\s+\d+\s+Total energy:\s*({_FLOAT})", text)
        from smmflow.constants import HARTREE_TO_CM1

        vals = [_f(x) * HARTREE_TO_CM1 for x in roots]
    e = np.sort(np.array(vals, dtype=float))
    return e - e[0] if e.size else e


_G_LINE = re.compile(rf"^\s*g([XYZ])\s*=\s*({_FLOAT})\s*\|\s*([XYZ])m\s*\|\s*({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})\s*\|")


def parse_g_tensors(text: str) -> list[dict[str, Any]]:
    """Per multiplet (KD) of SINGLE_ANISO: principal g-values and main axes as printed
    (SINGLE_ANISO order: gX, gY, gZ with Zm its main axis, which is not always the largest g),
    and the tunnelling splitting."""
    out = []
    parts = re.split(r"CALCULATION OF PSEUDOSPIN HAMILTONIAN TENSORS FOR THE MULTIPLET\s+(\d+)", text)
    for k in range(1, len(parts) - 1, 2):
        body = parts[k + 1]
        g, axes = {}, {}
        for line in body[body.find("g TENSOR:"):].splitlines():
            m = _G_LINE.match(line)
            if m:
                g[m.group(1)] = _f(m.group(2))
                axes[m.group(3)] = [_f(m.group(i)) for i in (4, 5, 6)]
            elif len(g) == 3:
                break
        if len(g) < 3:
            continue
        ts = re.search(rf"Tunnelling splitting:\s*({_FLOAT})", body)
        out.append({"multiplet": int(parts[k]), "g": [g["X"], g["Y"], g["Z"]],
                    "axes": [axes["X"], axes["Y"], axes["Z"]],
                    "tunnelling_splitting_cm1": _f(ts.group(1)) if ts else None})
    return out


def sorted_g(entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(g ascending gx <= gy <= gz, 3x3 axes as columns in that order), the PySCF engine's convention."""
    g = np.asarray(entry["g"], float)
    ax = np.asarray(entry["axes"], float).T  # columns: Xm, Ym, Zm
    order = np.argsort(g, kind="stable")
    return g[order], ax[:, order]


_UBAR_ROW = re.compile(
    rf"<\s*(\d+)\.1([+-])\s*\|\s*mu_Y\s*\|\s*(\d+)\.1([+-])\s*>\s*\|\s*{_FLOAT}\s+{_FLOAT}\s*\|\s*({_FLOAT})\s*\|")


def parse_ubar(text: str, n_kd: int = N_KD) -> np.ndarray | None:
    """SINGLE_ANISO's ``AB INITIO BLOCKING BARRIER`` section (keyword UBAR) as a (2 n_kd, 2 n_kd)
    matrix of averaged transition moments ``(|mu_X| + |mu_Y| + |mu_Z|) / 3`` (mu_B) between the
    states of definite magnetisation 1+, 1-, 2+, 2-, ... (the PySCF engine's
    ``transition_moments_mub`` layout). SINGLE_ANISO prints <a+|mu|b+> and <a+|mu|b-> for a <= b; the
    other entries follow from time reversal (|<a-|mu|b->| = |<a+|mu|b+>|) and hermiticity.
    None when the section is absent."""
    i = text.find("AB INITIO BLOCKING BARRIER")
    if i < 0:
        return None
    tm = np.full((2 * n_kd, 2 * n_kd), np.nan)
    for m in _UBAR_ROW.finditer(text[i:]):
        a, sa, b, sb, v = int(m.group(1)) - 1, m.group(2), int(m.group(3)) - 1, m.group(4), _f(m.group(5))
        if a >= n_kd or b >= n_kd:
            continue
        ia, ib = 2 * a + (sa == "-"), 2 * b + (sb == "-")
        ja, jb = 2 * a + (sa == "+"), 2 * b + (sb == "+")  # time-reversed partners
        for x, y in ((ia, ib), (ja, jb)):
            tm[x, y] = tm[y, x] = v
    return tm


def rasscf_converged(text: str) -> bool:
    rs = module_sections(text).get("rasscf", text)
    return bool(re.search(r"Convergence after\s+\d+\s+iterations", rs)) and not re.search(r"No convergence", rs, re.I)


def parse_output(text: str, n_inactive: int | None = None, kramers_tol_cm1: float = 0.01,
                 f_population_min: float = 0.8) -> dict[str, Any]:
    """Result dict (the PySCF engine's keys) from the text of the RASSCF/RASSI/SINGLE_ANISO output.

    ``n_inactive``: when given, the 7 active natural orbitals (n_inactive+1 ..) are taken from
    RASSCF's final orbital listing and their Dy-f weights checked. Pure function.
    """
    so = parse_so_energies(text)
    if so.size < 2 * N_KD:
        raise OpenMolcasError(f"only {so.size} spin-orbit states in the output; {2 * N_KD} needed")
    kd = so[0 : 2 * N_KD : 2]
    kramers = float(np.max(np.abs(so[1 : 2 * N_KD : 2] - so[0 : 2 * N_KD : 2])))
    gt = parse_g_tensors(text)
    if len(gt) < N_KD:
        raise OpenMolcasError(f"SINGLE_ANISO printed g-tensors for {len(gt)} KDs; {N_KD} needed")
    gs, axes = zip(*(sorted_g(e) for e in gt[:N_KD]))
    res: dict[str, Any] = {
        "kd_energies_cm1": kd.tolist(),
        "g_principal": [g.tolist() for g in gs],
        "g_axes": [a.tolist() for a in axes],
        "easy_axis": axes[0][:, 2].tolist(),
        "g_single_aniso_order": [e["g"] for e in gt[:N_KD]],
        "tunnelling_splitting_cm1": [e["tunnelling_splitting_cm1"] for e in gt[:N_KD]],
        "so_energies_cm1": so.tolist(),
        "sf_energies_cm1": parse_sf_energies(text).tolist(),
        "kramers_splitting_max_cm1": kramers,
        "converged": rasscf_converged(text),
        "zeta_4f_cm1": None,  # not printed by OpenMolcas; kept for key parity with the PySCF engine
    }
    tm = parse_ubar(text)
    res["transition_moments_mub"] = None if tm is None else np.where(np.isnan(tm), None, tm).tolist()
    res["ueff_cm1"], res["ueff_kd"] = None, None
    if tm is not None and not np.isnan(np.diag(tm[0::2, 1::2])).any():
        from smmflow.abinitio.magnetism import blocking_barrier

        ueff, i_kd = blocking_barrier(kd, tm)
        res["ueff_cm1"], res["ueff_kd"] = ueff, int(i_kd) + 1
    if n_inactive is not None:
        rs = module_sections(text).get("rasscf", text)
        orbs = {o["index"]: o for o in parse_orbitals(orbital_listing(rs))}
        act = [orbs.get(n_inactive + k) for k in range(1, NCAS + 1)]
        res["active_f_population"] = [dy_f_weight(o) if o else None for o in act]
    tm = re.search(r"Timing: Wall=\s*([\d.]+)\s+User=\s*([\d.]+)\s+System=\s*([\d.]+)", text)
    if tm:
        res["molcas_timing_s"] = {"wall": float(tm.group(1)), "user": float(tm.group(2)), "system": float(tm.group(3))}
    status, reason = validate(res, kramers_tol_cm1, f_population_min)
    res["status"], res["reason"] = status, reason
    return res


def validate(res: dict[str, Any], kramers_tol_cm1: float = 0.01, f_population_min: float = 0.8) -> tuple[str, str]:
    """``ok``/``failed`` and the reasons: RASSCF not converged, broken Kramers pairs, active
    orbitals not Dy 4f, ground multiplet not J = 15/2 (no gap after the 16th SO state)."""
    reasons = []
    if not res.get("converged", False):
        reasons.append("RASSCF not converged")
    if res["kramers_splitting_max_cm1"] > kramers_tol_cm1:
        reasons.append(f"broken Kramers pairs ({res['kramers_splitting_max_cm1']:.3g} cm-1)")
    fpop = res.get("active_f_population")
    if fpop is not None:
        if any(f is None for f in fpop):
            reasons.append("active orbitals missing from the RASSCF orbital listing")
        elif min(fpop) < f_population_min:
            reasons.append(f"active orbital not 4f (min Dy-f weight {min(fpop):.2f})")
    so = res["so_energies_cm1"]
    if len(so) > 16 and so[16] - so[15] < 1000.0:
        reasons.append("no 6H15/2-6H13/2 gap: ground multiplet is not J=15/2")
    return ("failed", "; ".join(reasons)) if reasons else ("ok", "")


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------


def failed_result(tier: str, reason: str, wall_s: float = 0.0, **extra: Any) -> dict[str, Any]:
    """The result of a calculation that failed for a physical/input/run reason (PySCF engine's form)."""
    res = {"tier": tier, "status": "failed", "reason": reason, "converged": False, "wall_s": wall_s,
           "kd_energies_cm1": None, "g_principal": None}
    res.update(extra)
    return res


class OpenMolcasCasscf:
    """SA-CASSCF(9,7)/21 sextets + RASSI-SO + SINGLE_ANISO with OpenMolcas, configured by attributes.

    Attributes
    ----------
    tier : only ``"full"`` (the whole complex quantum)
    basis : OpenMolcas basis label for every atom (default ANO-RCC-VDZP; scalar DKH2 comes with ANO-RCC)
    charge : total charge; None -> ``atoms.info["charge"]``
    threads : OpenMP/BLAS threads (OMP_NUM_THREADS)
    nprocs : MPI processes (MOLCAS_NPROCS); the Debian build is serial, keep 1 there
    mem_mb : MOLCAS_MEM per process, MB
    scratch_dir : parent folder of the per-job scratch folder (default: the system temp dir)
    pymolcas : executable name or path (default: ``pymolcas`` on PATH, else ``$MOLCAS/pymolcas``)
    keep_scratch : keep the job folder (inputs, outputs, orbital files) instead of deleting it
    timeout_s : wall-clock limit of each pymolcas call (None: none)
    f_population_min : minimum Dy-f weight of every final (RASSCF) active orbital
    guess_f_population_min : minimum Dy-f weight of the 7 guess orbitals put into the active space
    kramers_tol_cm1 : largest tolerated splitting of a Kramers pair
    """

    def __init__(self, **kwargs: Any) -> None:
        self.tier = "full"
        self.basis = DEFAULT_BASIS
        self.charge: int | None = None
        self.threads = 1
        self.nprocs = 1
        self.mem_mb = 2000
        self.scratch_dir: str | None = None
        self.pymolcas: str | None = None
        self.keep_scratch = False
        self.timeout_s: float | None = None
        self.f_population_min = 0.8
        self.guess_f_population_min = GUESS_F_MIN
        self.kramers_tol_cm1 = 0.01
        for k, v in kwargs.items():
            if not hasattr(self, k):
                raise TypeError(f"OpenMolcasCasscf has no setting {k!r}")
            setattr(self, k, v)
        self.result: dict[str, Any] | None = None
        self.scratch: str | None = None

    def settings(self) -> dict[str, Any]:
        keys = ("tier", "basis", "charge", "threads", "nprocs", "mem_mb", "timeout_s", "f_population_min",
                "guess_f_population_min", "kramers_tol_cm1")
        return {k: getattr(self, k) for k in keys}

    def environment(self, workdir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            MOLCAS_PROJECT=PROJECT,
            MOLCAS_WORKDIR=str(workdir),
            MOLCAS_OUTPUT=str(workdir.parent),  # orbital files etc. land in the job folder
            MOLCAS_KEEP_WORKDIR="YES",  # stage 2 reuses stage 1's integrals (same project + workdir)
            MOLCAS_NPROCS=str(int(self.nprocs)),
            OMP_NUM_THREADS=str(int(self.threads)),
            OPENBLAS_NUM_THREADS=str(int(self.threads)),
            MOLCAS_MEM=str(int(self.mem_mb)),
            MOLCAS_PRINT="NORMAL",
        )
        return env

    def _geometry(self, atoms) -> tuple[list[str], np.ndarray, int]:
        if self.tier not in TIERS:
            raise ValueError(f"openmolcas engine supports tier 'full' only (got {self.tier!r})")
        symbols = list(atoms.get_chemical_symbols())
        charge = self.charge if self.charge is not None else atoms.info.get("charge")
        if charge is None:
            raise ValueError("no charge: set OpenMolcasCasscf.charge or atoms.info['charge']")
        if self.charge is not None and "charge" in atoms.info and int(atoms.info["charge"]) != int(self.charge):
            raise ValueError(f"charge {self.charge} disagrees with atoms.info['charge'] = {atoms.info['charge']}")
        check_complex(symbols, int(charge))
        return symbols, np.asarray(atoms.positions, float), int(charge)

    def kernel(self, atoms) -> dict[str, Any]:
        """Run the calculation on ``atoms`` (Dy = atom 0) and return the result dict.

        Raises ``ValueError`` for bad input (wrong tier, no Dy at index 0, charge not 4f9) and
        :class:`OpenMolcasNotFound` when there is no pymolcas; a calculation that ran but failed
        (pymolcas error, guess without 7 Dy-4f orbitals, non-4f active orbitals, unconverged
        RASSCF, broken Kramers pairs) returns ``status == "failed"`` with the reason.
        """
        symbols, coords, charge = self._geometry(atoms)
        exe = find_pymolcas(self.pymolcas)
        t0 = time.perf_counter()
        cpu0 = _children_cpu_s()
        n_inact = inactive_orbitals(symbols, charge)
        guess_inp, xyz = write_guess_input(symbols, coords, charge, self.basis, "geom.xyz")
        provenance = {"engine": ENGINE, "openmolcas_version": None, "basis": self.basis,
                      "settings": self.settings(), "geometry_sha256": hashlib.sha256(xyz.encode()).hexdigest(),
                      "pymolcas": exe}
        job = Path(tempfile.mkdtemp(prefix="smmflow-molcas-", dir=self.scratch_dir))
        self.scratch = str(job)
        extra: dict[str, Any] = {}
        try:
            (job / "geom.xyz").write_text(xyz)
            (job / "guess.inp").write_text(guess_inp)
            (job / "work").mkdir()
            env = self.environment(job / "work")
            try:
                out1 = run_pymolcas(exe, "guess.inp", job, env, self.timeout_s)
                provenance["openmolcas_version"] = parse_version(out1)
                orbs = parse_orbitals(orbital_listing(module_sections(out1).get("guessorb", "")))
                try:
                    alter, fw = plan_active_space(orbs, n_inact, self.guess_f_population_min)
                except ValueError as exc:
                    raise OpenMolcasError(f"GUESSORB: {exc}") from exc
                extra.update(guess_alter=[list(p) for p in alter], guess_active_f_population=fw)
                (job / "casscf.inp").write_text(write_casscf_input(symbols, charge, alter))
                out2 = run_pymolcas(exe, "casscf.inp", job, env, self.timeout_s)
                res = parse_output(out2, n_inact, self.kramers_tol_cm1, self.f_population_min)
            except OpenMolcasError as exc:
                res = failed_result(self.tier, f"OpenMolcasError: {exc}")
            if self.keep_scratch:
                res["scratch"] = str(job)
        finally:
            if not self.keep_scratch:
                shutil.rmtree(job, ignore_errors=True)
        res.update(extra)
        res.update(tier=self.tier, wall_s=time.perf_counter() - t0, cpu_s=_children_cpu_s() - cpu0,
                   n_inactive=n_inact, provenance=provenance)
        res.setdefault("easy_axis_angle_deg", easy_axis_angle(atoms, res.get("easy_axis")))
        self.result = res
        return res

    run = kernel


def easy_axis_angle(atoms, easy_axis) -> float | None:
    """Angle of the ground easy axis to the L-Dy-L axis (as in the PySCF engine), None if unknown."""
    if easy_axis is None or len(atoms) <= N_FRAME_ATOMS:
        return None
    try:
        from smmflow.abinitio.magnetism import axis_angle_deg
        from smmflow.geometry.contract import donor_indices

        d1, d2 = donor_indices(atoms)
        p = atoms.positions
        u1 = (p[d1] - p[0]) / np.linalg.norm(p[d1] - p[0])
        u2 = (p[d2] - p[0]) / np.linalg.norm(p[d2] - p[0])
        return axis_angle_deg(np.asarray(easy_axis), u1 - u2)
    except (ValueError, IndexError):
        return None


def run_complex(atoms, **settings: Any) -> dict[str, Any]:
    """Functional form: ``OpenMolcasCasscf(**settings).kernel(atoms)``."""
    return OpenMolcasCasscf(**settings).kernel(atoms)
