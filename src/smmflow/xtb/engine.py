"""GFN2-xTB (tblite) single points and the engine object used by the relaxations."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from smmflow import constants as C


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
