"""Donor sites of a ligand: perception, deprotonation, donor-rooted SMILES and the ligand id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rdkit import Chem, rdBase

#: Elements that are not metals (everything else, including metalloids B/Si/Ge/As/Sb/Te, is
#: reported as a metal-like atom by :func:`prepare_parent`).
NONMETALS: frozenset[str] = frozenset(
    {"H", "C", "N", "O", "F", "P", "S", "Cl", "Se", "Br", "I", "He", "Ne", "Ar", "Kr", "Xe", "Rn"}
)
METALLOIDS: frozenset[str] = frozenset({"B", "Si", "Ge", "As", "Sb", "Te", "At"})


# ----------------------------------------------------------------------------------------------
# donor sites
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DonorSite:
    """A donor atom of a neutral parent and how it binds."""

    atom_index: int
    element: str  # "O" or "N"
    kind: str  # e.g. "hydroxyl", "ether", "carbonyl", "amine", "imine", "nitrile", "pyridine"
    anionic: bool  # True: the site is an O-H/N-H whose deprotonated form is the donor


def _next_to_cation(atom: Chem.Atom) -> bool:
    return any(n.GetFormalCharge() > 0 for n in atom.GetNeighbors())


def is_amide_type_nitrogen(atom: Chem.Atom) -> bool:
    """N with only single bonds to a C or S that carries a double bond to O or S (amide-like)."""
    if atom.GetSymbol() != "N" or atom.GetIsAromatic():
        return False
    for bond in atom.GetBonds():
        if bond.GetBondType() != Chem.BondType.SINGLE:
            return False
    for nbr in atom.GetNeighbors():
        if nbr.GetSymbol() not in ("C", "S"):
            continue
        for b in nbr.GetBonds():
            other = b.GetOtherAtom(nbr)
            if (
                other.GetIdx() != atom.GetIdx()
                and b.GetBondType() == Chem.BondType.DOUBLE
                and other.GetSymbol() in ("O", "S")
            ):
                return True
    return False


def _bond_orders(atom: Chem.Atom) -> list[Chem.BondType]:
    return [b.GetBondType() for b in atom.GetBonds()]


def neutral_donor_kind(atom: Chem.Atom, *, amide_nitrogen_donor: bool = False) -> str | None:
    """The kind of neutral donor ``atom`` is (see the module docstring), or ``None``."""
    sym = atom.GetSymbol()
    if sym not in ("O", "N") or atom.GetFormalCharge() != 0 or atom.GetNumRadicalElectrons():
        return None
    if _next_to_cation(atom):
        return None
    orders = _bond_orders(atom)
    n_h = atom.GetTotalNumHs()
    if sym == "O":
        if atom.GetIsAromatic():
            return None  # furan-type
        if orders == [Chem.BondType.DOUBLE]:
            nbr = atom.GetNeighbors()[0].GetSymbol()
            if nbr == "C":
                return "carbonyl"
            return f"{nbr}=O" if nbr in ("N", "S", "P") else None  # not O=O
        if all(o == Chem.BondType.SINGLE for o in orders) and len(orders) + n_h == 2:
            if n_h >= 1:
                return "hydroxyl" if n_h == 1 else "water"
            return "ether"
        return None
    # nitrogen
    if atom.GetIsAromatic():
        if n_h == 0 and atom.GetDegree() == 2:
            return "pyridine"
        return None  # pyrrole-type: lone pair in the aromatic sextet
    if orders == [Chem.BondType.TRIPLE]:
        return "nitrile" if atom.GetNeighbors()[0].GetSymbol() == "C" else None  # not N#N
    n_double = sum(o == Chem.BondType.DOUBLE for o in orders)
    if n_double == 1 and all(o in (Chem.BondType.SINGLE, Chem.BondType.DOUBLE) for o in orders):
        partner = next(
            b.GetOtherAtom(atom).GetSymbol() for b in atom.GetBonds() if b.GetBondType() == Chem.BondType.DOUBLE
        )
        return "imine" if partner in ("C", "N") else None  # imines, oximes, hydrazones, azo
    if all(o == Chem.BondType.SINGLE for o in orders) and len(orders) + n_h == 3:
        if is_amide_type_nitrogen(atom):
            return "amide-N" if amide_nitrogen_donor else None
        return "amine"
    return None


def donor_sites(mol: Chem.Mol, *, amide_nitrogen_donor: bool = False) -> list[DonorSite]:
    """All neutral and anionic donor sites of a neutral parent, in atom order."""
    sites: list[DonorSite] = []
    for atom in mol.GetAtoms():
        kind = neutral_donor_kind(atom, amide_nitrogen_donor=amide_nitrogen_donor)
        if kind is not None:
            sites.append(DonorSite(atom.GetIdx(), atom.GetSymbol(), kind, False))
        if is_acidic_site(atom):
            sites.append(DonorSite(atom.GetIdx(), atom.GetSymbol(), anion_kind(atom), True))
    return sites


def is_acidic_site(atom: Chem.Atom) -> bool:
    """An O-H or N-H on a neutral atom (not next to a cation) that can be deprotonated to a donor."""
    return (
        atom.GetSymbol() in ("O", "N")
        and atom.GetFormalCharge() == 0
        and atom.GetTotalNumHs() >= 1
        and not atom.GetNumRadicalElectrons()
        and not _next_to_cation(atom)
    )


def _has_double_bond_to(atom: Chem.Atom, elements: tuple[str, ...], exclude: int) -> bool:
    return any(
        b.GetBondType() in (Chem.BondType.DOUBLE, Chem.BondType.AROMATIC)
        and b.GetOtherAtom(atom).GetIdx() != exclude
        and b.GetOtherAtom(atom).GetSymbol() in elements
        for b in atom.GetBonds()
    )


def anion_kind(atom: Chem.Atom) -> str:
    """Chemical name of the donor made by deprotonating O-H/N-H ``atom`` (for bookkeeping)."""
    nbrs = list(atom.GetNeighbors())
    if atom.GetSymbol() == "O":
        if not nbrs:
            return "hydroxide"
        nb = nbrs[0]
        if nb.GetSymbol() == "N":
            return "N-oxide anion (oximate, hydroxylamide)"
        if nb.GetIsAromatic():
            return "phenolate"
        if _has_double_bond_to(nb, ("O", "S"), atom.GetIdx()):
            return "carboxylate"
        if _has_double_bond_to(nb, ("C", "N"), atom.GetIdx()):
            return "enolate"
        return "alkoxide"
    if atom.GetIsAromatic():
        return "aromatic N anion"
    if any(b.GetBondType() == Chem.BondType.DOUBLE for b in atom.GetBonds()):
        return "imine anion"
    if is_amide_type_nitrogen(atom):
        return "amidate"
    return "amide anion"


def deprotonate(mol: Chem.Mol, atom_index: int) -> Chem.Mol:
    """The anion made by removing one H from atom ``atom_index`` (formal charge -1 there)."""
    rw = Chem.RWMol(mol)
    atom = rw.GetAtomWithIdx(atom_index)
    n_h = atom.GetTotalNumHs()
    if n_h < 1:
        raise ValueError(f"atom {atom_index} ({atom.GetSymbol()}) has no hydrogen to remove")
    atom.SetNoImplicit(True)
    atom.SetNumExplicitHs(n_h - 1)
    atom.SetFormalCharge(atom.GetFormalCharge() - 1)
    out = rw.GetMol()
    Chem.SanitizeMol(out)
    return out


def donor_rooted_smiles(mol: Chem.Mol, atom_index: int) -> str:
    """Canonical SMILES of ``mol`` written from the donor atom ``atom_index`` (rootedAtAtom)."""
    return Chem.MolToSmiles(mol, rootedAtAtom=int(atom_index), canonical=True)


def canonical_donor_smiles(smiles: str) -> str:
    """Canonical donor-first form of a donor-first SMILES (its first atom is the donor)."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        raise ValueError(f"invalid ligand SMILES {smiles!r}")
    return donor_rooted_smiles(mol, 0)


def ligand_id(smiles: str) -> str:
    """Stable ligand id: "L" + first 16 hex of sha256 of the canonical donor-rooted SMILES.

    ``smiles`` must be donor-first (its first atom is the donor); it is canonicalised first, so
    any donor-first spelling of the same ligand gives the same id.
    """
    canon = canonical_donor_smiles(smiles)
    return "L" + hashlib.sha256(canon.encode()).hexdigest()[:16]


def _id_of_canonical(canon: str) -> str:
    return "L" + hashlib.sha256(canon.encode()).hexdigest()[:16]


def donor_first_ligand(smiles: str) -> tuple[str, str]:
    """(canonical donor-first SMILES, ligand class) of a decoded string, or ``ValueError`` why not.

    Accepted: one fragment, >= 2 heavy atoms, first atom O or N with formal charge 0 or -1, no other
    charged atom, no radical, net charge = donor charge. The class is O, N, O- or N-.
    """
    from rdkit import Chem

    quiet = rdBase.BlockLogs()  # noqa: F841 - RDKit's parse messages, until this function returns
    if not smiles:
        raise ValueError("empty string")
    if "." in smiles:
        raise ValueError("more than one fragment")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError("RDKit cannot parse it")
    if mol.GetNumHeavyAtoms() < 2:
        raise ValueError("fewer than 2 heavy atoms")
    donor = mol.GetAtomWithIdx(0)
    if donor.GetSymbol() not in ("O", "N"):
        raise ValueError(f"first atom is {donor.GetSymbol()}, not an O/N donor")
    q = donor.GetFormalCharge()
    if q not in (0, -1):
        raise ValueError(f"donor formal charge {q:+d}")
    for a in mol.GetAtoms():
        if a.GetNumRadicalElectrons():
            raise ValueError("radical")
        if a.GetIdx() != 0 and a.GetFormalCharge() != 0:
            raise ValueError("charged atom other than the donor")
    canon = Chem.MolToSmiles(mol, rootedAtAtom=0, canonical=True)
    return canon, donor.GetSymbol() + ("-" if q == -1 else "")
