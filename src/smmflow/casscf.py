"""SA-CASSCF(9,7) over the 21 sextets of Dy(III) 4f^9, with spin-orbit state interaction and
magnetic properties, for [Dy(H2O)5L2] complexes at three fidelity tiers.

Method (see docs/casscf.md)
---------------------------
* Scalar relativity sfx2c1e; all-electron segmented ``x2c-SVPall`` basis by default (per element
  configurable, :mod:`smmflow.basis`).
* Ms = 5/2 sector, CAS(9,7) with nelecas = (7, 2): exactly 21 determinants = the 21 sextets
  (6H, 6F, 6P); all 21 are state-averaged with equal weights.
* The 7 active orbitals are chosen by Dy 4f Mulliken population, never by orbital energy.
* Start: the free Dy3+ SA-CASSCF orbitals (computed once per basis and cached), combined for the
  embedded/full tiers with closed-shell orbitals of the ligand shell computed in the field of a +3
  point charge at Dy ("ion + fragments" start).
* Tiers: ``pointcharge`` (Dy3+ quantum, every other atom a point charge with its xTB charge),
  ``embedded`` (Dy + the five waters + each ligand's donor atom and its bonded neighbours quantum,
  cut bonds capped with H link atoms, the rest point charges; charges of atoms bonded to the quantum
  region are zeroed), ``full`` (the whole complex quantum).
* Spin-orbit: :mod:`smmflow.spin_orbit` (BP one-electron + AMFI two-electron on the bare Dy);
  magnetism: :mod:`smmflow.magnetism`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smmflow import magnetism, spin_orbit
from smmflow.native_blas import select_pyscf_blas_kernel
from smmflow.basis import DEFAULT_BASIS, basis_map
from smmflow.constants import (
    ANGSTROM_TO_BOHR,
    DY_4F_ELECTRONS,
    DY_ION_CHARGE,
    DY_Z,
    HARTREE_TO_CM1,
    N_KRAMERS_DOUBLETS_GROUND_MULTIPLET,
)

log = logging.getLogger(__name__)

TIERS = ("pointcharge", "embedded", "full")
NCAS = 7
NELECAS = (7, 2)  # Ms = 5/2: 21 determinants = 21 sextets
N_SEXTETS = 21
SPIN_S = 2.5
DY_CORE_ORBITALS = (DY_Z - DY_ION_CHARGE - DY_4F_ELECTRONS) // 2  # 27 doubly occupied in Dy3+
DY_INNER_CORE_ORBITALS = 23  # 1s..4d of Dy (n <= 4); 5s, 5p stay optimised (they shield the 4f)


def inner_core_orbitals(z: int) -> int:
    """Doubly occupied inner-shell orbitals of a light element (noble-gas core below the valence)."""
    for n_core, z_max in ((0, 2), (1, 10), (5, 18), (9, 36)):
        if z <= z_max:
            return n_core
    raise ValueError(f"no inner-core count for Z = {z} (only H-Kr ligand atoms are supported)")
WATER_ATOMS = slice(1, 16)
LINK_H_DISTANCE_A = {"C": 1.09, "N": 1.01, "O": 0.96, "S": 1.34}


ORBITAL_OPTIMISERS = ("average", "augmented_hessian")


class CasscfFailure(RuntimeError):
    """A physically failed calculation (not a bug): reported as status=failed with the message."""


@dataclass
class CasscfSettings:
    """Knobs of one SA-CASSCF+SO run (all have working defaults)."""

    tier: str = "pointcharge"
    basis: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BASIS))
    density_fit: bool = True  # DF for embedded/full (pointcharge uses exact Dy-only integrals)
    #: DF auxiliary basis: one name for every element, or element -> name with key "default";
    #: "etb" = PySCF's even-tempered basis generated from the orbital basis. Default: even-tempered
    #: on Dy (all-electron; no fitted set exists for x2c-SVPall Dy), def2-universal-jkfit on the
    #: light atoms (x2c-SVPall = def2-SVP contractions there; 40% fewer functions than etb).
    auxbasis: str | dict[str, str] | None = field(default_factory=lambda: {"Dy": "etb", "default": "def2-universal-jkfit"})
    verbose: int = 0  # PySCF verbosity of the SCF/CASSCF objects (4: per-iteration log on stdout)
    conv_tol: float = 1e-9  # SA energy, hartree
    conv_tol_grad: float = 1e-4
    max_cycle_macro: int = 40
    #: embedded/full: keep Dy 1s-4d and the ligand-atom 1s (2s2p for 3rd-row) orbitals frozen at the
    #: (Loewdin-orthogonalised) start orbitals during SA-CASSCF. Makes each augmented-Hessian JK
    #: build cheaper, but measured: only ~5% faster and KD2 -9 cm-1 (-1.7%) on the 9-heavy-atom
    #: alkoxide (embedded), so off by default.
    frozen_core: bool = False
    #: embedded/full (DF): "average" optimises the orbitals as a configuration-average SCF (the
    #: SA over all 21 sextets is the determinant average; one J/K build per iteration) and falls back
    #: to PySCF after ``max_cycle_average`` iterations; "augmented_hessian" is PySCF's mc1step.
    #: Same SA-CASSCF either way. The Dy-only pointcharge tier always uses PySCF's.
    orbital_optimiser: str = "average"
    max_cycle_average: int = 80
    soc_scale: float = 1.0  # multiply the SOC operator (BP-AMFI overestimates zeta by ~5%)
    f_population_min: float = 0.80  # every active orbital must be at least this Dy-f
    kramers_tol_cm1: float = 0.01
    max_memory_mb: int = 4000
    cache_dir: str | None = None  # where the free-ion reference (orbitals + AMFI) is cached

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}; choose one of {', '.join(TIERS)}")
        if self.orbital_optimiser not in ORBITAL_OPTIMISERS:
            raise ValueError(f"unknown orbital_optimiser {self.orbital_optimiser!r}; choose one of {', '.join(ORBITAL_OPTIMISERS)}")


    def key(self) -> str:
        """Hash of what the free-ion reference depends on (basis only)."""
        return hashlib.sha256(json.dumps(sorted(self.basis.items())).encode()).hexdigest()[:16]


@dataclass
class QuantumRegion:
    """What is treated quantum mechanically and what as point charges (coordinates in angstrom)."""

    symbols: list[str]
    coords: np.ndarray
    charge: int
    mm_coords: np.ndarray
    mm_charges: np.ndarray
    n_link_atoms: int = 0


# ---------------------------------------------------------------------------------------------
# Partitioning of the complex into tiers
# ---------------------------------------------------------------------------------------------


def ligand_charge_of(atoms) -> int:
    """Formal charge of each axial ligand from the complex charge (3 + 2 q(L))."""
    q = int(atoms.info["charge"])
    if (q - DY_ION_CHARGE) % 2:
        raise ValueError(f"complex charge {q} is not 3 + 2 q(L)")
    return (q - DY_ION_CHARGE) // 2


def _check_geometry(atoms) -> None:
    if len(atoms) == 0 or atoms[0].symbol != "Dy":
        raise ValueError("atom 0 of the complex must be Dy (geometry contract)")
    if "charge" not in atoms.info:
        raise ValueError("atoms.info['charge'] is missing")
    if int(np.sum(atoms.numbers == DY_Z)) != 1:
        raise ValueError("the complex must contain exactly one Dy")


def _point_charges(atoms) -> np.ndarray:
    if "initial_charges" not in atoms.arrays:
        raise ValueError("tier needs atomic point charges in atoms.arrays['initial_charges'] (xTB)")
    return np.asarray(atoms.arrays["initial_charges"], dtype=float)


def fragment_ids(atoms) -> np.ndarray:
    """Fragment of each atom per the geometry contract: 0 Dy, 1..5 waters, 6 ligand 1, 7 ligand 2."""
    n = len(atoms)
    nl = int(atoms.info.get("n_ligand_atoms", max(0, (n - 16) // 2)))
    frag = np.zeros(n, dtype=int)
    for i in range(1, min(n, 16)):
        frag[i] = (i - 1) // 3 + 1
    frag[16 : 16 + nl] = 6
    frag[16 + nl :] = 7
    return frag


def ligand_bond_graph(atoms) -> list[set[int]]:
    """Covalent neighbours of every atom from covalent radii, within one fragment only (no Dy bonds,
    no water-ligand contacts)."""
    from ase.neighborlist import NeighborList, natural_cutoffs

    nl = NeighborList(natural_cutoffs(atoms, mult=1.1), skin=0.0, self_interaction=False, bothways=True)
    nl.update(atoms)
    frag = fragment_ids(atoms)
    nbrs = []
    for i in range(len(atoms)):
        idx, _ = nl.get_neighbors(i)
        nbrs.append({int(j) for j in idx if frag[i] != 0 and frag[j] == frag[i]})
    return nbrs


def is_single_bond(el_i: str, el_j: str, d: float, factor: float = 0.97) -> bool:
    """Geometric single-bond test: length >= ``factor`` x the sum of single-bond covalent radii
    (C-C >= 1.47, C-N >= 1.43, C-O >= 1.38 A); aromatic, double and conjugated amide/ester C-X bonds
    are shorter. Only such bonds may be cut and capped by H in the embedded tier."""
    from ase.data import atomic_numbers, covalent_radii

    return d >= factor * (covalent_radii[atomic_numbers[el_i]] + covalent_radii[atomic_numbers[el_j]])


def donor_indices(atoms) -> list[int]:
    """The two axial donor atoms: from ``atoms.info['donor_indices']`` or the two non-water atoms nearest Dy."""
    if "donor_indices" in atoms.info:
        return [int(i) for i in atoms.info["donor_indices"]]
    d = np.linalg.norm(atoms.positions - atoms.positions[0], axis=1)
    cand = [i for i in np.argsort(d) if i >= 16 and atoms[i].symbol != "H"]
    if len(cand) < 2:
        raise ValueError("cannot identify two axial donor atoms")
    return [int(cand[0]), int(cand[1])]


def partition(atoms, tier: str) -> QuantumRegion:
    """Split the complex into a quantum region and point charges for ``tier``."""
    _check_geometry(atoms)
    charge = int(atoms.info["charge"])
    pos = atoms.positions
    sym = atoms.get_chemical_symbols()
    if tier == "full":
        return QuantumRegion(sym, pos.copy(), charge, np.zeros((0, 3)), np.zeros(0))
    q = _point_charges(atoms)
    if tier == "pointcharge":
        return QuantumRegion(["Dy"], pos[:1].copy(), DY_ION_CHARGE, pos[1:].copy(), q[1:].copy())
    if tier != "embedded":
        raise ValueError(f"unknown tier {tier!r}")
    nbrs = ligand_bond_graph(atoms)
    quantum = set(range(0, 16)) if len(atoms) >= 16 else {0}
    for d in donor_indices(atoms):
        quantum.add(d)
        quantum |= nbrs[d]
    # never cut a multiple/aromatic bond: grow the quantum region across every bond to the outside
    # that is shorter than a single bond, until only single bonds are cut (then capped by H)
    grown = True
    while grown:
        grown = False
        for i in list(quantum):
            for j in nbrs[i] - quantum:
                if sym[j] != "H" and not is_single_bond(sym[i], sym[j], float(np.linalg.norm(pos[j] - pos[i]))):
                    quantum.add(j)
                    grown = True
    # hydrogens on quantum heavy atoms come along (no dangling X-H cut)
    for i in list(quantum):
        quantum |= {j for j in nbrs[i] if sym[j] == "H"}
    qidx = sorted(quantum)
    link_sym, link_pos, boundary = [], [], set()
    for i in qidx:
        for j in sorted(nbrs[i] - quantum):
            boundary.add(j)
            bond = pos[j] - pos[i]
            r = LINK_H_DISTANCE_A.get(sym[i], 1.09)
            link_sym.append("H")
            link_pos.append(pos[i] + bond / np.linalg.norm(bond) * r)
    mm = [j for j in range(len(atoms)) if j not in quantum]
    mmq = np.array([0.0 if j in boundary else q[j] for j in mm])
    qlig = ligand_charge_of(atoms)
    qcharge = DY_ION_CHARGE + 2 * qlig
    frag = fragment_ids(atoms)
    for f in (6, 7):
        piece = [i for i in qidx if frag[i] == f]
        n_links = sum(1 for i in qidx if frag[i] == f for _ in nbrs[i] - quantum)
        n_el = int(sum(atoms.numbers[i] for i in piece)) + n_links - qlig
        if n_el % 2:
            raise ValueError(
                f"embedded tier: the quantum piece of ligand {f - 5} has an odd electron count ({n_el}) "
                "after capping; use the full or pointcharge tier for this ligand"
            )
    coords = np.vstack([pos[qidx], np.array(link_pos).reshape(-1, 3)])
    return QuantumRegion(
        [sym[i] for i in qidx] + link_sym, coords, qcharge, pos[mm].copy(), mmq, len(link_sym)
    )


# ---------------------------------------------------------------------------------------------
# Molecule, point charges, integrals
# ---------------------------------------------------------------------------------------------


def build_molecule(symbols, coords_a, charge: int, spin: int, settings: CasscfSettings):
    """PySCF molecule (angstrom input) with the configured basis per element."""
    from pyscf import gto

    atom = [(s, tuple(float(x) for x in c)) for s, c in zip(symbols, coords_a)]
    mol = gto.Mole()
    mol.atom = atom
    mol.unit = "Angstrom"
    mol.basis = basis_map(set(symbols), settings.basis)
    mol.charge = int(charge)
    mol.spin = int(spin)
    mol.verbose = 0
    mol.max_memory = settings.max_memory_mb
    mol.build()
    return mol


def auxbasis_map(mol, spec) -> Any:
    """Auxiliary basis for ``mol`` from a :class:`CasscfSettings` ``auxbasis`` value (see there):
    ``None`` or "etb" -> PySCF's even-tempered basis; another string or a per-element mapping ->
    named sets resolved offline like the orbital basis (:func:`smmflow.basis.basis_for_element`)."""
    from pyscf import df

    from smmflow.basis import basis_for_element

    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"default": spec}
    default = spec.get("default", "etb")
    elements = sorted({mol.atom_pure_symbol(i) for i in range(mol.natm)})
    names = {el: spec.get(el, default) for el in elements}
    if all(n.lower() == "etb" for n in names.values()):
        return None
    etb = df.addons.aug_etb(mol) if any(n.lower() == "etb" for n in names.values()) else {}
    return {el: (etb[el] if n.lower() == "etb" else basis_for_element(el, n)) for el, n in names.items()}


def point_charge_potential(mol, coords_a: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """One-electron potential matrix of point charges (electron attraction sign), (nao, nao)."""
    if len(charges) == 0:
        return np.zeros((mol.nao, mol.nao))
    from pyscf import df, gto

    fake = gto.fakemol_for_charges(np.asarray(coords_a) * ANGSTROM_TO_BOHR)
    j3c = df.incore.aux_e2(mol, fake, intor="int3c2e", aosym="s1")
    return -np.einsum("ijk,k->ij", j3c, np.asarray(charges, dtype=float))


def dy_f_population(mol, mo: np.ndarray, atom_id: int = 0) -> np.ndarray:
    """Mulliken population of each MO on the f functions of atom ``atom_id`` (Dy)."""
    s = mol.intor_symmetric("int1e_ovlp")
    labels = mol.ao_labels(fmt=False)
    fidx = [i for i, lab in enumerate(labels) if lab[0] == atom_id and lab[2][-1] == "f"]
    return np.einsum("mi,mi->i", mo[fidx], (s @ mo)[fidx])


def select_4f_orbitals(mol, mo: np.ndarray, candidates: np.ndarray, ncas: int = NCAS) -> tuple[np.ndarray, np.ndarray]:
    """The ``ncas`` MOs among ``candidates`` with the largest Dy-f population (and their populations)."""
    pop = dy_f_population(mol, mo[:, candidates])
    order = np.argsort(-pop)[:ncas]
    return np.asarray(candidates)[np.sort(order)], pop[np.sort(order)]


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


def _make_scf(mol, hcore_extra: np.ndarray | None, settings: CasscfSettings, use_df: bool, eri=None):
    from pyscf import scf

    mf = scf.ROHF(mol).sfx2c1e()
    mf.verbose = settings.verbose
    if use_df:
        mf = mf.density_fit(auxbasis=auxbasis_map(mol, settings.auxbasis))
        mf.get_jk = low_rank_get_jk(mf.get_jk)
    h = mf.get_hcore(mol)
    if hcore_extra is not None:
        h = h + hcore_extra
    mf.get_hcore = lambda *args, **kwargs: h
    if eri is not None:
        mf._eri = eri
    return mf


def low_rank_jk_in_ah(mc):
    """Replacement of PySCF's ``CASSCF.update_jk_in_ah`` for density-fitted CASSCF that uses the low
    rank of the trial densities.

    In every augmented-Hessian step PySCF builds J and K of the two trial densities
    ``dm3 = C_core r_cv C_v^T + h.c.`` (rank <= 2 ncore) and ``dm4 = C_act casdm1 r_a C^T + h.c.``
    (rank <= 2 ncas) as if they were dense: 2 x 4 naux nao^3 flops. Here, with the DF factors
    ``L_P`` and ``dm = a b^T + b a^T``, ``K[dm] = sum_P (L_P a)(L_P b)^T + (L_P b)(L_P a)^T`` and only
    the rows/columns the Hessian needs (core/active rows, MO columns) are formed:
    about 8 naux nao^2 (ncore + ncas) flops, 3-4x fewer for ncore ~ 70, nao ~ 300.

    Within one macro-iteration the orbitals ``mo`` and ``casdm1`` are fixed, so the half of the
    factors that does not depend on the trial rotation (``a = C_core``, ``d = C_act casdm1``) gives
    the same ``C^T L_P [a d]`` in every AH step: it is kept from the first step of the
    macro-iteration when it fits in memory (``(ncore + ncas) naux nmo`` doubles, at most half of
    the free ``max_memory``), which halves the flops of every later step. Exact either way (same
    numbers as PySCF up to round-off; tested)."""
    from pyscf import lib

    with_df = mc.with_df
    cache: dict[str, Any] = {}

    def fixed_factor_products(mo, casdm1, moving):
        """The cached blocks of C^T L_P [a d] if they belong to these orbitals, else None."""
        if not cache:
            return None
        same = (cache["mo"].shape == mo.shape and np.array_equal(cache["mo"], mo)
                and np.array_equal(cache["casdm1"], casdm1) and np.array_equal(cache["moving"], moving))
        return cache["blocks"] if same else None

    def update_jk_in_ah(mo, r, casdm1, eris):
        ncore, ncas = mc.ncore, mc.ncas
        nocc = ncore + ncas
        nao, nmo = mo.shape
        moving = np.flatnonzero(np.any(r[:ncore, ncore:] != 0, axis=1))  # frozen rows are zero
        a = np.asarray(mo[:, moving], order="C")
        b = mo[:, ncore:] @ r[moving, ncore:].T  # dm3 = a b^T + b a^T
        nmv = len(moving)
        d = mo[:, ncore:nocc] @ casdm1
        e = mo @ r[ncore:nocc].T  # dm4 = d e^T + e d^T
        nfix = nmv + ncas  # fixed factors [a d]
        cached = fixed_factor_products(mo, casdm1, moving)
        keep = False
        if cached is None:
            cache.clear()
            need_mb = nfix * with_df.get_naoaux() * nmo * 8 / 1e6
            keep = need_mb < 0.5 * (mc.max_memory - lib.current_memory()[0])
            fac = np.hstack([a, d, b, e])  # (nao, nf): fixed [a d] first, then the trial factors
        else:
            fac = np.hstack([b, e])
            cache["hits"] += 1
        nf = fac.shape[1]
        vj3 = np.zeros((nao, nao))
        vj4 = np.zeros((nao, nao))
        k3 = np.zeros((nocc, nmo))  # occupied rows of C^T K[dm3] C
        k4 = np.zeros((ncore, nmo))  # core rows of C^T K[dm4] C
        blocks: list[np.ndarray] = []
        # the same blocks in every call of a macro-iteration (the cached products are per block)
        blksize = max(4, min(with_df.blockdim, int(2.0e7 / max(1, nao * max(nao, 2 * nfix)))))
        for ib, cderi in enumerate(with_df.loop(blksize)):
            naux = cderi.shape[0]
            lfull = lib.unpack_tril(cderi).reshape(naux * nao, nao)
            # factor-major layout (nf, naux, nao): factors^T L_P (L_P symmetric), then C^T on the
            # last axis; two plain GEMMs, no batched matmul and no transposed copies
            lt = lib.dot(fac.T, lfull.T).reshape(nf, naux, nao)
            lt_b, lt_e = lt[nf - nmv - ncas : nf - ncas], lt[nf - ncas :]
            rho3 = 2.0 * np.einsum("cpk,kc->p", lt_b, a)  # tr(dm3 L_P) = 2 a^T L_P b
            rho4 = 2.0 * np.einsum("cpk,kc->p", lt_e, d)
            lfull = lfull.reshape(naux, nao * nao)
            vj3 += (rho3 @ lfull).reshape(nao, nao)
            vj4 += (rho4 @ lfull).reshape(nao, nao)
            m = lib.dot(lt.reshape(nf * naux, nao), mo).reshape(nf, naux, nmo)  # C^T L_P [factors]
            if cached is None:
                mfix, mvar = m[:nfix], m[nfix:]
                if keep:
                    blocks.append(np.array(mfix))
            else:
                mfix, mvar = cached[ib], m
            ma = mfix[:nmv].reshape(nmv * naux, nmo)
            md = mfix[nmv:].reshape(ncas * naux, nmo)
            mb = mvar[:nmv].reshape(nmv * naux, nmo)
            me = mvar[nmv:].reshape(ncas * naux, nmo)
            k3 += lib.dot(ma[:, :nocc].T, mb) + lib.dot(mb[:, :nocc].T, ma)  # sum_P x_P[rows] y_P^T
            k4 += lib.dot(md[:, :ncore].T, me) + lib.dot(me[:, :ncore].T, md)
        if keep:
            cache.update(mo=np.array(mo), casdm1=np.array(casdm1), moving=moving, blocks=blocks, hits=0)
        c_act = mo[:, ncore:nocc]
        va = casdm1 @ (2.0 * (c_act.T @ vj3 @ mo) - k3[ncore:nocc])
        vj34 = 2.0 * vj3 + vj4
        vc = 2.0 * (mo[:, :ncore].T @ vj34 @ mo[:, ncore:]) - (2.0 * k3[:ncore, ncore:] + k4[:, ncore:])
        return va, vc

    update_jk_in_ah.cache = cache  # for inspection (tests): the kept products and their reuse count
    return update_jk_in_ah


@dataclass
class DfCasscfIntegrals:
    """The integrals one DF-CASSCF macro-iteration needs (the attributes of PySCF's
    ``mcscf.df._ERIS``), held in memory: ``ppaa[p,q,u,v] = (pq|uv)``, ``papa[p,u,q,v] = (pu|qv)``,
    ``j_pc = (pp|cc)``, ``k_pc = (pc|pc)``, ``vhf_c`` (core Fock potential, MO basis)."""

    ppaa: np.ndarray
    papa: np.ndarray
    j_pc: np.ndarray
    k_pc: np.ndarray
    vhf_c: np.ndarray


def df_casscf_integrals(mc, mo: np.ndarray) -> DfCasscfIntegrals:
    """Replacement of PySCF's DF-CASSCF integral transformation (``mcscf.df._ERIS``) with the same
    numbers from a fraction of the work.

    PySCF transforms every auxiliary function to the full MO basis, ``(P|pq)`` for all p, q
    (2 naux nao^2 nmo flops), writes the result to a temporary HDF5 file (naux nmo^2 doubles:
    ~10 GB for 600 AOs) and reads it back to contract with ``(P|uv)``. Only occupied columns are
    needed except in ``ppaa``, so here: ``(P|p i)`` for occupied i (2 x 2 naux nao^2 nocc flops)
    gives ``papa``, ``k_pc`` and ``(P|cc)``; then one pass over the packed AO factors forms the AO
    matrices ``sum_P L_P (P|uv)`` and ``sum_P L_P (P|cc)``, which are taken to the MO basis for
    ``ppaa`` and (diagonal only) ``j_pc``. Everything stays in memory (tested against PySCF)."""
    from pyscf import lib

    with_df = mc.with_df
    ncore, ncas = mc.ncore, mc.ncas
    nocc = ncore + ncas
    mo = np.asarray(mo, order="C")
    nao, nmo = mo.shape
    naux = with_df.get_naoaux()
    c_occ = np.asarray(mo[:, :nocc], order="C")
    pa = np.empty((naux, nmo, ncas))  # (P|p u)
    cc = np.empty((naux, ncore))  # (P|c c)
    k_cp = np.zeros((ncore, nmo))
    free_mb = max(500.0, mc.max_memory - lib.current_memory()[0])
    per_aux = 8 * (nao * nao + nocc * (nao + nmo))  # unpacked L_P, L_P C_occ, C^T L_P C_occ
    blksize = max(4, min(with_df.blockdim, int(0.3 * free_mb * 1e6 / per_aux)))
    p0 = 0
    for cderi in with_df.loop(blksize):
        nb = cderi.shape[0]
        lfull = lib.unpack_tril(cderi).reshape(nb * nao, nao)
        lt = lib.dot(c_occ.T, lfull.T)  # (nocc, nb * nao): [i, (P, mu)] = (L_P C_occ)[mu, i]
        m = lib.dot(lt.reshape(nocc * nb, nao), mo).reshape(nocc, nb, nmo)  # [i, P, p] = (P|p i)
        pa[p0 : p0 + nb] = m[ncore:].transpose(1, 2, 0)
        mcore = m[:ncore]
        k_cp += np.einsum("cPp,cPp->cp", mcore, mcore)
        cc[p0 : p0 + nb] = np.einsum("cPc->Pc", mcore[:, :, :ncore])
        p0 += nb
    aa = np.ascontiguousarray(pa[:, ncore:nocc, :]).reshape(naux, ncas * ncas)  # (P|uv)
    coef = np.hstack([aa, cc])  # (naux, ncas^2 + ncore)
    npair = nao * (nao + 1) // 2
    g = np.zeros((npair, coef.shape[1]))  # packed AO matrices sum_P L_P coef[P, k]
    p0 = 0
    for cderi in with_df.loop(blksize):
        nb = cderi.shape[0]
        g += lib.dot(cderi.T, coef[p0 : p0 + nb])
        p0 += nb
    ppaa = np.empty((nmo, nmo, ncas * ncas))
    for k in range(ncas * ncas):
        x = lib.unpack_tril(g[:, k])
        ppaa[:, :, k] = mo.T @ x @ mo
    ppaa = ppaa.reshape(nmo, nmo, ncas, ncas)
    j_pc = np.empty((nmo, ncore))
    for c in range(ncore):
        x = lib.unpack_tril(g[:, ncas * ncas + c])
        j_pc[:, c] = np.einsum("mp,mp->p", mo, x @ mo)
    g = None
    papa = lib.dot(pa.reshape(naux, nmo * ncas).T, pa.reshape(naux, nmo * ncas)).reshape(nmo, ncas, nmo, ncas)
    dm_core = c_occ[:, :ncore] @ c_occ[:, :ncore].T
    vj, vk = mc.get_jk(mc.mol, dm_core)
    vhf_c = mo.T @ (2.0 * vj - vk) @ mo
    return DfCasscfIntegrals(ppaa, papa, j_pc, k_cp.T.copy(), vhf_c)


def low_rank_get_jk(get_jk_dense):
    """Wrap a DF ``get_jk(mol, dm, hermi, ...)`` so that every positive semidefinite density of low
    rank (the core and active densities PySCF's DF-CASSCF builds in every gradient update, ERI
    transformation and ``get_veff``) goes through PySCF's occupied-orbital DF path (K from
    ``L_P C``: 2 naux nao^2 rank flops) instead of the dense one (4 naux nao^3). Same numbers; any
    other density is passed through unchanged (tested)."""
    from pyscf import lib

    def factorised(dm):
        w, u = np.linalg.eigh(0.5 * (dm + dm.T))
        scale = max(float(np.abs(w).max()), 1e-300)
        keep = np.abs(w) > 1e-10 * scale
        if np.all(w[keep] > 0) and 2 * int(keep.sum()) < dm.shape[0]:
            return lib.tag_array(dm, mo_coeff=u[:, keep], mo_occ=w[keep])
        return None

    def get_jk(mol=None, dm=None, hermi=1, with_j=True, with_k=True, omega=None):
        if hermi != 1 or omega is not None or not with_k or getattr(dm, "mo_coeff", None) is not None:
            return get_jk_dense(mol, dm, hermi, with_j=with_j, with_k=with_k, omega=omega)
        dms = np.asarray(dm)
        single = dms.ndim == 2
        stack = dms[None] if single else dms
        tagged = [factorised(d) for d in stack]
        if not any(t is not None for t in tagged):
            return get_jk_dense(mol, dm, hermi, with_j=with_j, with_k=with_k, omega=omega)
        vj, vk = [], []
        for d, t in zip(stack, tagged):
            j, k = get_jk_dense(mol, d if t is None else t, hermi, with_j=with_j, with_k=with_k, omega=omega)
            vj.append(j)
            vk.append(k)
        if single:
            return vj[0], vk[0]
        return (np.asarray(vj) if with_j else None), np.asarray(vk)

    return get_jk


def use_low_rank_df(mc):
    """Give a PySCF DF-CASSCF object (before ``state_average_``) this module's faster, exact
    pieces: the low-rank AH exchange, the low-rank ``get_jk`` and the in-memory integral
    transformation. Returns ``mc``."""
    mc.update_jk_in_ah = low_rank_jk_in_ah(mc)
    mc.get_jk = low_rank_get_jk(mc.get_jk)
    mc.ao2mo = lambda mo_coeff=None: df_casscf_integrals(mc, mc.mo_coeff if mo_coeff is None else mo_coeff)
    return mc


def run_sa_casscf(mf, mo0: np.ndarray, ncore: int, settings: CasscfSettings, frozen: int = 0) -> SaCasscfOutcome:
    """SA-CASSCF(9,7) over all 21 sextets from the start orbitals ``mo0`` (core | 7 active | virtual);
    the first ``frozen`` orbitals of ``mo0`` are not optimised."""
    from pyscf import mcscf

    mol = mf.mol
    if 2 * ncore + sum(NELECAS) != mol.nelectron:
        raise ValueError(f"electron count mismatch: 2*{ncore} + 9 != {mol.nelectron}")
    if getattr(mf, "with_df", None) is not None:
        mc = mcscf.DFCASSCF(mf, NCAS, NELECAS, ncore=ncore)
        use_low_rank_df(mc)
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


# ---------------------------------------------------------------------------------------------
# Free Dy3+ reference: start orbitals + AMFI (geometry independent, cached)
# ---------------------------------------------------------------------------------------------


@dataclass
class FreeIonReference:
    mo_coeff: np.ndarray  # (nao_dy, nmo): core | 4f | virtual
    e_states: np.ndarray
    amfi: np.ndarray  # (3, nao_dy, nao_dy) real antisymmetric SOMF two-electron part
    eri: np.ndarray | None = None  # Dy-only AO ERIs (memory only)
    wall_s: float = 0.0


_FREE_ION_MEMO: dict[str, FreeIonReference] = {}


def _free_ion_path(settings: CasscfSettings) -> Path | None:
    if not settings.cache_dir:
        return None
    return Path(settings.cache_dir) / f"dy3_free_ion_{settings.key()}.npz"


def free_ion_reference(settings: CasscfSettings) -> FreeIonReference:
    """SA-CASSCF orbitals and AMFI operator of the bare Dy3+ ion, from memory, disk or computed."""
    select_pyscf_blas_kernel()
    key = settings.key()
    if key in _FREE_ION_MEMO:
        return _FREE_ION_MEMO[key]
    mol = build_molecule(["Dy"], np.zeros((1, 3)), DY_ION_CHARGE, 5, settings)
    path = _free_ion_path(settings)
    ref = None
    if path is not None and path.exists():
        try:
            with np.load(path) as z:
                ref = FreeIonReference(z["mo_coeff"], z["e_states"], z["amfi"], wall_s=float(z["wall_s"]))
            if ref.mo_coeff.shape[0] != mol.nao:
                ref = None
        except (OSError, KeyError, ValueError):
            ref = None
    if ref is None:
        ref = _compute_free_ion(mol, settings)
        if path is not None:
            from smmflow.io import atomic_path

            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, mo_coeff=ref.mo_coeff, e_states=ref.e_states, amfi=ref.amfi, wall_s=ref.wall_s)
    if ref.eri is None:
        ref.eri = mol.intor("int2e", aosym="s8")
    _FREE_ION_MEMO[key] = ref
    return ref


def _compute_free_ion(mol, settings: CasscfSettings) -> FreeIonReference:
    from pyscf import scf

    t0 = time.perf_counter()
    eri = mol.intor("int2e", aosym="s8")  # 85 AOs: ~50 MB, computed once and reused everywhere
    mf = scf.ROHF(mol).sfx2c1e()
    mf._eri = eri
    mf.conv_tol = 1e-9
    mf.max_cycle = 200
    mf.kernel()
    if not mf.converged:
        mf = scf.newton(mf)
        mf.kernel(mf.mo_coeff, mf.mo_occ)
    nocc = int(np.count_nonzero(mf.mo_occ))
    cand = np.arange(min(mol.nao, nocc + NCAS))
    act, _ = select_4f_orbitals(mol, mf.mo_coeff, cand)
    mo0 = _reorder(mf.mo_coeff, act, DY_CORE_ORBITALS)
    mf_ci = _make_scf(mol, None, settings, use_df=False, eri=eri)
    out = run_sa_casscf(mf_ci, mo0, DY_CORE_ORBITALS, settings)
    if not out.converged:
        raise CasscfFailure("free-ion SA-CASSCF did not converge")
    dm = _sa_density(out)
    f_shells = [i for i in range(mol.nbas) if mol.bas_angular(i) == 3]
    amfi = spin_orbit.somf_two_electron_ao(mol, dm, f_shells)
    return FreeIonReference(out.mo_coeff, out.e_states, amfi, eri=eri, wall_s=time.perf_counter() - t0)


def _reorder(mo: np.ndarray, act: np.ndarray, ncore: int) -> np.ndarray:
    """Put the ``act`` columns right after the first ``ncore`` non-active columns."""
    rest = [i for i in range(mo.shape[1]) if i not in set(act.tolist())]
    order = rest[:ncore] + list(act) + rest[ncore:]
    return mo[:, order]


def _sa_density(out: SaCasscfOutcome) -> np.ndarray:
    """State-averaged spin-summed AO density of an SA-CASSCF outcome."""
    mc = out.mc
    casdm1 = mc.fcisolver.make_rdm1(out.ci, NCAS, NELECAS)
    mo = out.mo_coeff
    core = mo[:, : out.ncore]
    act = mo[:, out.ncore : out.ncore + NCAS]
    return 2.0 * core @ core.T + act @ casdm1 @ act.T


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


def ion_plus_fragments_start(mol, ref: FreeIonReference, region: QuantumRegion, settings: CasscfSettings) -> tuple[np.ndarray, int, dict]:
    """Start orbitals (core | 4f | virtual) and ncore for a complex whose atom 0 is Dy.

    Dy: the free-ion SA-CASSCF orbitals. Ligand shell: closed-shell RHF of the non-Dy quantum atoms
    in the field of a +3 point charge at Dy and of the region's point charges. (Tried and dropped: the
    field of the free Dy3+ ion with an orthogonality projector gave a worse start, |g_orb| 4.4 vs 0.92
    on [Dy(H2O)5(OH)2]+.)
    """
    from pyscf import scf

    nao_dy = ref.mo_coeff.shape[0]
    if mol.aoslice_by_atom()[0][3] != nao_dy:
        raise ValueError("Dy basis in the complex differs from the free-ion reference basis")
    info: dict[str, Any] = {}
    c_dy = ref.mo_coeff
    if mol.natm == 1:
        return c_dy.copy(), DY_CORE_ORBITALS, info
    t0 = time.perf_counter()
    env_sym = region.symbols[1:]
    env = build_molecule(env_sym, region.coords[1:], region.charge - DY_ION_CHARGE, 0, settings)
    if env.nelectron % 2:
        raise CasscfFailure("ligand shell has an odd electron count (radical ligand?)")
    v = point_charge_potential(
        env,
        np.vstack([region.coords[:1], region.mm_coords]),
        np.concatenate([[float(DY_ION_CHARGE)], region.mm_charges]),
    )
    mf = scf.RHF(env).sfx2c1e()
    if settings.density_fit:
        mf = mf.density_fit(auxbasis=auxbasis_map(env, settings.auxbasis))
    h = mf.get_hcore(env) + v
    mf.get_hcore = lambda *a, **k: h
    mf.conv_tol = 1e-7
    mf.max_cycle = 100
    log.info("ligand-shell RHF: %d atoms, %d AOs", env.natm, env.nao)
    mf.kernel()
    log.info("ligand-shell RHF done in %.1f s (converged %s)", time.perf_counter() - t0, mf.converged)
    info["ligand_shell_scf_converged"] = bool(mf.converged)
    info["ligand_shell_scf_s"] = time.perf_counter() - t0
    nocc_env = env.nelectron // 2
    nao = mol.nao
    c_env = mf.mo_coeff
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
    # inner cores first (Dy 1s-4d, ligand-atom 1s...: frozen in SA-CASSCF when frozen_core), then
    # Dy 5s5p and the ligand valence; the ligand-shell RHF orbitals are energy-ordered, cores lowest
    n_env_core = sum(inner_core_orbitals(int(z)) for z in env.atom_charges())
    if n_env_core > nocc_env:
        raise CasscfFailure("ligand shell has fewer electrons than inner-core orbitals")
    nin = DY_INNER_CORE_ORBITALS
    occ = _lowdin(
        np.hstack([
            embed(c_dy[:, :nin]), embed(block_env=c_env[:, :n_env_core]),
            embed(c_dy[:, nin:DY_CORE_ORBITALS]), embed(block_env=c_env[:, n_env_core:nocc_env]),
        ]),
        s,
    )
    info["n_frozen"] = nin + n_env_core if settings.frozen_core else 0
    act = _lowdin(_project_out(embed(c_dy[:, DY_CORE_ORBITALS : DY_CORE_ORBITALS + NCAS]), occ, s), s)
    vir = embed(c_dy[:, DY_CORE_ORBITALS + NCAS :], c_env[:, nocc_env:])
    vir = _project_out(vir, occ, s)
    vir = _project_out(vir, act, s)
    vir = _lowdin(vir, s)
    mo = np.hstack([occ, act, vir])
    info["n_mo_dropped"] = int(nao - mo.shape[1])
    return mo, DY_CORE_ORBITALS + nocc_env, info


def run_average_casscf(mf, mo0: np.ndarray, ncore: int, settings: CasscfSettings, frozen: int = 0) -> SaCasscfOutcome:
    """SA-CASSCF(9,7) over all 21 sextets, orbitals optimised as a configuration-average SCF
    (:mod:`smmflow.configuration_average`: the 21 sextets are every Ms = 5/2 determinant of 4f^9, so
    the state-averaged energy is the determinant average), then the 21 CASCI states on the
    converged orbitals. Same stationary point as PySCF's augmented-Hessian SA-CASSCF (tested) for
    one J/K build per iteration. If it does not converge in ``max_cycle_average`` iterations,
    PySCF's SA-CASSCF continues from its orbitals."""
    from pyscf import fci

    from smmflow import configuration_average as cav

    mol = mf.mol
    if 2 * ncore + sum(NELECAS) != mol.nelectron:
        raise ValueError(f"electron count mismatch: 2*{ncore} + 9 != {mol.nelectron}")
    h = mf.get_hcore()
    log.info("configuration-average SA-CASSCF(9,7): %d AOs, ncore %d", mol.nao, ncore)
    res = cav.optimise_average_orbitals(
        h, lambda dm: mf.get_jk(mol, dm), mo0, ncore, NCAS, NELECAS, mf.energy_nuc(),
        conv_tol=settings.conv_tol, conv_tol_grad=settings.conv_tol_grad,
        max_cycle=settings.max_cycle_average, frozen=frozen)
    history = [dict(h_, macro=h_["iteration"], solver="average") for h_ in res.history]
    if not res.converged:
        log.warning("configuration-average SCF not converged (|g| %.2e): PySCF SA-CASSCF takes over", res.gradient_norm)
        out = run_sa_casscf(mf, res.mo_coeff, ncore, settings, frozen=frozen)
        out.history = history + out.history
        out.solver = "average+augmented_hessian"
        return out
    mo = res.mo_coeff
    c_act = mo[:, ncore : ncore + NCAS]
    h1 = c_act.T @ res.terms.core_fock_ao @ c_act
    if getattr(mf, "with_df", None) is not None:
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
    if abs(e_avg - res.energy) > 1e-6:
        raise CasscfFailure(f"CASCI average {e_avg:.8f} differs from the configuration average {res.energy:.8f}")
    return SaCasscfOutcome(None, True, res.iterations, history, e_states, list(ci), mo, ncore, solver="average")


# ---------------------------------------------------------------------------------------------
# The whole calculation
# ---------------------------------------------------------------------------------------------


def run_complex(atoms, settings: CasscfSettings | None = None) -> dict[str, Any]:
    """SA-CASSCF(9,7)+SO Kramers doublets and magnetic properties of one complex (``ase.Atoms``).

    Returns a JSON-ready dict (see :func:`result_keys`); raises ``ValueError`` on bad input and
    :class:`CasscfFailure` for a physically failed calculation.
    """
    select_pyscf_blas_kernel()  # before the first pyscf import of the process
    settings = settings or CasscfSettings()
    t0 = time.perf_counter()
    region = partition(atoms, settings.tier)
    ref = free_ion_reference(settings)
    t_ref = time.perf_counter() - t0
    t_start = time.perf_counter()
    mol = build_molecule(region.symbols, region.coords, region.charge, 5, settings)
    v_pc = point_charge_potential(mol, region.mm_coords, region.mm_charges)
    single_atom = mol.natm == 1
    use_df = settings.density_fit and not single_atom
    mf = _make_scf(mol, v_pc, settings, use_df=use_df, eri=ref.eri if single_atom else None)
    mo0, ncore, start_info = ion_plus_fragments_start(mol, ref, region, settings)
    t1 = time.perf_counter()
    solve = run_average_casscf if use_df and settings.orbital_optimiser == "average" else run_sa_casscf
    out = solve(mf, mo0, ncore, settings, frozen=start_info.get("n_frozen", 0))
    t_casscf = time.perf_counter() - t1
    res = spin_orbit_properties(mol, out, ref, settings, atoms)
    t_so = time.perf_counter() - t1 - t_casscf
    res.update(
        tier=settings.tier,
        converged=out.converged,
        macro_iterations=out.macro_iterations,  # configuration-average SCF iterations for "average"
        orbital_optimiser=out.solver,
        casscf_history=out.history,
        n_ao=int(mol.nao),
        n_quantum_atoms=int(mol.natm),
        n_point_charges=int(len(region.mm_charges)),
        n_link_atoms=int(region.n_link_atoms),
        start=start_info,
        timings_s={"free_ion_reference": t_ref, "start_orbitals": t1 - t_start, "sa_casscf": t_casscf,
                   "spin_orbit": t_so},
        wall_s=time.perf_counter() - t0,
    )
    status, reason = validate(res, settings)
    res["status"], res["reason"] = status, reason
    return res


def spin_orbit_properties(mol, out: SaCasscfOutcome, ref: FreeIonReference, settings: CasscfSettings, atoms=None) -> dict[str, Any]:
    """SO state interaction, KD energies, g-tensors, easy axis, transition moments, barrier."""
    c_act = out.mo_coeff[:, out.ncore : out.ncore + NCAS]
    fpop = dy_f_population(mol, c_act)
    nao_dy = ref.amfi.shape[1]
    x = spin_orbit.bp_one_electron_ao(mol)
    x[:, :nao_dy, :nao_dy] += ref.amfi
    h_ao = spin_orbit.soc_operator(x, settings.soc_scale)
    h_act = np.einsum("pi,kpq,qj->kij", c_act, h_ao, c_act)
    origin = mol.atom_coord(0)
    l_act = np.einsum("pi,kpq,qj->kij", c_act, magnetism.orbital_angular_momentum_ao(mol, origin), c_act)
    zeta = spin_orbit.zeta_from_active(h_act, l_act)
    gamma, rhoz = spin_orbit.transition_densities(out.ci, NCAS, NELECAS)
    e_sf = out.e_states
    w, v = spin_orbit.diagonalise(spin_orbit.so_hamiltonian(e_sf, rhoz, h_act, SPIN_S))
    w_cm = w * HARTREE_TO_CM1
    n_kd = N_KRAMERS_DOUBLETS_GROUND_MULTIPLET
    kd = w_cm[0 : 2 * n_kd : 2]
    kramers = float(np.max(np.abs(w_cm[1 : 2 * n_kd : 2] - w_cm[0 : 2 * n_kd : 2])))
    mu = magnetism.moment_operators(gamma, l_act, SPIN_S)
    mu_kd = magnetism.kd_moments(mu, v, n_kd)
    g, axes = magnetism.kd_g_tensors(mu_kd)
    easy = axes[0][:, 2]
    tm = magnetism.transition_moment_matrix(mu_kd, easy)
    ueff, ueff_kd = magnetism.blocking_barrier(kd, tm)
    angle = None
    if atoms is not None and len(atoms) > 16:
        try:
            d1, d2 = donor_indices(atoms)
            p = atoms.positions
            u1 = (p[d1] - p[0]) / np.linalg.norm(p[d1] - p[0])
            u2 = (p[d2] - p[0]) / np.linalg.norm(p[d2] - p[0])
            angle = magnetism.axis_angle_deg(easy, u1 - u2)
        except (ValueError, IndexError):
            angle = None
    return {
        "kd_energies_cm1": kd.tolist(),
        "g_principal": g.tolist(),
        "g_axes": [a.tolist() for a in axes],
        "easy_axis": easy.tolist(),
        "easy_axis_angle_deg": angle,
        "ueff_cm1": ueff,
        "ueff_kd": int(ueff_kd) + 1,
        "transition_moments_mub": tm.tolist(),
        "so_energies_cm1": w_cm.tolist(),
        "sf_energies_cm1": ((e_sf - e_sf.min()) * HARTREE_TO_CM1).tolist(),
        "zeta_4f_cm1": zeta * HARTREE_TO_CM1,
        "active_f_population": fpop.tolist(),
        "kramers_splitting_max_cm1": kramers,
    }


def validate(res: dict[str, Any], settings: CasscfSettings) -> tuple[str, str]:
    """Status ``ok``/``failed`` and the reasons (non-convergence, broken Kramers pairs, non-4f actives)."""
    reasons = []
    if not res.get("converged", False):
        reasons.append("SA-CASSCF not converged")
    if res["kramers_splitting_max_cm1"] > settings.kramers_tol_cm1:
        reasons.append(f"broken Kramers pairs ({res['kramers_splitting_max_cm1']:.3g} cm-1)")
    fmin = min(res["active_f_population"])
    if fmin < settings.f_population_min:
        reasons.append(f"active orbital not 4f (min Dy-f population {fmin:.2f})")
    so = res["so_energies_cm1"]
    if len(so) > 16 and so[16] - so[15] < 1000.0:
        reasons.append("no 6H15/2-6H13/2 gap: ground multiplet is not J=15/2")
    if res["zeta_4f_cm1"] <= 0:
        reasons.append("negative zeta_4f (SOC sign)")
    return ("failed", "; ".join(reasons)) if reasons else ("ok", "")


def failed_result(tier: str, reason: str, wall_s: float = 0.0) -> dict[str, Any]:
    """The JSON written for a calculation that failed for a physical/input reason."""
    return {"tier": tier, "status": "failed", "reason": reason, "converged": False, "wall_s": wall_s,
            "kd_energies_cm1": None, "g_principal": None}


def settings_from_mapping(cfg: dict[str, Any]) -> CasscfSettings:
    """CasscfSettings from a config mapping (unknown keys are rejected)."""
    names = {f.name for f in dataclasses.fields(CasscfSettings)}
    unknown = set(cfg) - names
    if unknown:
        raise ValueError(f"unknown casscf settings: {', '.join(sorted(unknown))}")
    return CasscfSettings(**cfg)


def default_cache_dir() -> str:
    return os.environ.get("SMMFLOW_CACHE", str(Path.home() / ".cache" / "smmflow"))
