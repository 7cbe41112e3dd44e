"""PySCF molecule and mean-field objects of a quantum region; Dy 4f orbital selection."""

from __future__ import annotations

from typing import Any

import numpy as np

from smmflow.abinitio.basis import basis_map
from smmflow.abinitio.lowrank_df import low_rank_get_jk
from smmflow.abinitio.settings import NCAS, CasscfSettings
from smmflow.constants import ANGSTROM_TO_BOHR

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
