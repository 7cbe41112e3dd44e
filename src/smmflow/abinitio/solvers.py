"""SA-CASSCF orbital solvers: PySCF's augmented Hessian and the configuration average."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from smmflow.abinitio.lowrank_df import Float32DF, df_jk_of_orbitals, low_rank_dfcasscf
from smmflow.abinitio.settings import N_SEXTETS, NCAS, NELECAS, CasscfFailure, CasscfSettings

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# SA-CASSCF
# ---------------------------------------------------------------------------------------------


@dataclass
class SaCasscfOutcome:
    mc: Any
    converged: bool
    macro_iterations: int
    history: list[dict]
    e_states: np.ndarray
    ci: list[np.ndarray]
    mo_coeff: np.ndarray
    ncore: int
    solver: str = "augmented_hessian"  # or "average", "average+augmented_hessian" (fallback)


def run_sa_casscf(mf, mo0: np.ndarray, ncore: int, settings: CasscfSettings, frozen: int = 0) -> SaCasscfOutcome:
    """SA-CASSCF(9,7) over all 21 sextets from the start orbitals ``mo0`` (core | 7 active | virtual);
    the first ``frozen`` orbitals of ``mo0`` are not optimised."""
    from pyscf import mcscf

    mol = mf.mol
    if 2 * ncore + sum(NELECAS) != mol.nelectron:
        raise ValueError(f"electron count mismatch: 2*{ncore} + 9 != {mol.nelectron}")
    if getattr(mf, "with_df", None) is not None:
        mc = low_rank_dfcasscf(mf, NCAS, NELECAS, ncore=ncore)
    else:
        mc = mcscf.CASSCF(mf, NCAS, NELECAS, ncore=ncore)
    if frozen:
        mc.frozen = int(frozen)
    mc = mc.state_average_([1.0 / N_SEXTETS] * N_SEXTETS)
    mc.fcisolver.nroots = N_SEXTETS
    mc.conv_tol = settings.conv_tol
    mc.conv_tol_grad = settings.conv_tol_grad
    mc.max_cycle_macro = settings.max_cycle_macro
    mc.verbose = settings.verbose
    history: list[dict] = []

    def callback(envs: dict) -> None:
        log.info("SA-CASSCF macro %s: E=%.10f |g_orb|=%.2e", envs.get("imacro"), envs.get("e_tot", np.nan), envs.get("norm_gorb", np.nan))
        history.append(
            {
                "macro": int(envs.get("imacro", 0)),  # PySCF counts from 1; also called per micro step
                "e_tot": float(envs.get("e_tot", np.nan)),
                "de": float(envs.get("de", np.nan)) if envs.get("de") is not None else None,
                "norm_gorb": float(envs.get("norm_gorb", np.nan)),
            }
        )

    mc.callback = callback
    log.info("SA-CASSCF(9,7) x %d sextets: %d AOs, ncore %d, DF %s", N_SEXTETS, mol.nao, ncore, getattr(mf, "with_df", None) is not None)
    mc.kernel(mo0)
    e_states = np.asarray(mc.e_states)
    ci = list(mc.ci)
    if len(ci) != N_SEXTETS:
        raise CasscfFailure(f"CASCI returned {len(ci)} roots, expected {N_SEXTETS}")
    n_macro = max((h["macro"] for h in history), default=0)
    return SaCasscfOutcome(mc, bool(mc.converged), n_macro, history, e_states, ci, mc.mo_coeff, ncore)


def run_average_casscf(mf, mo0: np.ndarray, ncore: int, settings: CasscfSettings, frozen: int = 0,
                       callback=None) -> SaCasscfOutcome:
    """SA-CASSCF(9,7) over all 21 sextets, orbitals optimised as a configuration-average SCF
    (:mod:`smmflow.abinitio.configuration_average`: the 21 sextets are every Ms = 5/2 determinant of 4f^9, so
    the state-averaged energy is the determinant average), then the 21 CASCI states on the
    converged orbitals. Same stationary point as PySCF's augmented-Hessian SA-CASSCF (tested) for
    one J/K build per iteration. If it does not converge in ``max_cycle_average`` iterations,
    PySCF's SA-CASSCF continues from its orbitals. ``callback(iteration, mo, terms)``: after every
    iteration (see :func:`configuration_average.optimise_average_orbitals`)."""
    from smmflow.abinitio import configuration_average as cav

    mol = mf.mol
    if 2 * ncore + sum(NELECAS) != mol.nelectron:
        raise ValueError(f"electron count mismatch: 2*{ncore} + 9 != {mol.nelectron}")
    h = mf.get_hcore()
    log.info("configuration-average SA-CASSCF(9,7): %d AOs, ncore %d", mol.nao, ncore)
    if settings.average_conv_tol_grad is not None:  # KD-level convergence: gradient only
        conv_tol, conv_tol_grad = np.inf, settings.average_conv_tol_grad
    else:
        conv_tol, conv_tol_grad = settings.conv_tol, settings.conv_tol_grad
    df32 = float32_df(mf, settings)
    res = cav.optimise_average_orbitals(
        h, average_jk(mf, settings, df32, frozen=frozen), mo0, ncore, NCAS, NELECAS, mf.energy_nuc(),
        conv_tol=conv_tol, conv_tol_grad=conv_tol_grad,
        max_cycle=settings.max_cycle_average, frozen=frozen, callback=callback)
    history = [dict(h_, macro=h_["iteration"], solver="average") for h_ in res.history]
    if not res.converged:
        log.warning("configuration-average SCF not converged (|g| %.2e): PySCF SA-CASSCF takes over", res.gradient_norm)
        df32 = None  # PySCF's solver builds its own float64 tensor: free this one first
        out = run_sa_casscf(mf, res.mo_coeff, ncore, settings, frozen=frozen)
        out.history = history + out.history
        out.solver = "average+augmented_hessian"
        return out
    return casci_on_average_orbitals(mf, res, ncore, settings, history, df32=df32)


def float32_df(mf, settings: CasscfSettings) -> Float32DF | None:
    """The float32 DF tensor of ``mf``'s molecule in its auxiliary basis when ``settings.df_float32``
    and ``mf`` is density-fitted (else None)."""
    with_df = getattr(mf, "with_df", None)
    if with_df is None or not settings.df_float32:
        return None
    from pyscf import df

    auxmol = df.addons.make_auxmol(mf.mol, with_df.auxbasis)
    return Float32DF(mf.mol, auxmol, settings.max_memory_mb, pair_threshold=settings.df_pair_threshold)


def average_jk(mf, settings: CasscfSettings, df32: Float32DF | None = None, frozen: int = 0):
    """``get_jk(dm)`` for :func:`configuration_average.average_energy_terms`: densities tagged with
    their orbitals; density-fitted SCF objects go through :func:`lowrank_df.df_jk_of_orbitals`
    (one pass over the DF factors for the core and active densities; same numbers as PySCF's
    occupied-orbital path, tested), with the float32 tensor ``df32`` when given; others through
    ``mf.get_jk``.

    ``frozen``: the first ``frozen`` core orbitals never move (the optimiser does not rotate them),
    so J and K of their density are computed once, in the first pass as a block of their own, and
    added to the core J/K of every later call; a call whose frozen orbitals differ from the cached
    ones (beyond 1e-10) raises ``ValueError`` instead of returning a wrong J/K."""
    mol = mf.mol
    with_df = getattr(mf, "with_df", None)
    if with_df is None:
        return lambda dm: mf.get_jk(mol, dm)
    if df32 is not None:
        with_df = df32
    cache: dict = {}

    def jk(dm):
        occ = dm.mo_occ
        blocks = [dm.mo_coeff[k][:, occ[k] > 0] * np.sqrt(occ[k][occ[k] > 0]) for k in range(len(occ))]
        if with_df._cderi is None:
            with_df.build()
        if not frozen:
            return df_jk_of_orbitals(with_df, blocks, settings.max_memory_mb)
        c_frozen, blocks[0] = blocks[0][:, :frozen], blocks[0][:, frozen:]
        if "c" not in cache:
            vj, vk = df_jk_of_orbitals(with_df, [c_frozen, *blocks], settings.max_memory_mb)
            cache.update(c=c_frozen.copy(), j=vj[0], k=vk[0])
            vj, vk = vj[1:], vk[1:]
        else:
            if np.abs(c_frozen - cache["c"]).max() > 1e-10:
                raise ValueError("frozen orbitals moved: their cached J/K no longer apply")
            vj, vk = df_jk_of_orbitals(with_df, blocks, settings.max_memory_mb)
        vj[0] += cache["j"]
        vk[0] += cache["k"]
        return vj, vk

    return jk


def casci_on_average_orbitals(mf, res, ncore: int, settings: CasscfSettings, history: list[dict] | None = None,
                              df32: Float32DF | None = None) -> SaCasscfOutcome:
    """The 21 CASCI sextets on the orbitals ``res.mo_coeff`` of a configuration-average SCF
    (``res.terms``: its energy terms at those orbitals; ``df32``: the float32 DF tensor they were
    computed with, which then also gives the active-space ERIs)."""
    from pyscf import fci

    mol = mf.mol
    mo = res.mo_coeff
    c_act = mo[:, ncore : ncore + NCAS]
    h1 = c_act.T @ res.terms.core_fock_ao @ c_act
    if df32 is not None:
        h2 = df32.active_eri(c_act)
    elif getattr(mf, "with_df", None) is not None:
        h2 = mf.with_df.ao2mo(c_act, compact=False)
    else:
        from pyscf import ao2mo

        h2 = ao2mo.full(mf._eri if getattr(mf, "_eri", None) is not None else mol, c_act, compact=False)
    h2 = h2.reshape([NCAS] * 4)
    solver = fci.direct_spin1.FCI(mol)
    solver.max_memory = settings.max_memory_mb
    e_states, ci = solver.kernel(h1, h2, NCAS, NELECAS, nroots=N_SEXTETS, ecore=res.terms.core_energy)
    e_states = np.asarray(e_states)
    if len(ci) != N_SEXTETS:
        raise CasscfFailure(f"CASCI returned {len(ci)} roots, expected {N_SEXTETS}")
    e_avg = float(np.mean(e_states))
    if abs(e_avg - res.terms.energy) > 1e-6:
        raise CasscfFailure(f"CASCI average {e_avg:.8f} differs from the configuration average {res.terms.energy:.8f}")
    return SaCasscfOutcome(None, True, res.iterations, history or [], e_states, list(ci), mo, ncore, solver="average")
