"""PySCF molecule and mean-field objects of a quantum region; Dy 4f orbital selection."""

from __future__ import annotations

from typing import Any

import numpy as np

from smmflow.abinitio.basis import basis_map
from smmflow.abinitio.lowrank_df import LowRankJK
from smmflow.abinitio.settings import NCAS, CasscfSettings
from smmflow.constants import ANGSTROM_TO_BOHR

# ---------------------------------------------------------------------------------------------
# Molecule, point charges, integrals
# ---------------------------------------------------------------------------------------------


#: label suffix of the atoms that carry ``CasscfSettings.outer_basis`` (PySCF reads "C1" as carbon and
#: looks its basis up under "C1" first; auxiliary sets fall back to the element)
OUTER_LABEL_SUFFIX = "1"


def outer_atoms(coords_a, settings: CasscfSettings) -> np.ndarray:
    """Which atoms of a quantum region (atom 0 Dy, angstrom) take ``settings.outer_basis``: all
    farther than ``settings.dense_radius_a`` from Dy (none when ``outer_basis`` is None)."""
    coords_a = np.asarray(coords_a, dtype=float).reshape(-1, 3)
    if settings.outer_basis is None or len(coords_a) == 0:
        return np.zeros(len(coords_a), dtype=bool)
    return np.linalg.norm(coords_a - coords_a[0], axis=1) > settings.dense_radius_a


def build_molecule(symbols, coords_a, charge: int, spin: int, settings: CasscfSettings, outer=None):
    """PySCF molecule (angstrom input) with the configured basis per element; atoms flagged in
    ``outer`` (see :func:`outer_atoms`) carry ``settings.outer_basis`` instead (a locally dense basis)."""
    from pyscf import gto

    symbols = list(symbols)
    outer = np.zeros(len(symbols), dtype=bool) if outer is None else np.asarray(outer, dtype=bool)
    if outer.any() and settings.outer_basis is None:
        raise ValueError("atoms flagged for the outer basis but settings.outer_basis is None")
    labels = [s + OUTER_LABEL_SUFFIX if o else s for s, o in zip(symbols, outer)]
    basis = basis_map(set(symbols), settings.basis)
    if outer.any():
        basis.update({s + OUTER_LABEL_SUFFIX: basis_map({s}, {"default": settings.outer_basis})[s]
                      for s in {s for s, o in zip(symbols, outer) if o}})
    atom = [(s, tuple(float(x) for x in c)) for s, c in zip(labels, coords_a)]
    mol = gto.Mole()
    mol.atom = atom
    mol.unit = "Angstrom"
    mol.basis = basis
    mol.charge = int(charge)
    mol.spin = int(spin)
    mol.verbose = 0
    mol.max_memory = settings.max_memory_mb
    mol.build()
    return mol


def auxbasis_map(mol, spec) -> Any:
    """Auxiliary basis for ``mol`` from a :class:`CasscfSettings` ``auxbasis`` value (see there):
    ``None`` or "etb" -> PySCF's even-tempered basis; another string or a per-element mapping ->
    named sets resolved offline like the orbital basis (:func:`smmflow.abinitio.basis.basis_for_element`)."""
    from pyscf import df

    from smmflow.abinitio.basis import basis_for_element

    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"default": spec}
    default = spec.get("default", "etb")
    elements = sorted({mol.atom_pure_symbol(i) for i in range(mol.natm)})
    names = {el: spec.get(el, default) for el in elements}
    if all(n.lower() == "etb" for n in names.values()):
        return None
    etb: dict[float, dict] = {}

    def even_tempered(el: str, name: str):
        # "etb" (PySCF's beta 2.0) or "etb:BETA", e.g. "etb:2.3" (fewer, coarser functions)
        beta = float(name.split(":", 1)[1]) if ":" in name else 2.0  # PySCF's default ETB_BETA
        if beta not in etb:
            etb[beta] = df.addons.aug_etb(mol, beta=beta)
        return etb[beta][el]

    return {el: (even_tempered(el, n) if n.lower().startswith("etb") else basis_for_element(el, n))
            for el, n in names.items()}


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


class PointChargeSCF:
    """SCF mixin (composed like PySCF's ``QMMMSCF``): the parent class's one-electron Hamiltonian
    (sfx2c1e) plus a fixed AO potential ``v_ext`` of ``self.mol`` (point charges; None: nothing
    added), built on first use and kept until :meth:`reset` (every CASSCF macro-iteration reads it).
    Add it with :func:`add_point_charge_potential`. The potential belongs to ``self.mol``: the
    ``mol`` argument of ``get_hcore`` is accepted for PySCF's signature only."""

    __name_mixin__ = "PointCharge"
    _keys = {"v_ext"}

    def __init__(self, mf, v_ext: np.ndarray | None = None):
        self.__dict__.update(mf.__dict__)
        self.v_ext = v_ext
        self._hcore_ext = None

    def reset(self, mol=None):
        self._hcore_ext = None
        return super().reset(mol)

    def get_hcore(self, mol=None):
        if self._hcore_ext is None:
            h = super().get_hcore(self.mol)
            if self.v_ext is not None:
                h = h + self.v_ext
            self._hcore_ext = h
        return self._hcore_ext


def add_point_charge_potential(mf, v_ext: np.ndarray | None):
    """``mf`` with the class ``(PointChargeSCF, mf.__class__)`` (see :class:`PointChargeSCF`)."""
    from pyscf import lib

    return lib.set_class(PointChargeSCF(mf, v_ext), (PointChargeSCF, mf.__class__))


def make_scf(mol, hcore_extra: np.ndarray | None, settings: CasscfSettings, use_df: bool, eri=None):
    """ROHF + sfx2c1e of ``mol`` (not run), density-fitted with :class:`LowRankJK` when ``use_df``,
    with the extra one-electron potential ``hcore_extra`` (point charges) via :class:`PointChargeSCF`;
    ``eri``: exact AO integrals to use instead of recomputing them."""
    from pyscf import lib, scf

    mf = scf.ROHF(mol).sfx2c1e()
    mf.verbose = settings.verbose
    if use_df:
        mf = mf.density_fit(auxbasis=auxbasis_map(mol, settings.auxbasis))
        mf = lib.set_class(mf, (LowRankJK, mf.__class__))
    mf = add_point_charge_potential(mf, hcore_extra)
    if eri is not None:
        mf._eri = eri
    return mf
