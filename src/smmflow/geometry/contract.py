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
    return atoms
