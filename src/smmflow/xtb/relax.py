"""GFN2-xTB (tblite) single points and constrained relaxations of [Dy(H2O)5L2].

Dy is treated by GFN2-xTB with its 4f shell in the core (closed shell, ``uhf=0``); the complex
charge is 3 + 2 q(L). Units: tblite works in bohr/hartree; this module takes and returns
positions in angstrom, energies in hartree, and uses eV/A only for force thresholds (``fmax``),
as ASE does.

Relaxation modes (Dy is always frozen, the anchor of the frame; with ``waters='fixed'`` the waters
are frozen, with ``waters='rotate'`` each water may turn about its fixed O (the equatorial pentagon
is kept), with ``waters='free'`` the waters move like the ligands: rigid bodies in ``rigid``,
every atom in ``flexible``)
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

Symmetry: the builder's start is exactly C2-symmetric and a relaxation from it keeps the symmetry
(forces are symmetric too). ``symmetry_break_a`` > 0 displaces every movable atom by a seeded random
vector of that RMS length (A) first, so the relaxation can leave C2 (``flexible`` with
``waters='free'`` and a symmetry break: the least constrained xTB geometry).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from smmflow import constants as C
from smmflow.geometry.contract import N_FRAME_ATOMS, donor_indices
from smmflow.xtb.engine import GFN2Engine, XtbError, XtbProperties, XtbTimeout

HARTREE_PER_BOHR_TO_EV_PER_A: float = C.HARTREE_TO_EV / C.BOHR_TO_ANGSTROM
RELAX_MODES: tuple[str, ...] = ("axial", "rigid", "flexible", "rigid+flexible")
WATER_MODES: tuple[str, ...] = ("fixed", "rotate", "free")
#: initial BFGS Hessian (eV/A^2) for rigid-body coordinates (Cartesian atoms use ASE's 70)
RIGID_H0_EV_A2: float = 3.0  # 3 needed ~25% fewer steps than 10 and 40% fewer than 30 (8 ligands)


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
    each water as a body rotating about its (fixed) O, so the pentagon is kept; with ``waters='free'``
    each water rotates about its O and translates."""
    bodies = [RigidBody(np.arange(s.start, s.stop), s.start, True) for s in ligand_slices(atoms)]
    if waters in ("rotate", "free"):
        for k in range(C.N_EQUATORIAL_WATERS):
            o = 1 + 3 * k
            bodies.append(RigidBody(np.array([o, o + 1, o + 2]), o, waters == "free"))
    return bodies


def bfgs_trust(
    fun,
    x0: np.ndarray,
    groups: list[np.ndarray],
    *,
    fmax: float,
    max_steps: int,
    maxstep: float = 0.2,
    h0: float = 10.0,
) -> tuple[np.ndarray, bool]:
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


def _relax_rigid(
    engine: GFN2Engine,
    positions: np.ndarray,
    bodies: list[RigidBody],
    fmax: float,
    max_steps: int,
    maxstep: float = 0.2,
) -> tuple[np.ndarray, bool]:
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

    x, converged = bfgs_trust(
        fun, np.zeros(k), groups, fmax=fmax, max_steps=max_steps, maxstep=maxstep, h0=RIGID_H0_EV_A2
    )
    pos = unpack(x)
    if not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    return pos, converged


def _relax_axial(
    engine: GFN2Engine, positions: np.ndarray, slices: list[slice], fmax: float, max_steps: int, maxstep: float = 0.2
) -> tuple[np.ndarray, bool]:
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
    x, converged = bfgs_trust(
        fun, np.zeros(2 * len(slices)), groups, fmax=fmax, max_steps=max_steps, maxstep=maxstep, h0=RIGID_H0_EV_A2
    )
    pos = unpack(x)
    if not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    return pos, converged


def _relax_flexible(
    engine: GFN2Engine, positions: np.ndarray, free: np.ndarray, fmax: float, max_steps: int, maxstep: float = 0.2
) -> tuple[np.ndarray, bool]:
    """Cartesian relaxation of the atoms ``free`` (everything else frozen)."""

    def unpack(x):
        pos = positions.copy()
        pos[free] = x.reshape(-1, 3)
        return pos

    def fun(x):
        e, g = engine.compute(unpack(x))
        return e * C.HARTREE_TO_EV, (g[free] * HARTREE_PER_BOHR_TO_EV_PER_A).ravel()

    groups = [np.arange(3 * i, 3 * i + 3) for i in range(len(free))]
    x, converged = bfgs_trust(
        fun, positions[free].ravel(), groups, fmax=fmax, max_steps=max_steps, maxstep=maxstep, h0=70.0
    )
    pos = unpack(x)
    if not np.allclose(pos, engine.last_positions):
        engine.compute(pos)
    return pos, converged


def relax_complex(
    atoms,
    *,
    mode: str = "rigid",
    fmax: float = 0.05,
    max_steps: int = 200,
    accuracy: float = 1.0,
    max_iter: int = 100,
    waters: str = "fixed",
    maxstep: float = 0.2,
    max_wall_s: float | None = None,
    symmetry_break_a: float = 0.0,
    seed: int = 0,
):
    """Relax the axial ligands of a [Dy(H2O)5L2] with GFN2-xTB (Dy frozen; waters frozen, turning
    about their O (``"rotate"``) or free (``"free"``)). See the module docstring for ``mode`` and
    ``symmetry_break_a`` (RMS random displacement, A, seeded by ``seed``, of the movable atoms).

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
    if symmetry_break_a < 0:
        raise ValueError("symmetry_break_a must be >= 0")
    charge = int(atoms.info["charge"])
    pos = atoms.get_positions().copy()
    if symmetry_break_a > 0:
        first = 1 if waters == "free" else N_FRAME_ATOMS  # Dy (and fixed/rotating waters) stay
        kick = np.random.default_rng(seed).normal(size=(len(atoms) - first, 3))
        pos[first:] += kick * (symmetry_break_a / np.sqrt(np.mean(np.sum(kick**2, axis=1))))
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
        elif waters == "free":  # every atom but Dy
            free = np.arange(1, len(atoms))
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
        max_force_ev_a=float(np.max(np.linalg.norm(grad[1 if waters == "free" else N_FRAME_ATOMS :], axis=1))),
        properties=props,
    )
    return out, info
