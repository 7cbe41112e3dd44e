"""DFT proxies of the free ligand with PySCF (optional rule ``proxy_dft``).

Method (stated in every row's ``dft_method``): restricted Kohn-Sham, hybrid functional (default
PBE0), small basis (default def2-SVP, all-electron for H-F), density fitting, at the lowest-energy
MMFF94 conformer of the ligand (the same conformer the xTB proxies use), coordinates centred on the
centre of mass.

Descriptors (:data:`smmflow.tables.DFT_LIGAND_COLUMNS`)
    * ``dft_donor_charge``: IAO charge of the donor atom (intrinsic atomic orbitals, Knizia,
      JCTC 9, 4834 (2013): the occupied space is expressed exactly in Lowdin-orthogonalised IAOs
      built from the MINAO reference basis; charge = Z - IAO population). Nearly independent of
      the basis, unlike Mulliken.
    * ``dft_donor_charge_mulliken``: Mulliken charge of the donor, for comparison.
    * ``dft_dipole_debye``: |dipole| about the centre of mass.
    * ``dft_homo_ev``/``dft_lumo_ev``/``dft_gap_ev``: Kohn-Sham frontier orbital energies.
    * ``dft_energy_eh``: total energy.
A non-converged SCF or any chemistry failure gives a ``status='failed'`` row with a ``reason``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from smmflow import tables as T
from smmflow.chem.conformers import LigandError, ligand_class_of, ligand_conformers
from smmflow.constants import HARTREE_TO_EV

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DftSettings:
    """Knobs of the DFT proxy (config block ``proxies: dft:``)."""

    xc: str = "PBE0"
    basis: str = "def2-SVP"
    grid_level: int = 2
    conv_tol: float = 1e-8
    max_cycle: int = 100
    n_conformers: int = 8
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "DftSettings":
        cfg = dict(cfg or {})
        return cls(**{k: v for k, v in cfg.items() if k in cls.__dataclass_fields__})

    def method(self) -> str:
        return f"RKS {self.xc}/{self.basis} (density fitting, grid level {self.grid_level}), MMFF94 geometry"


def iao_charges(mf) -> np.ndarray:
    """IAO atomic charges of a converged closed-shell SCF object (Z - IAO population)."""
    from pyscf import lo

    mol = mf.mol
    s = mf.get_ovlp()
    occ = mf.mo_coeff[:, mf.mo_occ > 0]
    c = lo.iao.iao(mol, occ)
    c = lo.orth.vec_lowdin(c, s)
    # occupied orbitals in the (orthonormal) IAO basis; population per IAO
    proj = c.T @ s @ occ
    pop_iao = (proj**2 * mf.mo_occ[mf.mo_occ > 0][None, :]).sum(axis=1)
    ref = lo.iao.reference_mol(mol)
    pop_atom = np.zeros(mol.natm)
    for a, (_, _, p0, p1) in enumerate(ref.aoslice_by_atom()):
        pop_atom[a] = pop_iao[p0:p1].sum()
    return mol.atom_charges() - pop_atom


def ligand_dft_descriptors(symbols, positions_a: np.ndarray, charge: int,
                           settings: DftSettings | None = None) -> dict[str, float]:
    """Run the DFT proxy for one geometry (atom 0 = donor). Raises ``RuntimeError`` if the SCF
    does not converge."""
    from ase.data import atomic_masses, atomic_numbers

    from smmflow.native_blas import select_pyscf_blas_kernel

    select_pyscf_blas_kernel()  # before the first pyscf import of the process
    from pyscf import dft, gto

    s = settings or DftSettings()
    m = np.array([atomic_masses[atomic_numbers[x]] for x in symbols])
    pos = positions_a - (m[:, None] * positions_a).sum(axis=0) / m.sum()
    mol = gto.M(atom=[(x, tuple(p)) for x, p in zip(symbols, pos)], basis=s.basis, charge=int(charge),
                spin=0, unit="Angstrom", verbose=0)
    mf = dft.RKS(mol, xc=s.xc).density_fit()
    mf.grids.level = int(s.grid_level)
    mf.conv_tol = float(s.conv_tol)
    mf.max_cycle = int(s.max_cycle)
    mf.verbose = 0
    energy = mf.kernel()
    if not mf.converged:
        mf = mf.newton()  # second-order SCF from where DIIS stopped
        energy = mf.kernel()
        if not mf.converged:
            raise RuntimeError(f"SCF not converged in {s.max_cycle} cycles (+ Newton)")
    e = mf.mo_energy * HARTREE_TO_EV
    homo = float(e[mf.mo_occ > 0].max())
    lumo = float(e[mf.mo_occ == 0].min()) if np.any(mf.mo_occ == 0) else math.nan
    _, mulliken = mf.mulliken_pop(verbose=0)
    dip = mf.dip_moment(unit="Debye", verbose=0)
    return {
        "dft_donor_charge": float(iao_charges(mf)[0]),
        "dft_donor_charge_mulliken": float(mulliken[0]),
        "dft_dipole_debye": float(np.linalg.norm(dip)),
        "dft_homo_ev": homo,
        "dft_lumo_ev": lumo,
        "dft_gap_ev": lumo - homo,
        "dft_energy_eh": float(energy),
    }


def dft_row(row: Mapping[str, Any], settings: DftSettings | None = None) -> dict[str, Any]:
    """One row of :data:`tables.DFT_COLUMNS`; never raises for a chemistry/SCF failure."""
    s = settings or DftSettings()
    t0 = time.perf_counter()
    out: dict[str, Any] = {c: math.nan for c in T.DFT_COLUMNS}
    out.update({T.LIGAND_ID: str(row.get(T.LIGAND_ID, "")), "smiles": str(row.get("smiles", "")),
                "ligand_class": str(row.get("ligand_class", "")), "dft_method": s.method(),
                "status": T.STATUS_FAILED, "reason": ""})
    try:
        smiles = str(row["smiles"])
        out["ligand_class"] = ligand_class_of(smiles)
        lc = ligand_conformers(smiles, n_conformers=s.n_conformers, seed=s.seed)
        best = int(np.argmin(lc.energies_kcal))
        out.update(ligand_dft_descriptors(lc.symbols, lc.conformers[best], lc.formal_charge, s))
        out["status"] = T.STATUS_OK
    except (LigandError, RuntimeError, KeyError, ValueError) as exc:
        out["reason"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - one ligand never fails the batch
        log.exception("unexpected DFT failure for %s", out["smiles"])
        out["reason"] = f"unexpected {type(exc).__name__}: {exc}"
    out["wall_s"] = time.perf_counter() - t0
    return out


def select_subset(ligands: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """A seeded random subset of ``n`` ligands (all when ``n <= 0`` or ``n >= len``), sorted by id."""
    srt = ligands.sort_values(T.LIGAND_ID, kind="mergesort").reset_index(drop=True)
    if n <= 0 or n >= len(srt):
        return srt
    idx = np.random.default_rng(seed).choice(len(srt), size=n, replace=False)
    return srt.iloc[np.sort(idx)].reset_index(drop=True)


def dft_table(ligands: pd.DataFrame, settings: DftSettings | None = None) -> pd.DataFrame:
    """DFT proxy rows for every ligand row, in input order, with the :data:`tables.DFT_COLUMNS`."""
    return T.table_of_rows(ligands, lambda row: dft_row(row, settings), T.DFT_COLUMNS, log)
