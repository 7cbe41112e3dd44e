"""Pentagonal-bipyramidal [Dy(H2O)5L2] complexes: 3D builder, extxyz I/O and geometric descriptors.

Geometry contract (shared with the ab initio engine)
----------------------------------------------------
An :class:`ase.Atoms` with index 0 = Dy at the origin; indices 1..15 the five equatorial waters
(O, H, H each; the O atoms in the xy-plane on a regular pentagon, the water planes vertical, i.e.
containing the z axis, so the frame has the C2 axis along x used below); then ligand 1 (donor atom
first, donor on +z), then ligand 2 (donor first, on -z). ``atoms.info`` holds ``charge``
(3 + 2 q(L)), ``ligand_id``, ``smiles``, ``donor_indices`` (the two donor indices) and
``n_ligand_atoms``. ``atoms.arrays['initial_charges']`` holds GFN2-xTB atomic charges once computed.

Builder
-------
Ligand conformers come from RDKit ETKDG + MMFF94 (seeded). Each conformer is placed with its donor
lone-pair direction (opposite to the sum of the unit vectors to the donor's neighbours) pointing at
Dy at a class-typical Dy-donor distance, and rotated about the Dy-donor (z) axis; the (conformer,
angle) with the smallest soft-clash score against the Dy(H2O)5 frame is kept. Ligand 2 is the image
of ligand 1 under the C2 rotation about x (so the two ligands are the same enantiomer), then rotated
about z to avoid ligand 1.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from dataclasses import dataclass

import numpy as np

from smmflow import constants as C

#: contact radii (A) for the soft clash score; roughly 0.75 x Bondi van der Waals radii
_CONTACT_RADIUS_A: dict[str, float] = {
    "H": 0.90, "C": 1.28, "N": 1.16, "O": 1.14, "F": 1.10, "S": 1.35, "Cl": 1.31,
    "Br": 1.39, "P": 1.35, "B": 1.44, "Si": 1.58, "Dy": 1.50,
}
N_FRAME_ATOMS: int = 1 + 3 * C.N_EQUATORIAL_WATERS  # Dy + 5 waters
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
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
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


# --------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------
def lone_pair_direction(positions: np.ndarray, donor: int, neighbors: tuple[int, ...]) -> np.ndarray:
    """Unit vector from the donor away from its bonded neighbours (its lone-pair direction).

    For a donor without neighbours, or whose neighbour vectors cancel (a linear environment), an
    arbitrary vector perpendicular to the bonds is returned.
    """
    d = positions[donor]
    s = np.zeros(3)
    for j in neighbors:
        v = positions[j] - d
        s += v / np.linalg.norm(v)
    n = np.linalg.norm(s)
    if n < 1e-3:
        if neighbors:
            b = positions[neighbors[0]] - d
            trial = np.cross(b, [1.0, 0.0, 0.0])
            if np.linalg.norm(trial) < 1e-3:
                trial = np.cross(b, [0.0, 1.0, 0.0])
            return trial / np.linalg.norm(trial)
        return np.array([0.0, 0.0, 1.0])
    return -s / n


def rotation_aligning(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Proper rotation matrix R with R @ a parallel to b (unit vectors)."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1.0 + 1e-10:  # antiparallel: rotate by pi about any axis perpendicular to a
        p = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(p) < 1e-6:
            p = np.cross(a, [0.0, 1.0, 0.0])
        p /= np.linalg.norm(p)
        return 2.0 * np.outer(p, p) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def rotation_about_z(phi: float) -> np.ndarray:
    c, s = math.cos(phi), math.sin(phi)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


#: the C2 rotation about x that maps ligand 1 (+z) onto ligand 2 (-z) and keeps the water frame
C2_X: np.ndarray = np.diag([1.0, -1.0, -1.0])


def dy_water_frame(dy_o_distance: float = C.DY_WATER_O_DISTANCE_A) -> tuple[list[str], np.ndarray]:
    """Dy at the origin and five waters with O on a regular xy-pentagon (first O on +x).

    Each water plane contains the z axis and the Dy-O bond (H-O-H bisector pointing away from Dy),
    so the frame is symmetric under the C2 rotation about x.
    """
    half = math.radians(C.WATER_HOH_ANGLE_DEG) / 2.0
    symbols = ["Dy"]
    pos = [np.zeros(3)]
    for k in range(C.N_EQUATORIAL_WATERS):
        th = 2.0 * math.pi * k / C.N_EQUATORIAL_WATERS
        u = np.array([math.cos(th), math.sin(th), 0.0])
        o = dy_o_distance * u
        ez = np.array([0.0, 0.0, 1.0])
        h1 = o + C.WATER_OH_DISTANCE_A * (math.cos(half) * u + math.sin(half) * ez)
        h2 = o + C.WATER_OH_DISTANCE_A * (math.cos(half) * u - math.sin(half) * ez)
        symbols += ["O", "H", "H"]
        pos += [o, h1, h2]
    return symbols, np.array(pos)


def clash_score(pos_a: np.ndarray, sym_a: list[str] | tuple[str, ...], pos_b: np.ndarray,
                sym_b: list[str] | tuple[str, ...], skip_pairs: set[tuple[int, int]] | None = None) -> float:
    """Soft clash penalty sum max(0, r_i + r_j - d_ij)^2 over pairs (i in a, j in b), A^2."""
    ra = np.array([_CONTACT_RADIUS_A.get(s, 1.4) for s in sym_a])
    rb = np.array([_CONTACT_RADIUS_A.get(s, 1.4) for s in sym_b])
    d = np.linalg.norm(pos_a[:, None, :] - pos_b[None, :, :], axis=-1)
    over = np.clip(ra[:, None] + rb[None, :] - d, 0.0, None)
    if skip_pairs:
        for i, j in skip_pairs:
            over[i, j] = 0.0
    return float(np.sum(over**2))


def _place_on_axis(coords: np.ndarray, lone_pair: np.ndarray, distance: float, side: int) -> np.ndarray:
    """Move the donor (atom 0) to (0, 0, side*distance), lone pair pointing at the origin."""
    rot = rotation_aligning(lone_pair, np.array([0.0, 0.0, -float(side)]))
    x = (coords - coords[0]) @ rot.T
    return x + np.array([0.0, 0.0, side * distance])


# --------------------------------------------------------------------------------------------
# builder
# --------------------------------------------------------------------------------------------
def build_complex(
    smiles: str,
    *,
    ligand_id: str = "",
    ligand_charge: int | None = None,
    dy_donor_distance: float | None = None,
    n_conformers: int = 8,
    n_rotations: int = 12,
    seed: int = 0,
    conformers: LigandConformers | None = None,
):
    """Build [Dy(H2O)5L2] (see the module docstring for the atom order) as an :class:`ase.Atoms`.

    ``ligand_charge`` defaults to the SMILES formal charge; a mismatch raises :class:`LigandError`.
    ``dy_donor_distance`` defaults to the class-typical value in
    :data:`smmflow.constants.DY_DONOR_START_DISTANCE_A`. ``conformers`` reuses conformers already
    computed by :func:`ligand_conformers` for the same SMILES.
    """
    from ase import Atoms

    lc = conformers or ligand_conformers(smiles, n_conformers=n_conformers, seed=seed)
    if ligand_charge is not None and int(ligand_charge) != lc.formal_charge:
        raise LigandError(
            f"ligand_charge {ligand_charge} disagrees with the formal charge {lc.formal_charge} of {smiles!r}"
        )
    cls = ligand_class_of(smiles)
    d0 = float(dy_donor_distance or C.DY_DONOR_START_DISTANCE_A[cls])
    frame_sym, frame_pos = dy_water_frame()
    lig_sym = list(lc.symbols)
    n_lig = len(lig_sym)
    # the donor-Dy contact is a bond, not a clash; so are donor-neighbour/Dy contacts at the start
    skip_dy = {(0, 0)}
    emin = min(lc.energies_kcal)
    angles = [2.0 * math.pi * k / max(1, n_rotations) for k in range(max(1, n_rotations))]

    best = None
    for conf, e in zip(lc.conformers, lc.energies_kcal):
        lp = lone_pair_direction(conf, 0, lc.neighbors_of_donor)
        placed = _place_on_axis(conf, lp, d0, +1)
        for phi in angles:
            x1 = placed @ rotation_about_z(phi).T
            s = clash_score(x1, lig_sym, frame_pos, frame_sym, skip_dy) + 1e-3 * (e - emin)
            if best is None or s < best[0] - 1e-12:
                best = (s, x1)
    assert best is not None
    lig1 = best[1]
    lig2_base = lig1 @ C2_X.T
    best2 = None
    for phi in [0.0] + angles[1:]:
        x2 = lig2_base @ rotation_about_z(phi).T
        s = clash_score(x2, lig_sym, frame_pos, frame_sym, skip_dy) + clash_score(x2, lig_sym, lig1, lig_sym)
        if best2 is None or s < best2[0] - 1e-12:
            best2 = (s, x2)
    assert best2 is not None
    lig2 = best2[1]

    symbols = frame_sym + lig_sym + lig_sym
    positions = np.vstack([frame_pos, lig1, lig2])
    atoms = Atoms(symbols=symbols, positions=positions)
    atoms.info["charge"] = int(C.complex_charge(lc.formal_charge))
    atoms.info["ligand_id"] = str(ligand_id)
    atoms.info["smiles"] = str(smiles)
    atoms.info["donor_indices"] = [N_FRAME_ATOMS, N_FRAME_ATOMS + n_lig]
    atoms.info["n_ligand_atoms"] = int(n_lig)
    return atoms


# --------------------------------------------------------------------------------------------
# descriptors
# --------------------------------------------------------------------------------------------
def donor_indices(atoms) -> tuple[int, int]:
    """The two axial donor indices of a complex following the geometry contract."""
    if "donor_indices" in atoms.info:
        d = [int(i) for i in np.atleast_1d(atoms.info["donor_indices"])]
        return d[0], d[1]
    n = int(atoms.info["n_ligand_atoms"])
    return N_FRAME_ATOMS, N_FRAME_ATOMS + n


def equatorial_oxygen_indices() -> list[int]:
    return [1 + 3 * k for k in range(C.N_EQUATORIAL_WATERS)]


def dy_donor_distances(atoms) -> tuple[float, float]:
    """Dy-donor distances (A) of the two axial ligands."""
    p = atoms.get_positions()
    d1, d2 = donor_indices(atoms)
    return float(np.linalg.norm(p[d1] - p[0])), float(np.linalg.norm(p[d2] - p[0]))


def l_dy_l_angle(atoms) -> float:
    """Donor-Dy-donor angle (degrees); 180 for an ideal bipyramid."""
    p = atoms.get_positions()
    d1, d2 = donor_indices(atoms)
    a, b = p[d1] - p[0], p[d2] - p[0]
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def d5h_deviation(atoms) -> float:
    """RMS distance (A) of the 7 donor atoms from the best-aligned ideal D5h bipyramid.

    The ideal shape has Dy at the centre, the five equatorial donors on a regular pentagon of the
    mean equatorial radius and the two axial donors on the perpendicular axis at the mean axial
    radius; it is rotated onto the actual donors (Kabsch, Dy fixed; the equatorial waters in index
    order, ligand 1 on +z). A pure change of bond lengths between the two axial ligands, or a bent
    L-Dy-L axis, both count as deviation.
    """
    p = atoms.get_positions() - atoms.get_positions()[0]
    eq = equatorial_oxygen_indices()
    d1, d2 = donor_indices(atoms)
    actual = np.vstack([p[eq], p[[d1, d2]]])
    r_eq = float(np.mean(np.linalg.norm(p[eq], axis=1)))
    r_ax = float(np.mean(np.linalg.norm(p[[d1, d2]], axis=1)))
    # orientation of the pentagon: order of waters by angle; the builder puts them counterclockwise
    ideal = [
        [r_eq * math.cos(2 * math.pi * k / 5), r_eq * math.sin(2 * math.pi * k / 5), 0.0] for k in range(5)
    ]
    ideal += [[0.0, 0.0, r_ax], [0.0, 0.0, -r_ax]]
    ideal = np.array(ideal)
    h = ideal.T @ actual
    u, _, vt = np.linalg.svd(h)
    dsign = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, dsign]) @ u.T
    fitted = ideal @ rot.T
    return float(np.sqrt(np.mean(np.sum((fitted - actual) ** 2, axis=1))))


def structural_descriptors(atoms) -> dict[str, float]:
    """The complex columns that depend on geometry only (see :data:`tables.XTB_COMPLEX_COLUMNS`)."""
    r1, r2 = dy_donor_distances(atoms)
    return {
        "dist_dy_donor1_a": r1,
        "dist_dy_donor2_a": r2,
        "angle_l_dy_l_deg": l_dy_l_angle(atoms),
        "d5h_deviation_a": d5h_deviation(atoms),
    }


def closest_non_donor_contacts(atoms) -> list[tuple[int, float]]:
    """Per ligand, (index, Dy distance) of its heavy atom other than the donor nearest to Dy.

    A value below the Dy-donor distance means the ligand now binds through another atom."""
    p = atoms.get_positions()
    sym = atoms.get_chemical_symbols()
    d1, d2 = donor_indices(atoms)
    out = []
    for start, stop in ((d1, d2), (d2, len(atoms))):
        cand = [(i, float(np.linalg.norm(p[i] - p[0]))) for i in range(start + 1, stop) if sym[i] != "H"]
        out.append(min(cand, key=lambda t: t[1]) if cand else (-1, math.inf))
    return out


def min_interatomic_distance(atoms) -> float:
    p = atoms.get_positions()
    d = np.linalg.norm(p[:, None] - p[None, :], axis=-1)
    d[np.diag_indices_from(d)] = np.inf
    return float(d.min())


def dy_coordination_number(atoms, cutoff: float = 3.0) -> int:
    """Number of O/N atoms within ``cutoff`` A of Dy."""
    p = atoms.get_positions()
    sym = atoms.get_chemical_symbols()
    r = np.linalg.norm(p - p[0], axis=1)
    return int(sum(1 for i in range(1, len(atoms)) if sym[i] in ("O", "N") and r[i] < cutoff))


# --------------------------------------------------------------------------------------------
# extended XYZ
# --------------------------------------------------------------------------------------------
def to_extxyz(atoms) -> str:
    """Extended-XYZ text of a complex (ASE writer; info and initial_charges included)."""
    from ase.io import write

    out = atoms.copy()
    # ASE's extxyz parser misreads empty values (key= swallows the next key): leave them out
    out.info = {k: v for k, v in atoms.info.items() if not (isinstance(v, str) and v == "")}
    buf = io.StringIO()
    write(buf, out, format="extxyz")
    return buf.getvalue()


def from_extxyz(text: str):
    """Inverse of :func:`to_extxyz`; restores ``donor_indices`` as a list of ints."""
    from ase.io import read

    atoms = read(io.StringIO(text), format="extxyz")
    if "donor_indices" in atoms.info:
        atoms.info["donor_indices"] = [int(i) for i in np.atleast_1d(atoms.info["donor_indices"])]
    for key in ("charge", "n_ligand_atoms"):
        if key in atoms.info:
            atoms.info[key] = int(atoms.info[key])
    for key in ("ligand_id", "smiles"):
        atoms.info[key] = str(atoms.info.get(key, ""))
    return atoms


# --------------------------------------------------------------------------------------------
# CLI: smmflow build SMILES [--relax] [-o out.xyz]
# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="smmflow build", description=__doc__.split("\n")[0])
    ap.add_argument("smiles", help="ligand SMILES, donor atom first")
    ap.add_argument("--relax", action="store_true", help="GFN2-xTB relaxation of the axial ligands")
    ap.add_argument("--mode", choices=("axial", "rigid", "flexible", "rigid+flexible"), default="rigid",
                    help="relaxation mode (see smmflow.xtb.relax_complex)")
    ap.add_argument("--waters", choices=("fixed", "rotate"), default="fixed",
                    help="equatorial waters frozen, or turning about their fixed O")
    ap.add_argument("--fmax", type=float, default=0.05, help="force threshold, eV/A (default 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ligand-id", default="")
    ap.add_argument("-o", "--output", default="-", help="extxyz file (default: stdout)")
    args = ap.parse_args(argv)
    try:
        atoms = build_complex(args.smiles, ligand_id=args.ligand_id, seed=args.seed)
        if args.relax:
            from smmflow.xtb import relax_complex

            atoms, info = relax_complex(atoms, mode=args.mode, fmax=args.fmax, waters=args.waters)
            print(f"relaxed: {info.n_steps} steps, converged={info.converged}, E={info.energy_eh:.6f} Eh",
                  file=sys.stderr)
    except (LigandError, RuntimeError, ValueError) as exc:
        print(f"smmflow build: {exc}", file=sys.stderr)
        return 1
    for k, v in structural_descriptors(atoms).items():
        print(f"{k} = {v:.4f}", file=sys.stderr)
    text = to_extxyz(atoms)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        from smmflow.io import write_text_atomic

        write_text_atomic(args.output, text)
    return 0
