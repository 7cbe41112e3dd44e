"""Seeded random growth of small C/N/O/F molecules (GDB/QM9-like source molecules, no download).

A molecule is grown on a plain graph of heavy atoms with bond orders 1-3 (hydrogens implicit):
start from one atom or from a small fragment (rings, aromatic rings, carbonyl groups, ...), then
repeatedly (a) attach a new atom through a bond of order 1-3 to an atom with free valence,
(b) close a ring of an allowed size between two atoms with free valence, or (c) raise the order
of a bond whose two atoms have free valence, until the drawn heavy-atom count is reached. The
graph is turned into an RDKit molecule, sanitised (aromaticity is perceived there) and kept when
it passes GDB-style stability rules (:func:`unstable_reason`). Duplicates (same canonical SMILES)
are dropped. The same settings and seed always give the same molecules in the same order.

Valences: C 4, N 3, O 2, F 1 (all neutral). Heavy-atom counts are drawn with weights growing
3x per atom, so most molecules have the maximum size, as in QM9/GDB where the count of distinct
molecules grows roughly that fast with size.
"""

from __future__ import annotations

import functools
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

from rdkit import Chem, rdBase

from smmflow.chem.stability import shape_reason, unstable_reason

log = logging.getLogger(__name__)


VALENCE: dict[str, int] = {"C": 4, "N": 3, "O": 2, "F": 1}

#: Start fragments (Kekulé SMILES, neutral, C/N/O/F). Rings that random growth rarely closes
#: (aromatics, saturated heterocycles) and common functional groups.
DEFAULT_FRAGMENTS: tuple[str, ...] = (
    "C1=CC=CC=C1", "C1=CC=NC=C1", "C1=CN=CC=N1", "C1=CN=CN=C1", "C1=CNC=C1", "C1=COC=C1",
    "C1=CN=CN1", "C1=CNN=C1", "C1=COC=N1", "C1=CON=C1", "N1=CN=CN1", "C1CC1", "C1CCC1",
    "C1CCCC1", "C1CCCCC1", "C1CO1", "C1CN1", "C1COC1", "C1CNC1", "C1CCOC1", "C1CCNC1",
    "C1CCNCC1", "C1COCCN1", "C1CCOCC1", "C1=NCCO1", "O=C1CCCN1", "O=C1CCCO1", "O=C1OCCO1",
    "C=O", "C(=O)O", "C(=O)N", "C#N", "C(=O)OC", "NC(=O)N", "C=NO", "C(=N)N", "OC(F)(F)F",
)


@dataclass(frozen=True)
class GeneratorSettings:
    """How many molecules to grow, how big, from what; ``seed`` fixes everything."""

    n_molecules: int = 1000
    min_heavy_atoms: int = 3
    max_heavy_atoms: int = 9
    elements: tuple[str, ...] = ("C", "N", "O", "F")
    #: relative weights of new atoms' elements (only those in ``elements`` are used)
    element_weights: tuple[tuple[str, float], ...] = (("C", 0.62), ("N", 0.17), ("O", 0.17), ("F", 0.04))
    ring_sizes: tuple[int, ...] = (3, 4, 5, 6)
    max_rings: int = 3
    fragment_probability: float = 0.35
    fragments: tuple[str, ...] = DEFAULT_FRAGMENTS
    #: give up after n_molecules * max_attempts_per_molecule growth attempts (chemical space
    #: of small sizes saturates); the shortfall is logged
    max_attempts_per_molecule: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [e for e in self.elements if e not in VALENCE]
        if bad:
            raise ValueError(f"generator elements must be among {sorted(VALENCE)}; got {bad}")
        if not any(e in ("N", "O") for e in self.elements):
            raise ValueError("generator elements need N or O (donor atoms)")
        if not 1 <= self.min_heavy_atoms <= self.max_heavy_atoms:
            raise ValueError("need 1 <= min_heavy_atoms <= max_heavy_atoms")
        if self.n_molecules < 0:
            raise ValueError("n_molecules must be >= 0")
        if any(r < 3 for r in self.ring_sizes):
            raise ValueError("ring sizes must be >= 3")
        if not 0.0 <= self.fragment_probability <= 1.0:
            raise ValueError("fragment_probability must be in [0, 1]")

    @classmethod
    def from_config(cls, cfg: dict, **overrides) -> "GeneratorSettings":
        """From the ``ligands.generator`` config block (plus explicit overrides)."""
        kw = {k: cfg[k] for k in ("n_molecules", "min_heavy_atoms", "max_heavy_atoms", "max_rings",
                                  "fragment_probability", "max_attempts_per_molecule", "seed")
              if k in cfg}
        if "ring_sizes" in cfg:
            kw["ring_sizes"] = tuple(int(r) for r in cfg["ring_sizes"])
        if "elements" in cfg:
            kw["elements"] = tuple(cfg["elements"])
        kw.update(overrides)
        return cls(**kw)


@dataclass
class _Graph:
    atoms: list[str] = field(default_factory=list)
    bonds: dict[tuple[int, int], int] = field(default_factory=dict)
    used: list[int] = field(default_factory=list)
    nbrs: list[list[int]] = field(default_factory=list)
    n_rings: int = 0

    def free(self, i: int) -> int:
        return VALENCE[self.atoms[i]] - self.used[i]

    def add_atom(self, element: str) -> int:
        self.atoms.append(element)
        self.used.append(0)
        self.nbrs.append([])
        return len(self.atoms) - 1

    def add_bond(self, i: int, j: int, order: int) -> None:
        key = (min(i, j), max(i, j))
        if key in self.bonds:
            self.bonds[key] += order
        else:
            self.bonds[key] = order
            self.nbrs[i].append(j)
            self.nbrs[j].append(i)
        self.used[i] += order
        self.used[j] += order

    def distance(self, i: int, j: int) -> int:
        """Shortest path length (bonds) between atoms i and j; large if disconnected."""
        seen = {i: 0}
        queue = deque([i])
        while queue:
            a = queue.popleft()
            if a == j:
                return seen[a]
            for b in self.nbrs[a]:
                if b not in seen:
                    seen[b] = seen[a] + 1
                    queue.append(b)
        return 10**6


def _fragment_graph(smiles: str) -> _Graph:
    """A fresh, mutable growth graph of a fragment (parsed once, then copied)."""
    t = _fragment_template(smiles)
    return _Graph(list(t.atoms), dict(t.bonds), list(t.used), [list(n) for n in t.nbrs], t.n_rings)


@functools.lru_cache(maxsize=256)
def _fragment_template(smiles: str) -> _Graph:
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"bad generator fragment {smiles!r}")
    Chem.Kekulize(mol, clearAromaticFlags=True)
    g = _Graph()
    for a in mol.GetAtoms():
        if a.GetSymbol() not in VALENCE or a.GetFormalCharge():
            raise ValueError(f"generator fragment {smiles!r}: only neutral C, N, O, F")
        g.add_atom(a.GetSymbol())
    for b in mol.GetBonds():
        g.add_bond(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), int(b.GetBondTypeAsDouble()))
    g.n_rings = mol.GetRingInfo().NumRings()
    return g


_ALLOWED_HETERO_PAIRS = {frozenset(p) for p in (("N", "N"), ("N", "O"))}


def _bond_allowed(a: str, b: str, order: int) -> bool:
    """GDB-like bond rules: F only singly to C; no O-O; hetero-hetero only N-N and N-O."""
    if "F" in (a, b):
        return order == 1 and {a, b} == {"C", "F"}
    if a != "C" and b != "C":
        return frozenset((a, b)) in _ALLOWED_HETERO_PAIRS
    return True


def _to_mol(g: _Graph) -> Chem.Mol | None:
    rw = Chem.RWMol()
    for el in g.atoms:
        rw.AddAtom(Chem.Atom(el))
    btype = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    for (i, j), order in g.bonds.items():
        rw.AddBond(i, j, btype[order])
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # noqa: BLE001 - any sanitisation failure means "discard"
        return None
    return mol


def grow_molecule(rng: random.Random, n_heavy: int, settings: GeneratorSettings) -> Chem.Mol | None:
    """Grow one molecule of ``n_heavy`` heavy atoms; ``None`` if this attempt fails."""
    elements = [e for e, _ in settings.element_weights if e in settings.elements]
    weights = [w for e, w in settings.element_weights if e in settings.elements]
    g: _Graph | None = None
    if settings.fragments and rng.random() < settings.fragment_probability:
        frag = settings.fragments[rng.randrange(len(settings.fragments))]
        g = _fragment_graph(frag)
        if len(g.atoms) > n_heavy or any(a not in settings.elements for a in g.atoms):
            g = None
    if g is None:
        g = _Graph()
        g.add_atom(rng.choices(elements, weights)[0])
    ring_sizes = settings.ring_sizes
    stall = 0
    while True:
        complete = len(g.atoms) >= n_heavy
        if complete and rng.random() >= 0.15:  # a few extra ring/unsaturation moves, then stop
            break
        if stall > 30:
            if complete:
                break
            return None
        open_atoms = [i for i in range(len(g.atoms)) if g.free(i) > 0]
        if not open_atoms:
            return None
        move = rng.random()
        if move < 0.14 and len(open_atoms) >= 2 and g.n_rings < settings.max_rings:
            i, j = rng.sample(open_atoms, 2)
            key = (min(i, j), max(i, j))
            size = g.distance(i, j) + 1
            if key in g.bonds or size not in ring_sizes or not _bond_allowed(g.atoms[i], g.atoms[j], 1):
                stall += 1
                continue
            g.add_bond(i, j, 1)
            g.n_rings += 1
        elif move < 0.24 and g.bonds:
            keys = [k for k in g.bonds if g.free(k[0]) > 0 and g.free(k[1]) > 0 and g.bonds[k] < 3]
            if not keys:
                stall += 1
                continue
            i, j = keys[rng.randrange(len(keys))]
            if not _bond_allowed(g.atoms[i], g.atoms[j], g.bonds[(i, j)] + 1):
                stall += 1
                continue
            g.add_bond(i, j, 1)
        else:
            if len(g.atoms) >= n_heavy:
                stall += 1
                continue
            i = open_atoms[rng.randrange(len(open_atoms))]
            el = rng.choices(elements, weights)[0]
            max_order = min(g.free(i), VALENCE[el], 3)
            order = rng.choices((1, 2, 3), (0.78, 0.17, 0.05))[0]
            if order > max_order or not _bond_allowed(g.atoms[i], el, order):
                stall += 1
                continue
            j = g.add_atom(el)
            g.add_bond(i, j, order)
    return _to_mol(g)


def generate_smiles(settings: GeneratorSettings) -> Iterator[str]:
    """Distinct canonical SMILES of grown molecules, in generation order (deterministic)."""
    rng = random.Random(settings.seed)
    sizes = list(range(settings.min_heavy_atoms, settings.max_heavy_atoms + 1))
    size_w = [3.0 ** (n - settings.max_heavy_atoms) for n in sizes]
    seen: set[str] = set()
    attempts = 0
    max_attempts = settings.n_molecules * settings.max_attempts_per_molecule
    while len(seen) < settings.n_molecules and attempts < max_attempts:
        attempts += 1
        n = rng.choices(sizes, size_w)[0]
        with rdBase.BlockLogs():  # RDKit's parse/sanitise noise of rejected graphs; restored before yield
            mol = grow_molecule(rng, n, settings)
            if (
                mol is None
                or shape_reason(mol, settings.ring_sizes, settings.max_rings)
                or unstable_reason(mol)
            ):
                continue
            smi = Chem.MolToSmiles(mol)
        if smi in seen:
            continue
        seen.add(smi)
        yield smi
    if len(seen) < settings.n_molecules:
        log.warning(
            "generator: %d of %d molecules after %d attempts (chemical space saturated?)",
            len(seen), settings.n_molecules, attempts,
        )


def generated_records(settings: GeneratorSettings):
    """The grown molecules as :class:`smmflow.chem.sources.SourceRecord` (source ``generator(seed=S)``)."""
    from smmflow.chem.sources import SourceRecord

    name = f"generator(seed={settings.seed})"
    for i, smi in enumerate(generate_smiles(settings), start=1):
        yield SourceRecord(name, i, smi)
