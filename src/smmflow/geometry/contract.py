"""The one geometry contract of [Dy(H2O)5L2]: atom order, donor atoms, extxyz text."""

from __future__ import annotations

import io

import numpy as np

from smmflow import constants as C

N_FRAME_ATOMS: int = 1 + 3 * C.N_EQUATORIAL_WATERS  # Dy + 5 waters


# --------------------------------------------------------------------------------------------
# descriptors
# --------------------------------------------------------------------------------------------
def donor_indices(atoms) -> tuple[int, int]:
    """The two axial donor indices of a complex following the geometry contract.

    In order: ``atoms.info['donor_indices']`` (the builder sets it); else the first atom of each
    ligand from ``atoms.info['n_ligand_atoms']``; else, for a geometry from elsewhere (a plain or
    extended XYZ file without these keys), the two non-hydrogen atoms after the Dy(H2O)5 frame
    nearest to Dy, in index order (ligand 1 first). ``ValueError`` if there are not two such atoms."""
    if "donor_indices" in atoms.info:
        d = [int(i) for i in np.atleast_1d(atoms.info["donor_indices"])]
        return d[0], d[1]
    if "n_ligand_atoms" in atoms.info:
        n = int(atoms.info["n_ligand_atoms"])
        return N_FRAME_ATOMS, N_FRAME_ATOMS + n
    d = np.linalg.norm(atoms.positions - atoms.positions[0], axis=1)
    cand = [int(i) for i in np.argsort(d) if i >= N_FRAME_ATOMS and atoms[int(i)].symbol != "H"]
    if len(cand) < 2:
        raise ValueError("cannot identify two axial donor atoms")
    first, second = sorted(cand[:2])
    return first, second


def ligand_fragments(atoms) -> list[list[int]]:
    """Covalently bonded fragments of the atoms after the Dy(H2O)5 frame (1.2 x ASE natural cutoffs), each
    as a sorted index list: the axial ligands, found from the geometry alone."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    lig = atoms[N_FRAME_ATOMS:]
    if len(lig) == 0:
        return []
    i, j = neighbor_list("ij", lig, natural_cutoffs(lig, mult=1.2))  # 1.2: the usual bond tolerance
    parent = list(range(len(lig)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(i, j):
        parent[root(int(a))] = root(int(b))
    groups: dict[int, list[int]] = {}
    for a in range(len(lig)):
        groups.setdefault(root(a), []).append(a + N_FRAME_ATOMS)
    return sorted(groups.values())


def closed_shell_complex_charge(atoms) -> int:
    """The total charge a closed-shell [Dy(H2O)5L2] of this geometry has: 3 + sum of q(L), where a
    ligand fragment with an odd electron count as a neutral molecule is a monoanion (q = -1: O-, N-
    donors) and one with an even count is neutral. Waters are neutral by the contract."""
    q = C.DY_ION_CHARGE
    for frag in ligand_fragments(atoms):
        q -= int(sum(int(atoms.numbers[k]) for k in frag)) % 2
    return q


def equatorial_oxygen_indices() -> list[int]:
    return [1 + 3 * k for k in range(C.N_EQUATORIAL_WATERS)]


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


def from_extxyz(text: str, index: int = -1):
    """Inverse of :func:`to_extxyz`; restores ``donor_indices`` as a list of ints and ``charge``,
    ``n_ligand_atoms`` as ints. ``index``: the frame of a multi-frame file (default the last)."""
    from ase.io import read

    atoms = read(io.StringIO(text), format="extxyz", index=index)
    if "donor_indices" in atoms.info:
        atoms.info["donor_indices"] = [int(i) for i in np.atleast_1d(atoms.info["donor_indices"])]
    for key in ("charge", "n_ligand_atoms"):
        if key in atoms.info:
            atoms.info[key] = int(atoms.info[key])
    for key in ("ligand_id", "smiles"):
        atoms.info[key] = str(atoms.info.get(key, ""))
    if "initial_charges" not in atoms.arrays and "charges" in atoms.arrays:  # other writers' column name
        atoms.arrays["initial_charges"] = atoms.arrays["charges"]
    return atoms


# --------------------------------------------------------------------------------------------
# provenance of a label geometry
# --------------------------------------------------------------------------------------------
#: info keys of a label geometry file: the method that made it and, for a failed relaxation, why
GEOMETRY_METHOD_KEY: str = "geometry_method"
GEOMETRY_STATUS_KEY: str = "geometry_status"
GEOMETRY_REASON_KEY: str = "geometry_reason"


def _info_safe(text: str) -> str:
    """A string ASE's extxyz comment line keeps intact (no quotes, no '=', one line)."""
    return " ".join(str(text).replace('"', "'").replace("=", ":").split())


def mark_geometry(atoms, method: str, reason: str = "") -> None:
    """Record in ``atoms.info`` which method made this geometry and, when ``reason`` is given, that the
    relaxation failed (the CASSCF stage then writes a failed label with that reason)."""
    atoms.info[GEOMETRY_METHOD_KEY] = _info_safe(method)
    if reason:
        atoms.info[GEOMETRY_STATUS_KEY] = "failed"
        atoms.info[GEOMETRY_REASON_KEY] = _info_safe(reason)
    else:
        atoms.info.pop(GEOMETRY_STATUS_KEY, None)
        atoms.info.pop(GEOMETRY_REASON_KEY, None)


def geometry_failure(text: str) -> str:
    """The reason a label geometry file records for a failed relaxation ("" when it has none)."""
    if not isinstance(text, str) or GEOMETRY_STATUS_KEY not in text:
        return ""
    info = from_extxyz(text, index=0).info
    if str(info.get(GEOMETRY_STATUS_KEY, "")) != "failed":
        return ""
    method = str(info.get(GEOMETRY_METHOD_KEY, "")) or "geometry"
    return f"{method} relaxation failed: {info.get(GEOMETRY_REASON_KEY, '') or 'no reason recorded'}"
