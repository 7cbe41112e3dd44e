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

import math

import numpy as np

from smmflow import constants as C
from smmflow.chem.conformers import LigandConformers, LigandError, ligand_class_of, ligand_conformers
from smmflow.geometry.contract import N_FRAME_ATOMS

#: contact radii (A) for the soft clash score; roughly 0.75 x Bondi van der Waals radii
_CONTACT_RADIUS_A: dict[str, float] = {
    "H": 0.90, "C": 1.28, "N": 1.16, "O": 1.14, "F": 1.10, "S": 1.35, "Cl": 1.31,
    "Br": 1.39, "P": 1.35, "B": 1.44, "Si": 1.58, "Dy": 1.50,
}


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
#: turns about the Dy-donor axis (deg) of the best conformer that give the starts after the conformers
EXTRA_START_TURNS_DEG: tuple[float, ...] = (90.0, 180.0, 270.0)


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
    start_rank: int = 0,
):
    """Build [Dy(H2O)5L2] (see the module docstring for the atom order) as an :class:`ase.Atoms`.

    ``ligand_charge`` defaults to the SMILES formal charge; a mismatch raises :class:`LigandError`.
    ``dy_donor_distance`` defaults to the class-typical value in
    :data:`smmflow.constants.DY_DONOR_START_DISTANCE_A`. ``conformers`` reuses conformers already
    computed by :func:`ligand_conformers` for the same SMILES. ``start_rank`` k > 0 gives another
    start (when a relaxation from the best ends in a wrong binding mode): the conformer whose best
    rotation has the (k+1)-th lowest clash score, and after the last conformer the best one turned by
    :data:`EXTRA_START_TURNS_DEG` about the axis; :class:`LigandError` past the last start.
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

    per_conformer = []  # (score of its best rotation, that placement), in conformer order
    for conf, e in zip(lc.conformers, lc.energies_kcal):
        lp = lone_pair_direction(conf, 0, lc.neighbors_of_donor)
        placed = _place_on_axis(conf, lp, d0, +1)
        best = None
        for phi in angles:
            x1 = placed @ rotation_about_z(phi).T
            s = clash_score(x1, lig_sym, frame_pos, frame_sym, skip_dy) + 1e-3 * (e - emin)
            if best is None or s < best[0] - 1e-12:
                best = (s, x1)
        assert best is not None
        per_conformer.append(best)
    # starts, best first: each conformer at its best rotation (lowest score first, ties: conformer
    # order), then the best conformer turned by 90, 180 and 270 deg from its best rotation
    order: list[int] = []
    remaining = list(range(len(per_conformer)))
    while remaining:
        pick = remaining[0]
        for i in remaining[1:]:
            if per_conformer[i][0] < per_conformer[pick][0] - 1e-12:
                pick = i
        remaining.remove(pick)
        order.append(pick)
    n_starts = len(order) + len(EXTRA_START_TURNS_DEG)
    if not 0 <= int(start_rank) < n_starts:
        raise LigandError(f"no start of rank {start_rank}: {smiles!r} has {n_starts} starts")
    if start_rank < len(order):
        lig1 = per_conformer[order[int(start_rank)]][1]
    else:
        turn = math.radians(EXTRA_START_TURNS_DEG[int(start_rank) - len(order)])
        lig1 = per_conformer[order[0]][1] @ rotation_about_z(turn).T

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
