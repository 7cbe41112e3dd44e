"""Start orbitals of a complex: the free-ion 4f/core plus a ligand-shell RHF."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from smmflow.abinitio.free_ion import FreeIonReference
from smmflow.abinitio.molecule import add_point_charge_potential, auxbasis_map, build_molecule, point_charge_potential
from smmflow.abinitio.regions import QuantumRegion
from smmflow.abinitio.settings import (
    DY_CORE_ORBITALS,
    DY_FROZEN_CORE_ORBITALS,
    DY_INNER_CORE_ORBITALS,
    NCAS,
    CasscfFailure,
    CasscfSettings,
    inner_core_orbitals,
)
from smmflow.constants import DY_ION_CHARGE

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Start orbitals for a complex
# ---------------------------------------------------------------------------------------------


def _lowdin(c: np.ndarray, s: np.ndarray) -> np.ndarray:
    m = c.T @ s @ c
    w, v = np.linalg.eigh(m)
    keep = w > 1e-8
    return c @ v[:, keep] @ np.diag(w[keep] ** -0.5) @ v[:, keep].T if keep.all() else c @ v[:, keep] @ np.diag(w[keep] ** -0.5)


def _project_out(c: np.ndarray, occ: np.ndarray, s: np.ndarray) -> np.ndarray:
    return c - occ @ (occ.T @ s @ c)


def ligand_shell_cderi(with_df, nao_dy: int) -> np.ndarray:
    """The DF factors of the ligand shell (AOs ``nao_dy:`` of the complex) taken from the complex's
    DF tensor: the (ligand AO pair | P) columns, with every auxiliary function of the complex (Dy's
    included: a fit at least as good as the ligand shell's own auxiliary basis). Saves building a
    second DF tensor for the start SCF."""
    if with_df._cderi is None:
        with_df.build()
    nao = with_df.mol.nao
    i, j = np.tril_indices(nao)
    keep = (i >= nao_dy) & (j >= nao_dy)
    cols = (i * (i + 1) // 2 + j)[keep]
    out = None
    p0 = 0
    for cderi in with_df.loop():
        if out is None:
            out = np.empty((with_df.get_naoaux(), len(cols)))
        out[p0 : p0 + cderi.shape[0]] = cderi[:, cols]
        p0 += cderi.shape[0]
    return out


def _shell_rhf(env, v, settings: CasscfSettings, with_df=None, nao_dy: int = 0):
    """Closed-shell sfx2c1e RHF of (part of) the ligand shell in the one-electron potential ``v``
    (density-fitted like the complex; ``with_df``: reuse the complex's DF factors)."""
    from pyscf import scf

    mf = scf.RHF(env).sfx2c1e()
    if with_df is not None:
        mf = mf.density_fit()
        mf.with_df._cderi = ligand_shell_cderi(with_df, nao_dy)
    elif settings.density_fit:
        mf = mf.density_fit(auxbasis=auxbasis_map(env, settings.auxbasis))
    mf = add_point_charge_potential(mf, v)
    mf.conv_tol = settings.start_conv_tol
    mf.max_cycle = 100
    t0 = time.perf_counter()
    mf.kernel()
    log.info("ligand-shell RHF: %d atoms, %d AOs, %.1f s (converged %s)", env.natm, env.nao,
             time.perf_counter() - t0, mf.converged)
    return mf


def fragment_groups(region: QuantumRegion) -> list[tuple[np.ndarray, int]] | None:
    """The ligand shell split for the fragment start: (indices into ``region.symbols``, charge) of
    the five waters together and of each ligand's quantum piece (its link atoms included); a ligand
    piece carries the formal ligand charge (region charge = 3 + 2 q(L)). None when the region has
    no fragment labels, the charge is not 3 + 2 q(L), or a piece would have an odd electron count:
    the caller then runs one RHF of the whole shell."""
    from pyscf.data.elements import charge as atomic_number

    if region.fragments is None or len(region.fragments) != len(region.symbols):
        return None
    dq = region.charge - DY_ION_CHARGE
    if dq % 2:
        return None
    frag = np.asarray(region.fragments)
    groups = []
    for members, q in (((1, 2, 3, 4, 5), 0), ((6,), dq // 2), ((7,), dq // 2)):
        idx = np.flatnonzero(np.isin(frag, members))  # Dy (fragment 0) is never a member
        if len(idx) == 0:
            if members == (1, 2, 3, 4, 5):
                return None
            continue
        n_el = sum(atomic_number(region.symbols[i]) for i in idx) - q
        if n_el % 2 or n_el <= 0:
            return None
        groups.append((idx, q))
    if sum(len(i) for i, _ in groups) != len(region.symbols) - 1:
        return None
    return groups


def _fragment_orbitals(env, region: QuantumRegion, groups, settings: CasscfSettings):
    """Closed-shell orbitals of the ligand shell from one RHF per fragment group, each in the field
    of Dy3+, of the region's point charges and of the xTB charges of the other groups' atoms.
    Returns the shell's AO x MO block (inner cores of every fragment, then their valence occupied,
    then their virtuals; fragments are not orthogonal to each other: the caller orthogonalises),
    the occupied count and the convergence flags."""
    slices = env.aoslice_by_atom()
    cores, valence, virtuals, conv = [], [], [], []
    nocc = 0
    qcharges = region.quantum_charges
    for idx, q in groups:
        atoms = idx - 1  # env atom = region atom - 1 (Dy removed)
        frag_mol = build_molecule([region.symbols[i] for i in idx], region.coords[idx], q, 0, settings,
                                  outer=None if region.outer is None else region.outer[idx])
        others = np.setdiff1d(np.arange(1, len(region.symbols)), idx)
        pc_xyz = [region.coords[:1], region.mm_coords]
        pc_q = [[float(DY_ION_CHARGE)], region.mm_charges]
        if qcharges is not None and len(others):
            pc_xyz.append(region.coords[others])
            pc_q.append(np.asarray(qcharges)[others])
        v = point_charge_potential(frag_mol, np.vstack(pc_xyz), np.concatenate(pc_q))
        mf = _shell_rhf(frag_mol, v, settings)
        conv.append(mf.converged)
        rows = np.concatenate([np.arange(slices[a][2], slices[a][3]) for a in atoms])
        if len(rows) != frag_mol.nao:
            raise ValueError("fragment AO layout differs from the ligand shell's")
        def place(block, rows=rows):
            x = np.zeros((env.nao, block.shape[1]))
            x[rows] = block
            return x
        n_occ_f = frag_mol.nelectron // 2
        n_core_f = sum(inner_core_orbitals(int(z)) for z in frag_mol.atom_charges())
        c = mf.mo_coeff
        cores.append(place(c[:, :n_core_f]))
        valence.append(place(c[:, n_core_f:n_occ_f]))
        virtuals.append(place(c[:, n_occ_f:]))
        nocc += n_occ_f
    return np.hstack(cores + valence + virtuals), nocc, conv


def check_dy_frozen_core(mol, c_frozen: np.ndarray) -> None:
    """The free-ion orbitals to be frozen must be Dy's n <= 3 shells (1s 2s 2p 3s 3p 3d: 3 s-, 6 p- and
    5 d-type orbitals, by their Mulliken weight per angular momentum on the Dy AOs of ``mol``, atom 0);
    raises ``CasscfFailure`` otherwise (e.g. a free-ion reference whose core is not in energy order)."""
    nao_dy = c_frozen.shape[0]
    s = mol.intor_symmetric("int1e_ovlp")[:nao_dy, :nao_dy]
    ang = np.zeros(nao_dy, dtype=int)
    loc = mol.ao_loc_nr()
    for b in range(mol.nbas):
        if mol.bas_atom(b) == 0:
            ang[loc[b] : loc[b + 1]] = mol.bas_angular(b)
    pop = c_frozen * (s @ c_frozen)  # (nao_dy, n) Mulliken populations of each orbital
    dominant = [int(np.argmax([pop[ang == l, i].sum() for l in range(4)])) for i in range(c_frozen.shape[1])]
    counts = tuple(dominant.count(l) for l in range(3))
    if counts != (3, 6, 5) or len(dominant) != sum(counts):
        raise CasscfFailure(f"free-ion core orbitals are not Dy 1s-3d (s/p/d counts {counts}): cannot freeze them")


def ion_plus_fragments_start(mol, ref: FreeIonReference, region: QuantumRegion, settings: CasscfSettings,
                             with_df=None) -> tuple[np.ndarray, int, dict]:
    """Start orbitals (core | 4f | virtual) and ncore for a complex whose atom 0 is Dy.

    Dy: the free-ion SA-CASSCF orbitals. Ligand shell: with ``settings.start_fragments`` (default)
    one closed-shell RHF per fragment group (:func:`fragment_groups`, :func:`_fragment_orbitals`),
    otherwise one RHF of all non-Dy quantum atoms, in the field of a +3 point charge at Dy and of the
    region's point charges. (Tried and dropped: the
    field of the free Dy3+ ion with an orthogonality projector gave a worse start, |g_orb| 4.4 vs 0.92
    on [Dy(H2O)5(OH)2]+.) ``with_df``: the complex's DF object; its factors restricted to the ligand
    AO pairs fit the ligand-shell ERIs (:func:`ligand_shell_cderi`), instead of a DF tensor of its own.
    """
    nao_dy = ref.mo_coeff.shape[0]
    if mol.aoslice_by_atom()[0][3] != nao_dy:
        raise ValueError("Dy basis in the complex differs from the free-ion reference basis")
    info: dict[str, Any] = {}
    c_dy = ref.mo_coeff
    if mol.natm == 1:
        return c_dy.copy(), DY_CORE_ORBITALS, info
    t0 = time.perf_counter()
    env = build_molecule(region.symbols[1:], region.coords[1:], region.charge - DY_ION_CHARGE, 0, settings,
                         outer=None if region.outer is None else region.outer[1:])
    if env.nelectron % 2:
        raise CasscfFailure("ligand shell has an odd electron count (radical ligand?)")
    groups = fragment_groups(region) if settings.start_fragments else None
    if groups is None:
        v = point_charge_potential(
            env,
            np.vstack([region.coords[:1], region.mm_coords]),
            np.concatenate([[float(DY_ION_CHARGE)], region.mm_charges]),
        )
        mf = _shell_rhf(env, v, settings, with_df=with_df, nao_dy=nao_dy)
        info["ligand_shell_scf_converged"] = bool(mf.converged)
        c_env, nocc_env = mf.mo_coeff, env.nelectron // 2
        info["start_fragments"] = 1
    else:
        c_env, nocc_env, conv = _fragment_orbitals(env, region, groups, settings)
        info["ligand_shell_scf_converged"] = bool(all(conv))
        info["start_fragments"] = len(groups)
    info["ligand_shell_scf_s"] = time.perf_counter() - t0
    log.info("ligand-shell start orbitals (%d fragment(s)) in %.1f s", info["start_fragments"], info["ligand_shell_scf_s"])
    nao = mol.nao
    def embed(block_dy=None, block_env=None):
        cols = []
        if block_dy is not None:
            x = np.zeros((nao, block_dy.shape[1]))
            x[:nao_dy] = block_dy
            cols.append(x)
        if block_env is not None:
            x = np.zeros((nao, block_env.shape[1]))
            x[nao_dy:] = block_env
            cols.append(x)
        return np.hstack(cols)

    s = mol.intor_symmetric("int1e_ovlp")
    n_env_core = sum(inner_core_orbitals(int(z)) for z in env.atom_charges())
    if n_env_core > nocc_env:
        raise CasscfFailure("ligand shell has fewer electrons than inner-core orbitals")
    # the ligand-shell orbitals list the inner cores first (energy order of one RHF, or every
    # fragment's cores first)
    env_inner = embed(block_env=c_env[:, :n_env_core])
    env_valence = embed(block_env=c_env[:, n_env_core:nocc_env])
    if settings.frozen_core:
        # Dy 1s-3d exactly as in the free ion, then the ligand inner cores orthogonalised to them:
        # both frozen (their J/K computed once); Dy 4s-5p and the ligand valence orthogonalised to
        # the frozen orbitals and among themselves
        nfz = DY_FROZEN_CORE_ORBITALS
        check_dy_frozen_core(mol, c_dy[:, :nfz])
        dy_frozen = embed(c_dy[:, :nfz])
        frozen = np.hstack([dy_frozen, _lowdin(_project_out(env_inner, dy_frozen, s), s)])
        rest = np.hstack([embed(c_dy[:, nfz:DY_CORE_ORBITALS]), env_valence])
        occ = np.hstack([frozen, _lowdin(_project_out(rest, frozen, s), s)])
        info["n_frozen"] = nfz + n_env_core
    else:
        # one Loewdin orthogonalisation of all occupied orbitals (the start before frozen_core)
        nin = DY_INNER_CORE_ORBITALS
        occ = _lowdin(np.hstack([embed(c_dy[:, :nin]), env_inner, embed(c_dy[:, nin:DY_CORE_ORBITALS]), env_valence]), s)
        info["n_frozen"] = 0
    act = _lowdin(_project_out(embed(c_dy[:, DY_CORE_ORBITALS : DY_CORE_ORBITALS + NCAS]), occ, s), s)
    vir = embed(c_dy[:, DY_CORE_ORBITALS + NCAS :], c_env[:, nocc_env:])
    vir = _project_out(vir, occ, s)
    vir = _project_out(vir, act, s)
    vir = _lowdin(vir, s)
    mo = np.hstack([occ, act, vir])
    info["n_mo_dropped"] = int(nao - mo.shape[1])
    return mo, DY_CORE_ORBITALS + nocc_env, info
