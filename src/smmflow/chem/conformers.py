"""Ligand formal charge, class and RDKit conformers (the ligand side of a complex)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: elements that can be the axial donor atom of a ligand
DONOR_ELEMENTS: tuple[str, ...] = ("O", "N")


class LigandError(ValueError):
    """The ligand cannot be turned into an axial donor of the complex (bad SMILES, no donor...)."""


# --------------------------------------------------------------------------------------------
# ligand conformers
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LigandConformers:
    """A ligand with explicit hydrogens (atom 0 = donor) and its 3D conformers (A)."""

    symbols: tuple[str, ...]
    conformers: tuple[np.ndarray, ...]  # each (n_atoms, 3)
    energies_kcal: tuple[float, ...]  # MMFF94 (or UFF) energies, same order
    formal_charge: int
    neighbors_of_donor: tuple[int, ...]


def ligand_formal_charge(smiles: str) -> int:
    """Total formal charge of a SMILES (raises :class:`LigandError` if RDKit cannot parse it)."""
    mol = _mol_from_smiles(smiles)
    from rdkit import Chem

    return int(Chem.GetFormalCharge(mol))


def ligand_class_of(smiles: str) -> str:
    """Ligand class (O, N, O-, N-) of a donor-first SMILES from atom 0 and its formal charge."""
    mol = _mol_from_smiles(smiles)
    donor = mol.GetAtomWithIdx(0)
    el = donor.GetSymbol()
    if el not in DONOR_ELEMENTS:
        raise LigandError(f"atom 0 of {smiles!r} is {el}, not an O or N donor")
    return el + ("-" if donor.GetFormalCharge() < 0 else "")


def _mol_from_smiles(smiles: str):
    from rdkit import Chem, rdBase

    quiet = rdBase.BlockLogs()  # noqa: F841 - RDKit's parse messages, until this function returns
    if not isinstance(smiles, str) or not smiles.strip():
        raise LigandError("empty SMILES")
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise LigandError(f"RDKit cannot parse SMILES {smiles!r}")
    if mol.GetNumAtoms() == 0:
        raise LigandError("SMILES has no atoms")
    if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        raise LigandError(f"{smiles!r} is a radical")
    if len(Chem.GetMolFrags(mol)) != 1:
        raise LigandError(f"{smiles!r} has more than one fragment")
    return mol


def ligand_conformers(smiles: str, n_conformers: int = 8, seed: int = 0) -> LigandConformers:
    """Embed ``n_conformers`` ETKDGv3 conformers of a donor-first ligand and MMFF94-optimise them.

    Falls back to UFF, then to the raw embedding, when force-field parameters are missing.
    Raises :class:`LigandError` when atom 0 is not an O/N donor with a free valence or when no
    conformer can be embedded.
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = _mol_from_smiles(smiles)
    donor = mol.GetAtomWithIdx(0)
    if donor.GetSymbol() not in DONOR_ELEMENTS:
        raise LigandError(f"atom 0 of {smiles!r} is {donor.GetSymbol()}, not an O or N donor")
    if donor.GetFormalCharge() > 0:
        raise LigandError(f"donor atom of {smiles!r} is positively charged (no lone pair)")
    molh = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    params.pruneRmsThresh = 0.1
    cids = list(AllChem.EmbedMultipleConfs(molh, numConfs=max(1, int(n_conformers)), params=params))
    if not cids:
        params.useRandomCoords = True
        cids = list(AllChem.EmbedMultipleConfs(molh, numConfs=max(1, int(n_conformers)), params=params))
    if not cids:
        raise LigandError(f"RDKit could not embed {smiles!r} in 3D")
    energies = [0.0] * len(cids)
    try:
        if AllChem.MMFFHasAllMoleculeParams(molh):
            res = AllChem.MMFFOptimizeMoleculeConfs(molh, maxIters=500)
        elif AllChem.UFFHasAllMoleculeParams(molh):
            res = AllChem.UFFOptimizeMoleculeConfs(molh, maxIters=500)
        else:
            res = [(0, 0.0)] * len(cids)
        energies = [float(e) for _, e in res]
    except Exception:  # noqa: BLE001 - a force-field failure keeps the ETKDG geometry
        pass
    symbols = tuple(a.GetSymbol() for a in molh.GetAtoms())
    confs = tuple(np.array(molh.GetConformer(cid).GetPositions(), dtype=float) for cid in cids)
    return LigandConformers(
        symbols=symbols,
        conformers=confs,
        energies_kcal=tuple(energies),
        formal_charge=int(Chem.GetFormalCharge(molh)),
        neighbors_of_donor=tuple(n.GetIdx() for n in molh.GetAtomWithIdx(0).GetNeighbors()),
    )
