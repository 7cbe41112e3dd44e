"""Configuration-averaged SCF: the SA-CASSCF over *every* determinant of an open shell, solved as
an SCF.

The SA-CASSCF(9,7) of a Dy(III) complex averages with equal weights over all 21 sextets of 4f^9
at Ms = 5/2, and those 21 states span the whole determinant space of the active shell
(7 alpha and 2 beta electrons in 7 orbitals). The averaged energy is therefore the trace of the
CAS Hamiltonian divided by its dimension: the mean of the determinant energies, a function of the
orbitals alone that is invariant to rotations among the active orbitals. With core density
``D_c = C_c C_c^T`` (doubly occupied) and active projector ``D_a = C_a C_a^T`` it reads

    E = E_nuc + Tr D_c (2h + 2J[D_c] - K[D_c]) + n Tr D_a (h + 2J[D_c] - K[D_c])
        + alpha Tr D_a J[D_a] - beta Tr D_a K[D_a],

with ``n = (k_a + k_b) / m`` electrons per active orbital and ``alpha``, ``beta`` fixed by the
probabilities that two active spin-orbitals are occupied together (:func:`shell_coefficients`).
Its stationary orbitals are the SA-CASSCF orbitals, and each energy/gradient evaluation costs one
J/K build of two low-rank densities instead of PySCF's integral transformation plus one J/K build
per augmented-Hessian step. :func:`optimise_average_orbitals` minimises it by DIIS-accelerated,
diagonally preconditioned orbital rotations; :func:`smmflow.abinitio.solvers.casci_on_average_orbitals` then gives the 21 CASCI
states on the converged orbitals.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)


#: smallest diagonal orbital Hessian used as a preconditioner (hartree)
MIN_HESSIAN_DIAGONAL = 0.05
#: largest orbital rotation (norm of the accumulated rotation) before the reference is reset
MAX_ROTATION_NORM = 1.0


@dataclass(frozen=True)
class ShellCoefficients:
    """Energy coefficients of an open shell averaged over all its determinants (``m`` orbitals,
    ``k_a`` alpha and ``k_b`` beta electrons): ``n`` electrons per orbital, Coulomb ``alpha`` and
    exchange ``beta`` factors of ``Tr D_a J[D_a]`` and ``Tr D_a K[D_a]``."""

    n: float
    alpha: float
    beta: float


def shell_coefficients(ncas: int, nelecas: tuple[int, int]) -> ShellCoefficients:
    """Coefficients of the configuration-averaged active-shell energy.

    Averaged over all determinants, two different orbitals t, u carry same-spin electrons together
    with probability ``p_ss = [k_a (k_a-1) + k_b (k_b-1)] / (m (m-1))`` and an alpha-beta pair
    (t = u allowed) with ``p_ab = k_a k_b / m^2``. The two-electron energy
    ``1/2 sum_{t!=u} p_ss ((tt|uu) - (tu|ut)) + sum_{tu} p_ab (tt|uu)`` is then
    ``alpha sum J_tu - beta sum K_tu`` (the t = u terms of J - K cancel)."""
    m = int(ncas)
    ka, kb = (int(x) for x in nelecas)
    if m < 1 or not (0 <= kb <= m and 0 <= ka <= m):
        raise ValueError(f"invalid active shell: {ncas} orbitals, electrons {nelecas}")
    p_ss = (ka * (ka - 1) + kb * (kb - 1)) / (m * (m - 1)) if m > 1 else 0.0
    p_ab = ka * kb / m**2
    return ShellCoefficients(n=(ka + kb) / m, alpha=0.5 * p_ss + p_ab, beta=0.5 * p_ss)


@dataclass
class AverageEnergyTerms:
    """Energy and orbital gradient of the averaged shell at one set of orbitals (MO basis)."""

    energy: float
    gradient: np.ndarray  # antisymmetric (nmo, nmo): dE/d kappa_pq for C -> C exp(kappa)
    hessian_diagonal: np.ndarray  # (nmo, nmo) one-electron estimate of d2E/d kappa_pq^2
    core_fock_ao: np.ndarray  # h + 2J[D_c] - K[D_c] (AO basis), for the CASCI that follows
    core_energy: float  # E_nuc + Tr D_c (2h + 2J_c - K_c)


def shell_index(nmo: int, ncore: int, ncas: int) -> np.ndarray:
    """0 for core, 1 for active, 2 for virtual orbitals."""
    idx = np.full(nmo, 2)
    idx[:ncore] = 0
    idx[ncore : ncore + ncas] = 1
    return idx


def nonredundant_mask(nmo: int, ncore: int, ncas: int, frozen: int = 0) -> np.ndarray:
    """Boolean (nmo, nmo) mask of the independent rotations (p in a lower shell than q, upper
    triangle) with the first ``frozen`` orbitals held fixed."""
    idx = shell_index(nmo, ncore, ncas)
    mask = idx[:, None] < idx[None, :]
    mask[:frozen, :] = False
    mask[:, :frozen] = False
    return mask


def average_energy_terms(h_ao: np.ndarray, get_jk: Callable, mo: np.ndarray, ncore: int, ncas: int,
                         coeffs: ShellCoefficients, e_nuc: float) -> AverageEnergyTerms:
    """Configuration-averaged energy, gradient and diagonal Hessian estimate at orbitals ``mo``.

    ``get_jk(dm)`` takes a stack of two densities (tagged with their orbitals, so density-fitted
    builds use the low-rank path) and returns (vj, vk). Derivatives: with ``W_c = dE/dD_c`` and
    ``W_a = dE/dD_a`` in the MO basis and ``C -> C exp(kappa)``, for p in shell X below q in shell
    Y: ``dE/dkappa_pq = 2 (W_Y - W_X)_pq`` and, at the one-electron level,
    ``d2E/dkappa_pq^2 = 2 (W_X,qq - W_X,pp + W_Y,pp - W_Y,qq)``."""
    from pyscf import lib

    nao, nmo = mo.shape
    c_core = mo[:, :ncore]
    c_act = mo[:, ncore : ncore + ncas]
    occ = np.zeros((2, ncore + ncas))
    occ[0, :ncore] = 1.0
    occ[1, ncore:] = 1.0
    c_occ = np.asarray(mo[:, : ncore + ncas])
    dm = np.stack([c_core @ c_core.T, c_act @ c_act.T])
    dm = lib.tag_array(dm, mo_coeff=np.stack([c_occ, c_occ]), mo_occ=occ)
    vj, vk = get_jk(dm)
    dm_c, dm_a = dm[0], dm[1]
    f_core = h_ao + 2.0 * vj[0] - vk[0]  # inactive Fock operator
    v_act = 2.0 * vj[1] - vk[1]
    e_core = e_nuc + float(np.sum(dm_c * (h_ao + f_core)))
    energy = (e_core + coeffs.n * float(np.sum(dm_a * f_core))
              + coeffs.alpha * float(np.sum(dm_a * vj[1])) - coeffs.beta * float(np.sum(dm_a * vk[1])))
    w_c = mo.T @ (2.0 * f_core + coeffs.n * v_act) @ mo
    w_a = mo.T @ (coeffs.n * f_core + 2.0 * coeffs.alpha * vj[1] - 2.0 * coeffs.beta * vk[1]) @ mo
    w = [w_c, w_a, np.zeros_like(w_c)]
    idx = shell_index(nmo, ncore, ncas)
    grad = np.zeros((nmo, nmo))
    hdiag = np.zeros((nmo, nmo))
    diag = [np.diag(x) for x in w]
    for x in range(3):
        for y in range(x + 1, 3):
            p = np.flatnonzero(idx == x)
            q = np.flatnonzero(idx == y)
            block = 2.0 * (w[y] - w[x])[np.ix_(p, q)]
            grad[np.ix_(p, q)] = block
            grad[np.ix_(q, p)] = -block.T
            hdiag[np.ix_(p, q)] = 2.0 * ((diag[x][q][None, :] - diag[x][p][:, None])
                                         + (diag[y][p][:, None] - diag[y][q][None, :]))
    return AverageEnergyTerms(energy, grad, hdiag, f_core, e_core)


def _expm_antisymmetric(k: np.ndarray) -> np.ndarray:
    """exp(k) for a real antisymmetric k (orthogonal), via the Hermitian matrix i k."""
    w, v = np.linalg.eigh(1j * k)
    return (v * np.exp(-1j * w)) @ v.conj().T if k.size else k.copy()


@dataclass
class AverageOrbitalsResult:
    mo_coeff: np.ndarray
    energy: float
    converged: bool
    iterations: int
    gradient_norm: float
    history: list[dict[str, Any]] = field(default_factory=list)
    terms: AverageEnergyTerms | None = None  # at ``mo_coeff``


def optimise_average_orbitals(h_ao: np.ndarray, get_jk: Callable, mo0: np.ndarray, ncore: int, ncas: int,
                              nelecas: tuple[int, int], e_nuc: float, *, conv_tol: float = 1e-9,
                              conv_tol_grad: float = 1e-4, max_cycle: int = 60, frozen: int = 0,
                              diis_space: int = 10, callback: Callable | None = None) -> AverageOrbitalsResult:
    """Minimise the configuration-averaged energy from ``mo0`` (core | active | virtual).

    Orbitals are ``C = C_ref exp(K)`` with ``K`` restricted to the rotations between shells. Each
    iteration evaluates energy and gradient (one J/K build), takes the preconditioned step
    ``-g / h_diag`` (rotated back to the reference frame) and extrapolates ``K`` by DIIS with the
    preconditioned gradients as error vectors. The reference is moved to the current orbitals when
    ``|K|`` exceeds :data:`MAX_ROTATION_NORM`. Converged when the gradient norm (PySCF's
    ``norm_gorb``: 2-norm over the independent rotations) is below ``conv_tol_grad`` and the energy
    changed by less than ``conv_tol``. ``callback(iteration, mo, terms)`` is called after every
    energy/gradient evaluation (e.g. to follow the KD energies during the optimisation)."""
    from pyscf import lib

    nmo = mo0.shape[1]
    coeffs = shell_coefficients(ncas, nelecas)
    mask = nonredundant_mask(nmo, ncore, ncas, frozen)
    c_ref = np.array(mo0)
    kappa = np.zeros((nmo, nmo))
    diis = lib.diis.DIIS()
    diis.space = diis_space
    diis.incore = True
    history: list[dict[str, Any]] = []
    e_last = np.inf
    converged = False
    terms = None
    gnorm = np.inf
    mo = c_ref
    for it in range(1, max_cycle + 1):
        t0 = time.perf_counter()
        u = _expm_antisymmetric(kappa).real
        mo = c_ref @ u
        terms = average_energy_terms(h_ao, get_jk, mo, ncore, ncas, coeffs, e_nuc)
        g = np.where(mask, terms.gradient, 0.0)
        gnorm = 0.5 * float(np.linalg.norm(g[mask]))  # PySCF's norm_gorb is half of |dE/dkappa|
        de = terms.energy - e_last
        e_last = terms.energy
        history.append({"iteration": it, "e_tot": terms.energy, "de": None if not np.isfinite(de) else de,
                        "norm_gorb": gnorm, "wall_s": time.perf_counter() - t0})
        log.info("configuration-average SCF %d: E=%.10f dE=%.2e |g|=%.2e (%.1f s)", it, terms.energy, de, gnorm,
                 time.perf_counter() - t0)
        if callback is not None:
            callback(it, mo, terms)
        if gnorm < conv_tol_grad and abs(de) < conv_tol:
            converged = True
            break
        step = np.where(mask, -g / np.maximum(terms.hessian_diagonal, MIN_HESSIAN_DIAGONAL), 0.0)
        step = step - step.T  # antisymmetric rotation in the current frame
        step_ref = u @ step @ u.T  # the same rotation seen from the reference orbitals
        err = np.where(mask, step_ref, 0.0)
        target = np.where(mask, kappa + step_ref, 0.0)
        new = diis.update(target[mask], xerr=err[mask])
        kappa = np.zeros((nmo, nmo))
        kappa[mask] = new
        kappa = kappa - kappa.T
        if np.linalg.norm(kappa) > MAX_ROTATION_NORM:
            c_ref = mo
            kappa = np.zeros((nmo, nmo))
            kappa[mask] = step[mask]
            kappa = kappa - kappa.T
            diis = lib.diis.DIIS()
            diis.space = diis_space
            diis.incore = True
            log.info("configuration-average SCF: reference reset at iteration %d", it)
    return AverageOrbitalsResult(mo, float(e_last), converged, len(history), gnorm, history, terms)
