"""Quantum region of a tier: which atoms are quantum, link atoms, and point charges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smmflow.constants import DY_ION_CHARGE, DY_Z
from smmflow.geometry.contract import N_FRAME_ATOMS, donor_indices

LINK_H_DISTANCE_A = {"C": 1.09, "N": 1.01, "O": 0.96, "S": 1.34}


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
    nl = int(atoms.info.get("n_ligand_atoms", max(0, (n - N_FRAME_ATOMS) // 2)))
    frag = np.zeros(n, dtype=int)
    for i in range(1, min(n, N_FRAME_ATOMS)):
        frag[i] = (i - 1) // 3 + 1
    frag[N_FRAME_ATOMS : N_FRAME_ATOMS + nl] = 6
    frag[N_FRAME_ATOMS + nl :] = 7
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


#: default ``CasscfSettings.embedded_radius_a``: ligand atoms this close to Dy are quantum (with
#: their bonded neighbours) in the embedded tier
EMBEDDED_RADIUS_A = 3.2


def partition(atoms, tier: str, radius_a: float = EMBEDDED_RADIUS_A) -> QuantumRegion:
    """Split the complex into a quantum region and point charges for ``tier``.

    ``embedded``: Dy, the five waters, each donor atom and every ligand atom within ``radius_a``
    of Dy, with their bonded neighbours (and hydrogens), grown across multiple bonds; single bonds
    to the rest are cut and capped with H."""
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
    quantum = set(range(N_FRAME_ATOMS)) if len(atoms) >= N_FRAME_ATOMS else {0}
    frag = fragment_ids(atoms)
    near = np.linalg.norm(pos - pos[0], axis=1) <= radius_a
    seeds = set(donor_indices(atoms)) | {int(j) for j in np.flatnonzero(near & (frag >= 6))}
    for d in sorted(seeds):
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
