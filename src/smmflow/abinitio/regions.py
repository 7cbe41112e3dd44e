"""Quantum region of a tier: which atoms are quantum, link atoms, and point charges."""

from __future__ import annotations

import collections
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
    #: fragment of every quantum atom, link atoms included (contract numbering: 0 Dy, 1..5 waters,
    #: 6 and 7 the ligands; a link atom belongs to the atom it caps); None when unknown
    fragments: np.ndarray | None = None
    #: xTB charge of every quantum atom (0 on link atoms); None when the complex carries none
    quantum_charges: np.ndarray | None = None
    #: quantum atoms that carry the outer basis of a locally dense basis (set by the engine from its
    #: settings, :func:`smmflow.abinitio.molecule.outer_atoms`); None: the same basis everywhere
    outer: np.ndarray | None = None


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


def _neutral_outer_charges(q: np.ndarray, mm: list[int], boundary: set[int], frag: np.ndarray) -> np.ndarray:
    """Point charges of the atoms left outside the quantum region of the embedded tier.

    The quantum region carries the whole formal charge of each ligand (3 + 2 q(L)), so the outer
    part of each ligand must be neutral. Boundary atoms (bonded to a quantum atom, replaced by an H
    link atom 0.4-0.5 A away) get no charge, which would otherwise over-polarise the link; the xTB
    charges of the rest of that ligand's outer part are shifted evenly so that they sum to zero.
    Without the shift the outer part keeps the xTB charge the quantum piece lacks, -0.3 to +1.0 e at
    5-8 A from Dy on the benchmark complexes, enough to move a neutral donor's KD8 by ~20 %."""
    out = np.array([0.0 if j in boundary else float(q[j]) for j in mm])
    mm_arr = np.asarray(mm, dtype=int)
    for f in np.unique(frag[mm_arr]) if len(mm) else []:
        piece = frag[mm_arr] == f
        free = piece & np.array([j not in boundary for j in mm])
        target = free if free.any() else piece
        out[target] -= out[piece].sum() / int(target.sum())
    return out


def in_small_ring(nbrs: list[set[int]], i: int, j: int) -> bool:
    """True if the bond i-j lies in a 3- or 4-membered ring. Such bonds are never cut: the two H
    link atoms that would replace a 3-ring bond sit ~1.1 A apart."""
    if nbrs[i] & nbrs[j]:
        return True
    return any(nbrs[k] & (nbrs[j] - {i}) for k in nbrs[i] - {j})


#: default ``CasscfSettings.embedded_radius_a``: ligand atoms this close to Dy are quantum (with
#: their bonded neighbours) in the embedded tier
EMBEDDED_RADIUS_A = 3.2


#: default ``CasscfSettings.embedded_bond_shells``: atoms up to this many cuttable single bonds from a
#: donor are quantum. 2 keeps the benchmark set within 2.5 % of full in KD2 and KD8 (docs/casscf.md);
#: 1 (the donor's neighbours) leaves a diol 6 % / 13 % off
EMBEDDED_BOND_SHELLS = 2


def partition(
    atoms, tier: str, radius_a: float = EMBEDDED_RADIUS_A, bond_shells: int = EMBEDDED_BOND_SHELLS
) -> QuantumRegion:
    """Split the complex into a quantum region and point charges for ``tier``.

    ``embedded``: Dy, the five waters, every ligand atom up to ``bond_shells`` cuttable single bonds
    from a donor atom (a conjugated system or a 3-/4-ring counts as one shell), every ligand atom
    within ``radius_a`` of Dy with its bonded neighbours, and the hydrogens of all of them. Only
    single bonds outside 3-/4-rings are cut, each capped by an H link atom; the atoms outside keep
    their xTB charges, shifted to a neutral sum per ligand, with zero charge on the cut partners."""
    _check_geometry(atoms)
    charge = int(atoms.info["charge"])
    pos = atoms.positions
    sym = atoms.get_chemical_symbols()
    if tier == "full":
        qfull = _point_charges(atoms) if "initial_charges" in atoms.arrays else None
        return QuantumRegion(sym, pos.copy(), charge, np.zeros((0, 3)), np.zeros(0),
                             fragments=fragment_ids(atoms), quantum_charges=qfull)
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
    # bond shells around each donor, counted in cuttable bonds: an atom reached across a bond that
    # may not be cut (multiple, aromatic, conjugated C-X, 3-/4-ring) is in the same shell as the atom
    # it was reached from (0-1 breadth-first search), so the donor's conjugated system and small
    # rings count as one shell and their substituents are the next one
    def cuttable(i: int, j: int) -> bool:
        if sym[i] == "H" or sym[j] == "H":
            return True
        d_ij = float(np.linalg.norm(pos[j] - pos[i]))
        return is_single_bond(sym[i], sym[j], d_ij) and not in_small_ring(nbrs, i, j)

    shell = {d: 0 for d in donor_indices(atoms)}
    queue = collections.deque(shell)
    while queue:
        i = queue.popleft()
        for j in nbrs[i]:
            sj = shell[i] + (1 if cuttable(i, j) else 0)
            if sj <= bond_shells and sj < shell.get(j, bond_shells + 1):
                shell[j] = sj
                (queue.append if sj > shell[i] else queue.appendleft)(j)
    quantum |= set(shell)
    # the same closure around the radius seeds and their neighbours: only cuttable bonds are cut
    grown = True
    while grown:
        grown = False
        for i in list(quantum):
            for j in nbrs[i] - quantum:
                if not cuttable(i, j):
                    quantum.add(j)
                    grown = True
    # hydrogens on quantum heavy atoms come along (no dangling X-H cut)
    for i in list(quantum):
        quantum |= {j for j in nbrs[i] if sym[j] == "H"}
    qidx = sorted(quantum)
    link_sym, link_pos, link_frag, boundary = [], [], [], set()
    for i in qidx:
        for j in sorted(nbrs[i] - quantum):
            boundary.add(j)
            link_frag.append(frag[i])
            bond = pos[j] - pos[i]
            r = LINK_H_DISTANCE_A.get(sym[i], 1.09)
            link_sym.append("H")
            link_pos.append(pos[i] + bond / np.linalg.norm(bond) * r)
    mm = [j for j in range(len(atoms)) if j not in quantum]
    mmq = _neutral_outer_charges(q, mm, boundary, frag)
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
        [sym[i] for i in qidx] + link_sym, coords, qcharge, pos[mm].copy(), mmq, len(link_sym),
        fragments=np.concatenate([frag[qidx], np.asarray(link_frag, dtype=int)]),
        quantum_charges=np.concatenate([q[qidx], np.zeros(len(link_sym))]),
    )
