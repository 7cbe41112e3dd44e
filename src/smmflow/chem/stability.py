"""Stability and shape rules for ligand parents (shared by the enumerator and the grower)."""

from __future__ import annotations

from rdkit import Chem


def unstable_reason(mol: Chem.Mol) -> str | None:
    """Why ``mol`` is not a reasonably stable, isolable molecule (GDB-style rules), or ``None``.

    Rejected: a triple bond in a ring; cumulated double bonds on a neutral atom (allenes,
    ketenes); a non-aromatic double bond in a 3-membered ring (cyclopropenes, azirines); a
    double bond at a bridgehead of a bridged ring system (two rings sharing three or more atoms,
    one of at most 7 atoms: Bredt's rule); an aromatic ring in a bridged system; an aromatic atom in a 3- or 4-membered ring; O-O bonds; a neutral
    N=O (nitroso); a neutral heteroatom bonded to two heteroatoms (N-N-N, O-N-O chains); more
    than two non-aromatic heteroatom-heteroatom bonds; F on an sp3 carbon that also bears N or O
    unless CF3 (HF elimination); acyl fluorides; an sp3 carbon with three or more N/O neighbours
    (orthoesters and the like). Charge-separated groups (nitro, N-oxides) are not penalised.
    """
    ri = mol.GetRingInfo()
    n_hetero_hetero = 0
    for b in mol.GetBonds():
        bt = b.GetBondType()
        a1, a2 = b.GetBeginAtom(), b.GetEndAtom()
        if bt == Chem.BondType.TRIPLE and b.IsInRing():
            return "triple bond in ring"
        if (
            bt == Chem.BondType.DOUBLE
            and not b.GetIsAromatic()
            and ri.NumBondRings(b.GetIdx())
            and min(len(r) for r in ri.BondRings() if b.GetIdx() in r) <= 3
        ):
            return "double bond in small ring"
        s1, s2 = a1.GetSymbol(), a2.GetSymbol()
        if s1 != "C" and s2 != "C" and not b.GetIsAromatic():
            if s1 == "O" and s2 == "O":
                return "O-O bond"
            n_hetero_hetero += 1
            if bt == Chem.BondType.DOUBLE and "O" in (s1, s2) and not a1.GetFormalCharge() and not a2.GetFormalCharge():
                return "nitroso N=O"
    if n_hetero_hetero > 2:
        return "more than two non-aromatic heteroatom-heteroatom bonds"
    rings = [set(r) for r in ri.AtomRings()]
    for i, r1 in enumerate(rings):
        for r2 in rings[i + 1 :]:
            if len(r1 & r2) >= 3 and any(mol.GetAtomWithIdx(k).GetIsAromatic() for k in r1 | r2):
                return "bridged aromatic ring"
    for a in mol.GetAtoms():
        idx = a.GetIdx()
        sym = a.GetSymbol()
        nbrs = [n.GetSymbol() for n in a.GetNeighbors()]
        in_ring = ri.NumAtomRings(idx) > 0
        if a.GetIsAromatic():
            if in_ring and ri.MinAtomRingSize(idx) <= 4:
                return "aromatic atom in a 3- or 4-membered ring"
            continue
        charged = a.GetFormalCharge() != 0
        n_double = sum(1 for b in a.GetBonds() if b.GetBondType() == Chem.BondType.DOUBLE)
        if sym != "C" and not charged and sum(n != "C" for n in nbrs) >= 2:
            return "heteroatom chain (N-N-N, O-N-O)"
        if sym == "C":
            n_f, n_no = nbrs.count("F"), nbrs.count("N") + nbrs.count("O")
            sp3 = a.GetHybridization() == Chem.HybridizationType.SP3
            if sp3 and n_f and n_no and n_f < 3:
                return "F on an sp3 carbon bonded to N/O (HF elimination)"
            if n_f and any(
                b.GetBondType() == Chem.BondType.DOUBLE and b.GetOtherAtom(a).GetSymbol() == "O" for b in a.GetBonds()
            ):
                return "acyl fluoride"
            if sp3 and n_no >= 3:
                return "orthoester-like sp3 carbon"
        if n_double >= 2 and not charged:
            return "cumulated double bonds"
        if n_double and sum(1 for b in a.GetBonds() if b.IsInRing()) >= 3:
            rings = [set(r) for r in ri.AtomRings() if idx in r]
            for i, r1 in enumerate(rings):
                for r2 in rings[i + 1 :]:
                    if len(r1 & r2) >= 3 and min(len(r1), len(r2)) <= 7:
                        return "double bond at a bridgehead (Bredt)"
    return None


#: reason prefix of a ligand rejected by :func:`ring_strain_reason` (generation's ring-strain guard)
RING_STRAIN: str = "ring strain"
#: rings of at most this many atoms are "small" for :func:`ring_strain_reason`
SMALL_RING_MAX: int = 4


def ring_strain_reason(mol: Chem.Mol) -> str | None:
    """Why ``mol`` holds a strained small-ring cage, or ``None``. The ring-strain guard of generation.

    The rule, on RDKit's ring perception (symmetrised SSSR, ``mol.GetRingInfo().AtomRings()``): a ring
    is *small* when it has at most :data:`SMALL_RING_MAX` (= 4) atoms; ``mol`` is rejected when one
    atom belongs to two or more small rings. That covers every fused, spiro and bridged system made
    of 3- and 4-membered rings: bicyclo[1.1.0]butane (66 kcal/mol of strain), spiropentane (63),
    bicyclo[2.1.0]pentane (housane, 57), bicyclo[2.2.0]hexane (51), bicyclo[1.1.1]pentane (68),
    prismane, cubane, tetrahedrane: strain well beyond the sum of the isolated rings, and cages that
    open under the Lewis-acidic Dy(III). Kept: an isolated cyclopropane, cyclobutane, oxetane or
    azetidine (27 and 26 kcal/mol), and a small ring fused to a ring of five or more atoms
    (bicyclo[3.1.0]hexane, bicyclo[4.1.0]heptane: close to the sum of their rings), which occur in
    stable natural products. The reason names the ring sizes at the shared atom, e.g.
    ``"ring strain: atom 3 in fused/spiro/bridged rings of sizes 3+3"``.
    """
    rings = [r for r in mol.GetRingInfo().AtomRings() if len(r) <= SMALL_RING_MAX]
    if len(rings) < 2:
        return None
    for a in mol.GetAtoms():
        idx = a.GetIdx()
        sizes = sorted(len(r) for r in rings if idx in r)
        if len(sizes) >= 2:
            return f"{RING_STRAIN}: atom {idx} in fused/spiro/bridged rings of sizes {'+'.join(map(str, sizes))}"
    return None


def has_small_ring(mol: Chem.Mol) -> bool:
    """True when ``mol`` holds a ring of at most :data:`SMALL_RING_MAX` atoms (3- or 4-membered)."""
    return any(len(r) <= SMALL_RING_MAX for r in mol.GetRingInfo().AtomRings())


def shape_reason(mol: Chem.Mol, ring_sizes: tuple[int, ...], max_rings: int) -> str | None:
    """Generator-specific limits: at least one N or O, ring sizes, ring count."""
    if not any(a.GetSymbol() in ("N", "O") for a in mol.GetAtoms()):
        return "no N or O"
    ri = mol.GetRingInfo()
    if ri.NumRings() > max_rings:
        return "too many rings"
    if any(len(r) not in ring_sizes for r in ri.AtomRings()):
        return "ring size"
    return None
