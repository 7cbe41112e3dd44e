"""Model [Dy(H2O)5L2] geometries for the ab initio tests and benchmarks (no xTB needed).

Idealised pentagonal bipyramid following the complex geometry contract: Dy at the origin, five
waters (O at 2.4 A, regular pentagon in the xy-plane), ligand 1 donor on +z, ligand 2 donor on -z
(the inversion image of ligand 1). Point charges stand in for xTB charges: fixed values for water
and hydroxide, RDKit Gasteiger charges for RDKit-embedded ligands. These are test models, not
workflow inputs.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from smmflow.geometry.contract import N_FRAME_ATOMS

WATER_O_CHARGE, WATER_H_CHARGE = -0.70, 0.35


def _water_block(d_o: float = 2.4) -> tuple[list[str], list[np.ndarray], list[float]]:
    sym, pos, q = [], [], []
    half = np.radians(104.5 / 2)
    for k in range(5):
        phi = 2 * np.pi * k / 5
        r = np.array([np.cos(phi), np.sin(phi), 0.0])
        o = d_o * r
        z = np.array([0.0, 0.0, 1.0])
        sym += ["O", "H", "H"]
        pos += [o, o + 0.96 * (np.cos(half) * r + np.sin(half) * z), o + 0.96 * (np.cos(half) * r - np.sin(half) * z)]
        q += [WATER_O_CHARGE, WATER_H_CHARGE, WATER_H_CHARGE]
    return sym, pos, q


def dy_complex(lig_symbols: list[str], lig_pos: np.ndarray, lig_charges: list[float], ligand_charge: int,
               d_donor: float = 2.2, smiles: str = "", ligand_id: str = "Ltest") -> Atoms:
    """[Dy(H2O)5L2] from one ligand given with its donor at index 0 at the origin, pointing along +z."""
    wsym, wpos, wq = _water_block()
    lig_pos = np.asarray(lig_pos, dtype=float) - np.asarray(lig_pos[0], dtype=float)
    l1 = lig_pos + np.array([0.0, 0.0, d_donor])
    l2 = -l1  # inversion image (donor on -z)
    n = len(lig_symbols)
    atoms = Atoms(["Dy"] + wsym + list(lig_symbols) * 2, positions=np.vstack([[0, 0, 0], wpos, l1, l2]))
    atoms.info.update(charge=3 + 2 * ligand_charge, ligand_id=ligand_id, smiles=smiles,
                      donor_indices=[N_FRAME_ATOMS, N_FRAME_ATOMS + n], n_ligand_atoms=n)
    atoms.arrays["initial_charges"] = np.array([0.0] + wq + list(lig_charges) * 2)
    return atoms


def hydroxide_complex(d_donor: float = 2.2) -> Atoms:
    """[Dy(H2O)5(OH)2]+ with O at 2.2 A on the z axis, H pointing away from Dy."""
    return dy_complex(["O", "H"], np.array([[0, 0, 0], [0, 0, 0.96]]), [-1.30, 0.30], -1, d_donor,
                      smiles="[OH-]", ligand_id="Lhydroxide")


def rdkit_ligand_complex(smiles: str, d_donor: float | None = None, seed: int = 7) -> Atoms:
    """Embed a donor-first SMILES with RDKit (ETKDG, ``seed``), orient it along z, build the complex."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise ValueError(f"RDKit could not embed {smiles}")
    AllChem.MMFFOptimizeMolecule(mol)
    AllChem.ComputeGasteigerCharges(mol)
    pos = mol.GetConformer().GetPositions()
    pos = pos - pos[0]
    # direction: from the donor away from the rest of the ligand -> the donor points to Dy (-z)
    away = pos[1:].mean(axis=0)
    away /= np.linalg.norm(away)
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(away, z)
    c = float(np.dot(away, z))
    if np.linalg.norm(v) < 1e-8:
        rot = np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
        rot = np.eye(3) + vx + vx @ vx / (1 + c)
    pos = pos @ rot.T
    syms = [a.GetSymbol() for a in mol.GetAtoms()]
    q = [float(a.GetDoubleProp("_GasteigerCharge")) for a in mol.GetAtoms()]
    qlig = Chem.GetFormalCharge(mol)
    if d_donor is None:
        d_donor = 2.2 if qlig < 0 else (2.5 if syms[0] == "N" else 2.35)
    return dy_complex(syms, pos, q, qlig, d_donor, smiles=smiles, ligand_id="L" + smiles)


def distort(atoms: Atoms, amplitude: float, seed: int) -> Atoms:
    """Random displacement (uniform in [-amplitude, amplitude] A per coordinate) of all atoms but Dy."""
    rng = np.random.default_rng(seed)
    out = atoms.copy()
    d = rng.uniform(-amplitude, amplitude, size=(len(out), 3))
    d[0] = 0.0
    out.positions = out.positions + d
    return out


def rotate(atoms: Atoms, seed: int) -> Atoms:
    """The whole complex rotated by a random proper rotation about Dy (seeded)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    out = atoms.copy()
    out.positions = out.positions @ q.T
    return out
