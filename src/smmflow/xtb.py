"""GFN2-xTB (tblite) single points and constrained relaxations of [Dy(H2O)5L2].

Dy is treated by GFN2-xTB with its 4f shell in the core (closed shell, ``uhf=0``); the complex
charge is 3 + 2 q(L). Units: tblite works in bohr/hartree; this module takes and returns
positions in angstrom, energies in hartree, and uses eV/A only for force thresholds (``fmax``),
as ASE does.

Relaxation modes (Dy and the five waters are always frozen: the equatorial pentagon is kept)
-----------------------------------------------------------------------------------------------
``rigid``
    Each axial ligand moves as a rigid body (its internal geometry is the builder's MMFF94
    conformer): 3 translations + 3 rotations about its donor atom, 12 degrees of freedom in all,
    minimised with scipy L-BFGS-B on the exact GFN2 energy and its analytic rigid-body gradient.
    Converged when every generalised force component (eV/A for translations, eV/rad for
    rotations) is below ``fmax``.
``flexible``
    Every ligand atom moves (Cartesian L-BFGS-B), converged when every gradient component is
    below ``fmax`` eV/A. The reference against which ``rigid`` is measured.
``rigid+flexible``
    ``rigid`` then ``flexible`` from its result.
The SCC of every step restarts from the previous step's wavefunction (tblite result reuse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from smmflow import constants as C
from smmflow.complexes import N_FRAME_ATOMS, donor_indices

HARTREE_PER_BOHR_TO_EV_PER_A: float = C.HARTREE_TO_EV / C.BOHR_TO_ANGSTROM
RELAX_MODES: tuple[str, ...] = ("rigid", "flexible", "rigid+flexible")


class XtbError(RuntimeError):
    """tblite failed (SCC not converged, bad charge/electron count...)."""


@dataclass
class XtbProperties:
    """Results of one GFN2-xTB single point (atomic units unless the name says otherwise)."""

    energy_eh: float
    gradient: np.ndarray  # (n, 3) Eh/bohr
    charges: np.ndarray  # (n,) Mulliken charges, e
    dipole_ebohr: np.ndarray  # (3,) e*bohr
    orbital_energies_eh: np.ndarray
    orbital_occupations: np.ndarray  # 0..2 (restricted)
    bond_orders: np.ndarray  # (n, n) Wiberg-Mayer bond orders

    @property
    def dipole_debye(self) -> float:
        return float(np.linalg.norm(self.dipole_ebohr) * C.EBOHR_TO_DEBYE)

    def frontier_orbitals_ev(self) -> tuple[float, float]:
        """(HOMO, LUMO) energies in eV; occupied = occupation above 1 (Fermi smearing aware)."""
        e = self.orbital_energies_eh * C.HARTREE_TO_EV
        occ = self.orbital_occupations
        occupied = e[occ > 1.0]
        virtual = e[occ <= 1.0]
        homo = float(occupied.max()) if occupied.size else math.nan
        lumo = float(virtual.min()) if virtual.size else math.nan
        return homo, lumo


def _new_calculator(numbers: np.ndarray, positions_a: np.ndarray, charge: int, accuracy: float,
                    max_iter: int):
    from tblite.interface import Calculator

    try:
        calc = Calculator("GFN2-xTB", np.asarray(numbers, dtype=int),
                          np.asarray(positions_a, dtype=float) * C.ANGSTROM_TO_BOHR,
                          charge=float(charge), uhf=0)
    except Exception as exc:  # tblite raises its own error types
        raise XtbError(f"tblite setup failed: {exc}") from exc
    calc.set("verbosity", 0)
    calc.set("accuracy", float(accuracy))
    calc.set("max-iter", int(max_iter))
    return calc


def check_closed_shell(numbers: np.ndarray, charge: int) -> None:
    """Raise :class:`XtbError` if the electron count of a closed-shell (uhf=0) system is odd.

    Core shells hold an even number of electrons, so parity follows Z, except for the lanthanides,
    whose 4f shell GFN2-xTB keeps in the core: they count as their 3 valence electrons.
    """
    numbers = np.asarray(numbers, dtype=int)
    lanthanide = (numbers >= 57) & (numbers <= 71)
    n_el = int(np.sum(np.where(lanthanide, 3, numbers))) - int(charge)
    if n_el % 2:
        raise XtbError(f"odd electron count ({n_el}) for charge {charge}: not a closed shell")


def gfn2_singlepoint(numbers, positions_a, charge: int, *, accuracy: float = 1.0,
                     max_iter: int = 250) -> XtbProperties:
    """One GFN2-xTB single point; positions in A. Raises :class:`XtbError` on failure."""
    numbers = np.asarray(numbers, dtype=int)
    check_closed_shell(numbers, charge)
    calc = _new_calculator(numbers, positions_a, charge, accuracy, max_iter)
    calc.add("bond-orders")
    calc.add("molecular-multipoles")  # adding any post-processing drops the default dipole
    try:
        res = calc.singlepoint()
    except Exception as exc:
        raise XtbError(f"GFN2-xTB single point failed: {exc}") from exc
    return _properties(res)


def _properties(res) -> XtbProperties:
    def get(name):
        try:
            return np.asarray(res.get(name))
        except Exception:  # noqa: BLE001 - an absent optional property
            return np.empty(0)

    bond_orders = get("bond-orders")
    if bond_orders.ndim == 3:  # (n, n, spin channels)
        bond_orders = bond_orders.sum(axis=-1)
    return XtbProperties(
        energy_eh=float(res.get("energy")),
        gradient=get("gradient"),
        charges=get("charges"),
        dipole_ebohr=get("dipole"),
        orbital_energies_eh=get("orbital-energies"),
        orbital_occupations=get("orbital-occupations"),
        bond_orders=bond_orders,
    )


class GFN2Engine:
    """Energy and gradient of a fixed set of atoms at changing positions, reusing the SCC guess."""

    def __init__(self, numbers, positions_a, charge: int, *, accuracy: float = 1.0, max_iter: int = 250):
        self.numbers = np.asarray(numbers, dtype=int)
        check_closed_shell(self.numbers, charge)
        self.charge = int(charge)
        self._calc = _new_calculator(self.numbers, positions_a, charge, accuracy, max_iter)
        self._res = None
        self.n_calls = 0
        self.last_positions: np.ndarray | None = None

    def compute(self, positions_a: np.ndarray) -> tuple[float, np.ndarray]:
        """(energy in Eh, gradient in Eh/bohr) at ``positions_a`` (A)."""
        self._calc.update(np.asarray(positions_a, dtype=float) * C.ANGSTROM_TO_BOHR)
        try:
            self._res = self._calc.singlepoint(self._res)
        except Exception:
            try:  # a bad restart guess can stall the SCC: one retry from the atomic guess
                self._res = self._calc.singlepoint(None)
            except Exception as exc:
                raise XtbError(f"GFN2-xTB SCC failed: {exc}") from exc
        self.n_calls += 1
        self.last_positions = np.array(positions_a, dtype=float)
        return float(self._res.get("energy")), np.asarray(self._res.get("gradient"))

    def properties(self) -> XtbProperties:
        if self._res is None:
            raise XtbError("no single point computed yet")
        return _properties(self._res)


@dataclass
class RelaxInfo:
    mode: str
    converged: bool
    n_steps: int  # GFN2 energy+gradient evaluations
    energy_eh: float
    max_force_ev_a: float
    properties: XtbProperties | None = field(default=None, repr=False)


# --------------------------------------------------------------------------------------------
# rigid bodies
# --------------------------------------------------------------------------------------------
def _rotation_matrix(w: np.ndarray) -> np.ndarray:
    """exp([w]_x) (Rodrigues)."""
    th = float(np.linalg.norm(w))
    if th < 1e-12:
        k = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        return np.eye(3) + k
    k = w / th
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(th) * kx + (1 - math.cos(th)) * kx @ kx


def _rotation_derivatives(w: np.ndarray, h: float = 1e-6) -> list[np.ndarray]:
    """dR/dw_j by central differences (exact to O(h^2); no energy evaluation involved)."""
    out = []
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        out.append((_rotation_matrix(w + e) - _rotation_matrix(w - e)) / (2 * h))
    return out


def ligand_slices(atoms) -> list[slice]:
    d1, d2 = donor_indices(atoms)
    return [slice(d1, d2), slice(d2, len(atoms))]


def _relax_rigid(engine: GFN2Engine, positions: np.ndarray, slices: list[slice], fmax: float,
                 max_steps: int) -> tuple[np.ndarray, bool]:
    from scipy.optimize import minimize

    refs = [positions[s].copy() for s in slices]
    pivots = [r[0].copy() for r in refs]  # donor atoms

    def unpack(x):
        pos = positions.copy()
        rots = []
        for k, s in enumerate(slices):
            t, w = x[6 * k: 6 * k + 3], x[6 * k + 3: 6 * k + 6]
            r = _rotation_matrix(w)
            rots.append((w, r))
            pos[s] = (refs[k] - pivots[k]) @ r.T + pivots[k] + t
        return pos, rots

    def fun(x):
        pos, rots = unpack(x)
        e, g = engine.compute(pos)
        g = g * HARTREE_PER_BOHR_TO_EV_PER_A
        jac = np.zeros_like(x)
        for k, s in enumerate(slices):
            gk = g[s]
            jac[6 * k: 6 * k + 3] = gk.sum(axis=0)
            rel = refs[k] - pivots[k]
            for j, dr in enumerate(_rotation_derivatives(rots[k][0])):
                jac[6 * k + 3 + j] = float(np.sum(gk * (rel @ dr.T)))
        return e * C.HARTREE_TO_EV, jac

    x0 = np.zeros(6 * len(slices))
    res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                   options={"gtol": fmax, "ftol": 1e-14, "maxiter": max_steps, "maxfun": 2 * max_steps,
                            "maxls": 10})
    pos, _ = unpack(res.x)
    if not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    converged = bool(np.max(np.abs(res.jac)) <= fmax)
    return pos, converged


def _relax_flexible(engine: GFN2Engine, positions: np.ndarray, free: np.ndarray, fmax: float,
                    max_steps: int) -> tuple[np.ndarray, bool]:
    from scipy.optimize import minimize

    def unpack(x):
        pos = positions.copy()
        pos[free] = x.reshape(-1, 3)
        return pos

    def fun(x):
        e, g = engine.compute(unpack(x))
        return e * C.HARTREE_TO_EV, (g[free] * HARTREE_PER_BOHR_TO_EV_PER_A).ravel()

    res = minimize(fun, positions[free].ravel(), jac=True, method="L-BFGS-B",
                   options={"gtol": fmax, "ftol": 1e-14, "maxiter": max_steps, "maxfun": 2 * max_steps,
                            "maxls": 10})
    pos = unpack(res.x)
    if not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    converged = bool(np.max(np.abs(res.jac)) <= fmax)
    return pos, converged


def relax_complex(atoms, *, mode: str = "rigid", fmax: float = 0.05, max_steps: int = 200,
                  accuracy: float = 1.0, max_iter: int = 250):
    """Relax the axial ligands of a [Dy(H2O)5L2] (Dy and waters frozen) with GFN2-xTB.

    Returns ``(relaxed_atoms, RelaxInfo)``; the copy carries ``initial_charges`` (GFN2 charges at
    the final geometry) and ``info['xtb_energy_eh']``. Raises :class:`XtbError` on SCC failure.
    """
    if mode not in RELAX_MODES:
        raise ValueError(f"unknown relaxation mode {mode!r}; choose one of {RELAX_MODES}")
    if fmax <= 0 or max_steps < 1:
        raise ValueError("fmax must be > 0 and max_steps >= 1")
    charge = int(atoms.info["charge"])
    pos = atoms.get_positions().copy()
    engine = GFN2Engine(atoms.numbers, pos, charge, accuracy=accuracy, max_iter=max_iter)
    converged = True
    if mode in ("rigid", "rigid+flexible"):
        pos, converged = _relax_rigid(engine, pos, ligand_slices(atoms), fmax, max_steps)
    if mode in ("flexible", "rigid+flexible"):
        free = np.arange(N_FRAME_ATOMS, len(atoms))
        pos, converged = _relax_flexible(engine, pos, free, fmax, max_steps)
    if engine.last_positions is None or not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    props = engine.properties()
    grad = props.gradient * HARTREE_PER_BOHR_TO_EV_PER_A
    out = atoms.copy()
    out.info = dict(atoms.info)
    out.set_positions(pos)
    out.set_initial_charges(props.charges)
    out.info["xtb_energy_eh"] = props.energy_eh
    info = RelaxInfo(
        mode=mode,
        converged=converged,
        n_steps=engine.n_calls,
        energy_eh=props.energy_eh,
        max_force_ev_a=float(np.max(np.linalg.norm(grad[N_FRAME_ATOMS:], axis=1))),
        properties=props,
    )
    return out, info
