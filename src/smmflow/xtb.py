"""GFN2-xTB (tblite) single points and constrained relaxations of [Dy(H2O)5L2].

Dy is treated by GFN2-xTB with its 4f shell in the core (closed shell, ``uhf=0``); the complex
charge is 3 + 2 q(L). Units: tblite works in bohr/hartree; this module takes and returns
positions in angstrom, energies in hartree, and uses eV/A only for force thresholds (``fmax``),
as ASE does.

Relaxation modes (Dy and the five water O atoms are always frozen: the equatorial pentagon is
kept; with ``waters='rotate'`` each water may turn about its O, otherwise the waters are frozen)
-----------------------------------------------------------------------------------------------
``axial``
    The cheapest: each ligand only slides along and turns about its Dy-donor axis (2 degrees of
    freedom per ligand): relaxes the Dy-donor distances, keeps the builder's L-Dy-L angle (180).
``rigid``
    Each axial ligand moves as a rigid body (its internal geometry is the builder's MMFF94
    conformer): 3 translations + 3 rotations about its donor atom, 12 degrees of freedom in all
    (+3 per rotating water). Rotations are scaled by the body's RMS lever length, so every
    coordinate is in A and every generalised force in eV/A.
``flexible``
    Every ligand atom moves (Cartesian; plus the water H atoms with ``waters='rotate'``). The
    reference against which ``rigid`` is measured.
``rigid+flexible``
    ``rigid`` then ``flexible`` from its result.
Both use :func:`bfgs_trust`: BFGS with a per-body/per-atom step cap (``maxstep``, A) and no line
search, one GFN2 energy+gradient per step; converged when every atom's (body's) force is below
``fmax`` eV/A. (scipy L-BFGS-B was tried first: its line search makes long trial steps on which
the SCC from the previous wavefunction stalls, costing up to 20 s per step.)
The SCC of every step restarts from the previous step's wavefunction (tblite result reuse).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from smmflow import constants as C
from smmflow.complexes import N_FRAME_ATOMS, donor_indices

HARTREE_PER_BOHR_TO_EV_PER_A: float = C.HARTREE_TO_EV / C.BOHR_TO_ANGSTROM
RELAX_MODES: tuple[str, ...] = ("axial", "rigid", "flexible", "rigid+flexible")
WATER_MODES: tuple[str, ...] = ("fixed", "rotate")
#: initial BFGS Hessian (eV/A^2) for rigid-body coordinates (Cartesian atoms use ASE's 70)
RIGID_H0_EV_A2: float = 3.0  # 3 needed ~25% fewer steps than 10 and 40% fewer than 30 (8 ligands)


class XtbError(RuntimeError):
    """tblite failed (SCC not converged, bad charge/electron count...)."""


class XtbTimeout(XtbError):
    """The wall-time budget of a relaxation ran out (checked before every SCC)."""


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
                     max_iter: int = 100) -> XtbProperties:
    """One GFN2-xTB single point; positions in A. Raises :class:`XtbError` on failure.

    Atomic (SAD) guess with ``max_iter`` SCC iterations, then one retry from the EEQ guess with
    mixer damping 0.2 and 250 iterations.
    """
    numbers = np.asarray(numbers, dtype=int)
    check_closed_shell(numbers, charge)
    calc = _new_calculator(numbers, positions_a, charge, accuracy, max_iter)
    calc.add("bond-orders")
    calc.add("molecular-multipoles")  # adding any post-processing drops the default dipole
    try:
        res = calc.singlepoint()
    except Exception:
        try:
            calc.set("guess", 1)
            calc.set("mixer-damping", 0.2)
            calc.set("max-iter", max(250, int(max_iter)))
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

    def __init__(self, numbers, positions_a, charge: int, *, accuracy: float = 1.0, max_iter: int = 100,
                 deadline: float | None = None):
        self.numbers = np.asarray(numbers, dtype=int)
        check_closed_shell(self.numbers, charge)
        self.charge = int(charge)
        self._calc = _new_calculator(self.numbers, positions_a, charge, accuracy, max_iter)
        self._res = None
        self.max_iter = int(max_iter)
        self.deadline = deadline  # time.monotonic() value after which no new SCC is started
        self.n_calls = 0
        self.n_scc_retries = 0
        self.last_positions: np.ndarray | None = None

    def compute(self, positions_a: np.ndarray) -> tuple[float, np.ndarray]:
        """(energy in Eh, gradient in Eh/bohr) at ``positions_a`` (A).

        SCC from the previous step's wavefunction with at most ``max_iter`` iterations; if that
        fails (small-gap complexes can need ~200 Broyden iterations from the atomic guess), a
        retry from the EEQ-charge guess with mixer damping 0.2 and 250 iterations, then from the
        atomic guess with damping 0.1 and 300 iterations. No SCC starts after ``deadline``
        (:class:`XtbTimeout`); a single SCC cannot be interrupted, so the overrun is bounded by
        one SCC (~300 iterations, ~10 s for a 50-atom complex).
        """
        self._check_deadline()
        self._calc.update(np.asarray(positions_a, dtype=float) * C.ANGSTROM_TO_BOHR)
        try:
            self._res = self._calc.singlepoint(self._res)
        except Exception:
            self._res = None
            last: Exception | None = None
            # EEQ guess + damping 0.2, then atomic guess + damping 0.1 with more iterations
            for guess, damping, iters in ((1, 0.2, max(250, self.max_iter)), (0, 0.1, 300)):
                self._check_deadline()
                try:
                    self._calc.set("guess", guess)
                    self._calc.set("mixer-damping", damping)
                    self._calc.set("max-iter", iters)
                    self._res = self._calc.singlepoint(None)
                    break
                except Exception as exc:  # noqa: BLE001
                    last = exc
                finally:
                    self._calc.set("guess", 0)
                    self._calc.set("mixer-damping", 0.4)
                    self._calc.set("max-iter", self.max_iter)
            self.n_scc_retries += 1
            if self._res is None:
                raise XtbError(f"GFN2-xTB SCC failed: {last}") from last
        self.n_calls += 1
        self.last_positions = np.array(positions_a, dtype=float)
        return float(self._res.get("energy")), np.asarray(self._res.get("gradient"))

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise XtbTimeout(f"wall-time cap reached after {self.n_calls} GFN2 evaluations")

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


@dataclass(frozen=True)
class RigidBody:
    """Atoms moved together: rotation about ``pivot`` (an atom index) and optionally translation."""

    indices: np.ndarray
    pivot: int
    translate: bool = True


def rigid_bodies(atoms, waters: str = "fixed") -> list[RigidBody]:
    """The two axial ligands (rotate about their donor + translate); with ``waters='rotate'`` also
    each water as a body rotating about its (fixed) O, so the pentagon is kept."""
    bodies = [RigidBody(np.arange(s.start, s.stop), s.start, True) for s in ligand_slices(atoms)]
    if waters == "rotate":
        for k in range(C.N_EQUATORIAL_WATERS):
            o = 1 + 3 * k
            bodies.append(RigidBody(np.array([o, o + 1, o + 2]), o, False))
    return bodies


def bfgs_trust(fun, x0: np.ndarray, groups: list[np.ndarray], *, fmax: float, max_steps: int,
               maxstep: float = 0.2, h0: float = 10.0) -> tuple[np.ndarray, bool]:
    """Minimise ``fun(x) -> (E, dE/dx)`` with BFGS steps capped at ``maxstep`` per group of
    coordinates (no line search: one energy+gradient per step, as ASE's BFGS). If ``fun`` raises
    :class:`XtbError` at a trial point, the step is shortened (x1/4, twice) before giving up.

    ``groups`` partitions the coordinates into 3-vectors (an atom, a body's translation, a body's
    scaled rotation); converged when every group's gradient norm is below ``fmax``. An energy rise
    resets the Hessian to ``h0``. Returns ``(x, converged)``.
    """
    x = np.array(x0, dtype=float)
    e, g = fun(x)
    n = len(x)
    hess = h0 * np.eye(n)
    for _ in range(max_steps):
        if max(float(np.linalg.norm(g[grp])) for grp in groups) < fmax:
            return x, True
        omega, v = np.linalg.eigh(hess)
        dx = v @ ((v.T @ -g) / np.abs(omega))
        longest = max(float(np.linalg.norm(dx[grp])) for grp in groups)
        if longest > maxstep:
            dx *= maxstep / longest
        for attempt in range(3):
            try:
                e_new, g_new = fun(x + dx)
                break
            except XtbTimeout:
                raise
            except XtbError:  # SCC failure at the trial geometry: try a shorter step (once)
                if attempt >= 1:
                    raise
                dx *= 0.25
        dg = g_new - g
        a = float(dx @ dg)
        hdx = hess @ dx
        b = float(dx @ hdx)
        if e_new > e + 1e-3:
            hess = h0 * np.eye(n)
        elif a > 1e-10 and b > 1e-10:
            hess += np.outer(dg, dg) / a - np.outer(hdx, hdx) / b
        x, e, g = x + dx, e_new, g_new
    return x, max(float(np.linalg.norm(g[grp])) for grp in groups) < fmax


def _relax_rigid(engine: GFN2Engine, positions: np.ndarray, bodies: list[RigidBody], fmax: float,
                 max_steps: int, maxstep: float = 0.2) -> tuple[np.ndarray, bool]:
    """Rigid-body relaxation. Coordinates per body: translation (A, if allowed) and rotation
    vector times the body's RMS lever length L (A), so that all steps and forces are in A, eV/A."""
    refs = [positions[b.indices] - positions[b.pivot] for b in bodies]
    pivots = [positions[b.pivot].copy() for b in bodies]
    levers = [max(0.5, float(np.sqrt(np.mean(np.sum(r**2, axis=1))))) for r in refs]
    layout = []  # (t slice or None, w slice) per body
    groups = []
    k = 0
    for b in bodies:
        ts = None
        if b.translate:
            ts = slice(k, k + 3)
            groups.append(np.arange(k, k + 3))
            k += 3
        layout.append((ts, slice(k, k + 3)))
        groups.append(np.arange(k, k + 3))
        k += 3

    def unpack(x):
        pos = positions.copy()
        for b, ref, piv, lev, (ts, ws) in zip(bodies, refs, pivots, levers, layout):
            t = x[ts] if ts is not None else 0.0
            pos[b.indices] = ref @ _rotation_matrix(x[ws] / lev).T + piv + t
        return pos

    def fun(x):
        e, g = engine.compute(unpack(x))
        g = g * HARTREE_PER_BOHR_TO_EV_PER_A
        jac = np.zeros_like(x)
        for b, ref, lev, (ts, ws) in zip(bodies, refs, levers, layout):
            gk = g[b.indices]
            if ts is not None:
                jac[ts] = gk.sum(axis=0)
            for j, dr in enumerate(_rotation_derivatives(x[ws] / lev)):
                jac[ws.start + j] = float(np.sum(gk * (ref @ dr.T))) / lev
        return e * C.HARTREE_TO_EV, jac

    x, converged = bfgs_trust(fun, np.zeros(k), groups, fmax=fmax, max_steps=max_steps, maxstep=maxstep,
                              h0=RIGID_H0_EV_A2)
    pos = unpack(x)
    if not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    return pos, converged


def _relax_axial(engine: GFN2Engine, positions: np.ndarray, slices: list[slice], fmax: float,
                 max_steps: int, maxstep: float = 0.2) -> tuple[np.ndarray, bool]:
    """Each ligand slides along its Dy-donor axis (t, A) and turns about it (phi times lever, A)."""
    refs = [positions[sl] - positions[sl.start] for sl in slices]
    pivots = [positions[sl.start].copy() for sl in slices]
    axes = [p / np.linalg.norm(p) for p in pivots]  # Dy at the origin
    levers = [max(0.5, float(np.sqrt(np.mean(np.sum(r**2, axis=1))))) for r in refs]

    def rotated(k, phi):
        return refs[k] @ _rotation_matrix(axes[k] * phi).T

    def unpack(x):
        pos = positions.copy()
        for k, sl in enumerate(slices):
            pos[sl] = rotated(k, x[2 * k + 1] / levers[k]) + pivots[k] + x[2 * k] * axes[k]
        return pos

    def fun(x):
        e, g = engine.compute(unpack(x))
        g = g * HARTREE_PER_BOHR_TO_EV_PER_A
        jac = np.zeros_like(x)
        for k, sl in enumerate(slices):
            gk = g[sl]
            jac[2 * k] = float(np.sum(gk @ axes[k]))
            rr = rotated(k, x[2 * k + 1] / levers[k])
            jac[2 * k + 1] = float(np.sum(gk * np.cross(axes[k], rr))) / levers[k]
        return e * C.HARTREE_TO_EV, jac

    groups = [np.array([i]) for i in range(2 * len(slices))]
    x, converged = bfgs_trust(fun, np.zeros(2 * len(slices)), groups, fmax=fmax, max_steps=max_steps,
                              maxstep=maxstep, h0=RIGID_H0_EV_A2)
    pos = unpack(x)
    if not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    return pos, converged


def _relax_flexible(engine: GFN2Engine, positions: np.ndarray, free: np.ndarray, fmax: float,
                    max_steps: int, maxstep: float = 0.2) -> tuple[np.ndarray, bool]:
    """Cartesian relaxation of the atoms ``free`` (everything else frozen)."""

    def unpack(x):
        pos = positions.copy()
        pos[free] = x.reshape(-1, 3)
        return pos

    def fun(x):
        e, g = engine.compute(unpack(x))
        return e * C.HARTREE_TO_EV, (g[free] * HARTREE_PER_BOHR_TO_EV_PER_A).ravel()

    groups = [np.arange(3 * i, 3 * i + 3) for i in range(len(free))]
    x, converged = bfgs_trust(fun, positions[free].ravel(), groups, fmax=fmax, max_steps=max_steps,
                              maxstep=maxstep, h0=70.0)
    pos = unpack(x)
    if not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    return pos, converged


def relax_complex(atoms, *, mode: str = "rigid", fmax: float = 0.05, max_steps: int = 200,
                  accuracy: float = 1.0, max_iter: int = 100, waters: str = "fixed",
                  maxstep: float = 0.2, max_wall_s: float | None = None):
    """Relax the axial ligands of a [Dy(H2O)5L2] with GFN2-xTB (Dy and water O frozen; water H
    frozen too unless ``waters="rotate"``). See the module docstring for ``mode``.

    Returns ``(relaxed_atoms, RelaxInfo)``; the copy carries ``initial_charges`` (GFN2 charges at
    the final geometry) and ``info['xtb_energy_eh']``. Raises :class:`XtbError` on SCC failure
    and :class:`XtbTimeout` when ``max_wall_s`` (seconds, from the call) is used up.
    """
    if mode not in RELAX_MODES:
        raise ValueError(f"unknown relaxation mode {mode!r}; choose one of {RELAX_MODES}")
    if waters not in WATER_MODES:
        raise ValueError(f"unknown water mode {waters!r}; choose one of {WATER_MODES}")
    if fmax <= 0 or max_steps < 1:
        raise ValueError("fmax must be > 0 and max_steps >= 1")
    charge = int(atoms.info["charge"])
    pos = atoms.get_positions().copy()
    deadline = None if max_wall_s is None else time.monotonic() + float(max_wall_s)
    engine = GFN2Engine(atoms.numbers, pos, charge, accuracy=accuracy, max_iter=max_iter, deadline=deadline)
    converged = True
    if mode == "axial":
        pos, converged = _relax_axial(engine, pos, ligand_slices(atoms), fmax, max_steps, maxstep)
    if mode in ("rigid", "rigid+flexible"):
        pos, converged = _relax_rigid(engine, pos, rigid_bodies(atoms, waters), fmax, max_steps, maxstep)
    if mode in ("flexible", "rigid+flexible"):
        free = np.arange(N_FRAME_ATOMS, len(atoms))
        if waters == "rotate":  # water O fixed (the pentagon), water H free
            free = np.concatenate([[1 + 3 * k + j for k in range(C.N_EQUATORIAL_WATERS) for j in (1, 2)], free])
        pos, converged = _relax_flexible(engine, pos, free, fmax, max_steps, maxstep)
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
