"""Monodentate ligands L for [Dy(H2O)5L2]: donor sites, classes, donor-first SMILES, enumeration.

Every ligand is written as a SMILES string that starts at its donor atom (RDKit ``rootedAtAtom``),
canonical for that root, as in the published data of arXiv 2602.23230. Its identity is
:func:`ligand_id` = ``"L"`` + the first 16 hex digits of sha256 of that string.

Donor rules (atoms of the neutral parent; formal charge 0, no radical, not bonded to a cation)
----------------------------------------------------------------------------------------------
Neutral O donors (class ``O``):
  * hydroxyl O (alcohol, phenol, enol, oxime/hydroxylamine OH, carboxylic-acid OH),
  * ether O with two single bonds (ethers, epoxides, acetals, and the alkoxy O of esters and
    carbamates: a weak donor, kept because the published data use it),
  * doubly bonded O (carbonyl O of ketones, aldehydes, amides, esters, carbamates, ureas,
    acids; also N=O, S=O, P=O; not O2).
  Aromatic O (furan-type) is *not* a donor: its lone pair belongs to the aromatic sextet.
Neutral N donors (class ``N``):
  * nitrile N (triple bond to C), imine-type N with one double bond to C or N (imines, oximes,
    hydrazones, amidines' =N-, azo N), pyridine-type aromatic N (two ring neighbours, no H),
  * sp3 amine N (primary, secondary, tertiary; also anilines, enamines, hydrazines,
    hydroxylamines),
  * amide-type N (N single-bonded to a C or S that carries a double bond to O or S: amides,
    lactams, ureas, carbamates, imides, thioamides, sulfonamides) only when
    ``amide_nitrogen_donor=True``. Default off: its lone pair is delocalised into C=O and amides
    bind metals through O. (The published data do include ~130 neutral amide-N ligands.)
  Pyrrole-type aromatic N ([nH] or N-substituted) is *not* a neutral donor.
Anionic donors (classes ``O-`` and ``N-``, ligand charge -1): every O-H or N-H of the parent is
deprotonated in turn (alkoxide, phenolate, enolate, carboxylate, oximate; amide anion of amines,
amidate, azolide or pyridonate, imine anion of =N-H). The donor of an anion is the deprotonated atom only.
Atoms with a nonzero formal charge (ammonium, nitro, N-oxides) are never donors.

Input molecules (parents)
-------------------------
A parent is rejected, with a reason, when its SMILES does not parse or sanitise, when it holds a
metal, a dummy atom, a radical, an isotope label, or an element outside the allowed set, when it
fails the stability rules of :func:`smmflow.chem.stability.unstable_reason` (O-O bonds,
nitroso, anti-Bredt alkenes, acyl fluorides, ...; ``stability_rules=False`` turns them off), has
several fragments (unless ``fragments="largest"``: keep the largest, ties broken by canonical
SMILES), a net charge (unless ``charged_inputs="neutralise"``: RDKit's uncharger protonates it
first; net-neutral zwitterions are always given their neutral form, while charge-separated groups
such as nitro or N-oxides stay and their charged atoms and neighbours are not donors), a heavy-atom count or ring size outside the allowed range, no donor site, no ligand of
the allowed classes/charges, or when it duplicates an earlier parent. Blank lines and ``#``
comments of SMILES files are not inputs and are skipped.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Iterable

import pandas as pd
from rdkit import Chem, rdBase
from rdkit.Chem.MolStandardize import rdMolStandardize

from smmflow.chem.donors import (
    METALLOIDS,
    NONMETALS,
    _id_of_canonical,
    canonical_donor_smiles,
    deprotonate,
    donor_rooted_smiles,
    donor_sites,
)
from smmflow.chem.sources import SourceRecord
from smmflow.chem.stability import unstable_reason
from smmflow.constants import complex_charge
from smmflow.tables import LIGAND_CLASSES, LIGANDS_COLUMNS, REJECTED_COLUMNS

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# ligands of one parent
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ligand:
    smiles: str  # donor-first canonical
    ligand_class: str  # one of LIGAND_CLASSES
    donor_element: str
    ligand_charge: int
    n_heavy: int
    donor_kind: str

    @property
    def ligand_id(self) -> str:
        return _id_of_canonical(self.smiles)


def ligands_from_parent(
    mol: Chem.Mol, *, amide_nitrogen_donor: bool = False, anions: bool = True
) -> list[Ligand]:
    """Every distinct monodentate ligand of a neutral, sanitised parent (symmetric sites merged)."""
    out: dict[str, Ligand] = {}
    n_heavy = mol.GetNumHeavyAtoms()
    for site in donor_sites(mol, amide_nitrogen_donor=amide_nitrogen_donor):
        if site.anionic:
            if not anions:
                continue
            try:
                anion = deprotonate(mol, site.atom_index)
            except Exception as err:  # noqa: BLE001 - RDKit raises several types
                log.debug("cannot deprotonate atom %d: %s", site.atom_index, err)
                continue
            smi = donor_rooted_smiles(anion, site.atom_index)
            lig = Ligand(smi, site.element + "-", site.element, -1, n_heavy, site.kind)
        else:
            smi = donor_rooted_smiles(mol, site.atom_index)
            lig = Ligand(smi, site.element, site.element, 0, n_heavy, site.kind)
        out.setdefault(smi, lig)
    return list(out.values())


# ----------------------------------------------------------------------------------------------
# parents: parsing and filters
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LigandFilters:
    """What the enumerator accepts. Defaults: QM9-like C, N, O, F molecules up to 9 heavy atoms."""

    elements: frozenset[str] = frozenset({"C", "N", "O", "F"})
    min_heavy_atoms: int = 2
    max_heavy_atoms: int = 9
    ring_sizes: frozenset[int] = frozenset({3, 4, 5, 6, 7})
    ligand_classes: frozenset[str] = frozenset(LIGAND_CLASSES)
    ligand_charges: frozenset[int] = frozenset({0, -1})
    amide_nitrogen_donor: bool = False
    charged_inputs: str = "reject"  # or "neutralise"
    fragments: str = "reject"  # or "largest"
    stability_rules: bool = True  # reject unstable parents (molecule_generator.unstable_reason)

    def __post_init__(self) -> None:
        bad = set(self.ligand_classes) - set(LIGAND_CLASSES)
        if bad:
            raise ValueError(f"unknown ligand classes {sorted(bad)}; known: {list(LIGAND_CLASSES)}")
        if set(self.ligand_charges) - {0, -1}:
            raise ValueError("ligand_charges must be a subset of {0, -1}")
        if self.charged_inputs not in ("reject", "neutralise"):
            raise ValueError("charged_inputs must be 'reject' or 'neutralise'")
        if self.fragments not in ("reject", "largest"):
            raise ValueError("fragments must be 'reject' or 'largest'")
        if not 1 <= self.min_heavy_atoms <= self.max_heavy_atoms:
            raise ValueError("need 1 <= min_heavy_atoms <= max_heavy_atoms")

    @classmethod
    def from_config(cls, cfg: dict) -> "LigandFilters":
        """Build from the ``ligands`` config block (keys as in config/config.yaml)."""
        return cls(
            elements=frozenset(cfg.get("elements", cls.elements)),
            min_heavy_atoms=int(cfg.get("min_heavy_atoms", cls.min_heavy_atoms)),
            max_heavy_atoms=int(cfg.get("max_heavy_atoms", cls.max_heavy_atoms)),
            ring_sizes=frozenset(int(r) for r in cfg.get("ring_sizes", cls.ring_sizes)),
            ligand_classes=frozenset(cfg.get("ligand_classes", cls.ligand_classes)),
            ligand_charges=frozenset(int(q) for q in cfg.get("ligand_charges", cls.ligand_charges)),
            amide_nitrogen_donor=bool(cfg.get("amide_nitrogen_donor", cls.amide_nitrogen_donor)),
            charged_inputs=str(cfg.get("charged_inputs", cls.charged_inputs)),
            fragments=str(cfg.get("fragments", cls.fragments)),
            stability_rules=bool(cfg.get("stability_rules", cls.stability_rules)),
        )


class ParentRejected(ValueError):
    """A source molecule that cannot be a ligand parent; the message is the reason."""


def _parse(smiles: str) -> Chem.Mol:
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        raise ParentRejected("invalid SMILES (does not parse)")
    if mol.GetNumAtoms() == 0:
        raise ParentRejected("empty molecule")
    try:
        Chem.SanitizeMol(mol)
    except Exception as err:  # noqa: BLE001 - RDKit raises several types
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ParentRejected(f"cannot sanitise: {msg}") from None
    return mol


#: characters a SMILES may hold (printable ASCII without space); anything else is rejected
SMILES_CHARACTER = re.compile(r"[!-~]")
#: longest accepted input SMILES and most '.'-separated fragments (a single hostile line must not
#: cost more than a fraction of a second; RDKit's fragment split grows faster than linearly)
MAX_SMILES_LENGTH = 1000
MAX_FRAGMENTS = 32


def zwitterion_reason(mol: Chem.Mol) -> str | None:
    """Why a net-neutral molecule with formal charges is refused, or None.

    A charged atom bonded to an atom of opposite charge is one charge-separated group (nitro,
    N-oxide, azide, ylide) and the molecule stays a neutral parent. Charges on atoms that are not
    bonded to each other (a betaine such as ``C[N+](C)(C)CC([O-])=O``, an inner salt) make a
    zwitterion: its anionic end would be classed as a neutral donor although it binds Dy as an anion,
    so it is rejected.
    """
    for atom in mol.GetAtoms():
        q = atom.GetFormalCharge()
        if q and not any(nb.GetFormalCharge() * q < 0 for nb in atom.GetNeighbors()):
            return "zwitterion: formal charges on atoms not bonded to each other (e.g. a betaine)"
    return None


def prepare_parent(smiles: str, filters: LigandFilters) -> Chem.Mol:
    """Parse and check one source SMILES; return the neutral, H-suppressed parent.

    Raises :class:`ParentRejected` with the reason when the molecule is not acceptable.
    """
    smiles = smiles.strip()
    if not smiles:
        raise ParentRejected("empty SMILES")
    bad_chars = sorted({c for c in smiles if not SMILES_CHARACTER.fullmatch(c)})
    if bad_chars:  # RDKit would drop some of them silently and read another molecule
        raise ParentRejected("invalid characters: " + " ".join(f"U+{ord(c):04X}" for c in bad_chars))
    if len(smiles) > MAX_SMILES_LENGTH:
        raise ParentRejected(f"SMILES too long ({len(smiles)} > {MAX_SMILES_LENGTH} characters)")
    if smiles.count(".") + 1 > MAX_FRAGMENTS:
        raise ParentRejected(f"disconnected: {smiles.count('.') + 1} fragments (> {MAX_FRAGMENTS})")
    mol = _parse(smiles)
    if any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        raise ParentRejected("dummy/wildcard atom")
    frags = Chem.GetMolFrags(mol, asMols=True, sanitizeFrags=False)
    if len(frags) > 1 and filters.fragments == "largest":
        # the largest fragment before the atom checks: a salt's metal counter-ion does not reject it
        mol = max(frags, key=lambda m: (m.GetNumHeavyAtoms(), Chem.MolToSmiles(m)))
    symbols = {a.GetSymbol() for a in mol.GetAtoms()}
    metals = sorted(s for s in symbols if s not in NONMETALS and s not in METALLOIDS)
    if metals:
        raise ParentRejected(f"contains metal: {', '.join(metals)}")
    if any(a.GetIsotope() for a in mol.GetAtoms()):
        raise ParentRejected("isotope-labelled atom")
    if any(a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        raise ParentRejected("radical (unpaired electrons)")
    if len(frags) > 1 and filters.fragments == "reject":
        raise ParentRejected(f"disconnected: {len(frags)} fragments")
    bad = sorted(s for s in symbols - {"H"} if s not in filters.elements)
    if bad:
        raise ParentRejected(f"element not allowed: {', '.join(bad)}")
    charge = Chem.GetFormalCharge(mol)
    if charge != 0:
        if filters.charged_inputs == "reject":
            raise ParentRejected(f"net charge {charge:+d} (give the neutral parent)")
        mol = rdMolStandardize.Uncharger().uncharge(mol)
        charge = Chem.GetFormalCharge(mol)
        if charge != 0:
            raise ParentRejected(f"net charge {charge:+d} cannot be neutralised")
    elif any(a.GetFormalCharge() for a in mol.GetAtoms()):
        # zwitterion -> neutral form where protons can move; charge-separated groups stay
        mol = rdMolStandardize.Uncharger().uncharge(mol)
    separated = zwitterion_reason(mol)
    if separated:
        raise ParentRejected(separated)
    mol = Chem.RemoveHs(mol)
    n_heavy = mol.GetNumHeavyAtoms()
    if n_heavy < filters.min_heavy_atoms:
        raise ParentRejected(f"{n_heavy} heavy atoms < min_heavy_atoms={filters.min_heavy_atoms}")
    if n_heavy > filters.max_heavy_atoms:
        raise ParentRejected(f"{n_heavy} heavy atoms > max_heavy_atoms={filters.max_heavy_atoms}")
    bad_rings = sorted(
        {len(r) for r in mol.GetRingInfo().AtomRings()} - set(filters.ring_sizes)
    )
    if bad_rings:
        raise ParentRejected(f"ring size not allowed: {', '.join(map(str, bad_rings))}")
    if filters.stability_rules:
        why = unstable_reason(mol)
        if why:
            raise ParentRejected(f"unstable: {why}")
    return mol


#: reason prefix of a ligand outside the enumerated space (generation metrics count these)
OUTSIDE_LIGAND_SPACE = "outside the ligand space"


def neutral_parent_smiles(ligand_smiles: str) -> str:
    """SMILES of the neutral parent of a donor-first ligand (the anionic donor protonated)."""
    mol = Chem.MolFromSmiles(ligand_smiles)
    if mol is None:
        raise ParentRejected("invalid SMILES (does not parse)")
    donor = mol.GetAtomWithIdx(0)
    if donor.GetFormalCharge() == -1:
        rw = Chem.RWMol(mol)
        a = rw.GetAtomWithIdx(0)
        a.SetFormalCharge(0)
        a.SetNumExplicitHs(a.GetTotalNumHs() + 1)
        a.SetNoImplicit(True)
        mol = rw.GetMol()
        Chem.SanitizeMol(mol)
    return Chem.MolToSmiles(mol)


def ligand_space_reason(ligand_smiles: str, filters: LigandFilters) -> str | None:
    """Why a donor-first ligand lies outside the enumerated ligand space, or ``None``.

    A ligand is inside when the enumerator, given its neutral parent, would accept the parent
    (elements, size, rings, stability rules) and emit this very ligand (its first atom is one of
    the parent's donor sites, of the right class). Generated ligands are held to this rule so the
    generator proposes molecules of the same chemistry as the training pool.
    """
    try:
        parent = prepare_parent(neutral_parent_smiles(ligand_smiles), filters)
    except ParentRejected as err:
        return f"{OUTSIDE_LIGAND_SPACE}: {err}"
    canon = canonical_donor_smiles(ligand_smiles)
    emitted = {lig.smiles: lig for lig in ligands_from_parent(parent, amide_nitrogen_donor=filters.amide_nitrogen_donor)}
    lig = emitted.get(canon)
    if lig is None:
        return f"{OUTSIDE_LIGAND_SPACE}: the first atom is not a donor site of the enumerator"
    if lig.ligand_class not in filters.ligand_classes or lig.ligand_charge not in filters.ligand_charges:
        return f"{OUTSIDE_LIGAND_SPACE}: class {lig.ligand_class} not enumerated"
    return None


@dataclass
class EnumerationResult:
    ligands: pd.DataFrame  # LIGANDS_COLUMNS
    rejected: pd.DataFrame  # REJECTED_COLUMNS
    stats: dict[str, int] = field(default_factory=dict)


def enumerate_ligands(
    records: Iterable[SourceRecord], filters: LigandFilters | None = None
) -> EnumerationResult:
    """Every allowed ligand of every accepted parent, deduplicated by donor-rooted SMILES.

    Inputs are processed in the given order; a ligand reached from several parents keeps the
    first parent's ``parent_smiles``/``source``. Never raises on bad molecules: each rejected
    record becomes a row of ``rejected`` with its reason.
    """
    filters = filters or LigandFilters()
    quiet = rdBase.BlockLogs()  # RDKit's messages on bad inputs (they become reject reasons); restored below
    try:
        rows: dict[str, tuple] = {}
        rejected: list[tuple] = []
        seen_parents: dict[str, str] = {}
        n_in = n_parents = 0
        for rec in records:
            n_in += 1
            where = f"{rec.source}:{rec.line}"
            try:
                mol = prepare_parent(rec.smiles, filters)
            except ParentRejected as err:
                rejected.append((rec.source, rec.line, rec.smiles, str(err)))
                continue
            except Exception as err:  # noqa: BLE001 - an RDKit surprise must not stop a batch
                rejected.append((rec.source, rec.line, rec.smiles, f"error: {err!r}"[:300]))
                continue
            parent = Chem.MolToSmiles(mol)
            if parent in seen_parents:
                rejected.append(
                    (rec.source, rec.line, rec.smiles, f"duplicate parent (first at {seen_parents[parent]})")
                )
                continue
            seen_parents[parent] = where
            try:
                ligs = ligands_from_parent(mol, amide_nitrogen_donor=filters.amide_nitrogen_donor)
            except Exception as err:  # noqa: BLE001
                rejected.append((rec.source, rec.line, rec.smiles, f"error: {err!r}"[:300]))
                continue
            if not ligs:
                rejected.append((rec.source, rec.line, rec.smiles, "no donor site"))
                continue
            kept = [
                lg
                for lg in ligs
                if lg.ligand_class in filters.ligand_classes
                and lg.ligand_charge in filters.ligand_charges
            ]
            if not kept:
                rejected.append(
                    (rec.source, rec.line, rec.smiles, "no ligand of the allowed classes/charges")
                )
                continue
            n_parents += 1
            for lg in kept:
                if lg.smiles in rows:
                    continue
                rows[lg.smiles] = (
                    lg.ligand_id,
                    lg.smiles,
                    lg.ligand_class,
                    lg.donor_element,
                    lg.ligand_charge,
                    complex_charge(lg.ligand_charge),
                    lg.n_heavy,
                    parent,
                    where,
                    lg.donor_kind,
                )
    finally:
        del quiet
    ligands = pd.DataFrame(list(rows.values()), columns=list(LIGANDS_COLUMNS))
    ligands = ligands.astype(
        {"ligand_charge": "int64", "complex_charge": "int64", "n_heavy": "int64"}
    )
    rej = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS)).astype({"line": "int64"})
    stats = {
        "inputs": n_in,
        "parents_used": n_parents,
        "rejected": len(rej),
        "ligands": len(ligands),
        **{f"class_{c}": int((ligands["ligand_class"] == c).sum()) for c in LIGAND_CLASSES},
    }
    return EnumerationResult(ligands, rej, stats)


def subsample_ligands(ligands: pd.DataFrame, max_ligands: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_ligands`` rows, stratified by ligand class, chosen deterministically by seed.

    Each class keeps a share proportional to its size (largest remainders get the leftover
    slots). Within a class the rows with the smallest sha256(seed, ligand_id) are kept, so the
    choice depends on the set of ligands and the seed, not on row order. Output keeps input order.
    """
    if max_ligands is not None and max_ligands < 0:
        raise ValueError("max_ligands must be >= 0")
    if max_ligands is None or len(ligands) <= max_ligands:
        return ligands
    counts = ligands["ligand_class"].value_counts()
    classes = sorted(counts.index, key=lambda c: (LIGAND_CLASSES.index(c) if c in LIGAND_CLASSES else 99, c))
    total = int(counts.sum())
    exact = {c: max_ligands * counts[c] / total for c in classes}
    quota = {c: int(exact[c]) for c in classes}
    for c in sorted(classes, key=lambda c: (-(exact[c] - quota[c]), classes.index(c))):
        if sum(quota.values()) >= max_ligands:
            break
        quota[c] += 1
    key = ligands["ligand_id"].map(
        lambda lid: hashlib.sha256(f"{seed}:{lid}".encode()).hexdigest()
    )
    keep_idx: list = []
    for c in classes:
        sub = key[ligands["ligand_class"] == c].sort_values(kind="stable")
        keep_idx.extend(sub.index[: quota[c]])
    return ligands.loc[sorted(keep_idx, key=ligands.index.get_loc)]
