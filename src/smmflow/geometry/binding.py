"""Binding-mode check of a relaxed [Dy(H2O)5L2]: is it still the complex the labels assume?

A relaxation (xTB or DFT) may end in a geometry that is a different compound: a ligand bound side-on
(a ring atom or a second heteroatom next to Dy, Dy-D-X near 90 deg), a ligand or a water that has
left Dy, a ligand that has fallen apart. :func:`binding_problems` lists each such finding as one
line of text; an empty list means the binding mode is the intended one:

* every axial donor within ``[min_dy_donor_a, max_dy_donor_a]`` of Dy, every water O within
  ``max_dy_water_a``;
* donor-only contact: no other ligand atom closer to Dy than ``max_contact_heavy_a`` (non-H) or
  ``max_contact_h_a`` (H);
* no side-on binding: every Dy-D-X angle (X bonded to the donor D) above ``min_dy_donor_x_deg``;
* each ligand is still one covalently bonded fragment (1.2 x ASE natural cutoffs, as
  :func:`smmflow.geometry.contract.ligand_fragments`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smmflow.geometry.contract import donor_indices, equatorial_oxygen_indices


@dataclass(frozen=True)
class BindingCriteria:
    """Thresholds of :func:`binding_problems` (A, degrees).

    Reference points: Dy-O 2.1-2.5 A and Dy-N 2.4-2.7 A in pentagonal-bipyramidal Dy complexes; an
    end-on alkoxide has Dy-O-C ~ 150-180 deg, Dy...C ~ 3.4 A; a side-on N-donor found in an xTB
    geometry had Dy-N-C 99 deg and a ring O 2.74 A from Dy."""

    min_dy_donor_a: float = 1.8
    max_dy_donor_a: float = 3.0
    max_dy_water_a: float = 3.0
    max_contact_heavy_a: float = 3.0
    max_contact_h_a: float = 2.5
    min_dy_donor_x_deg: float = 100.0

    @classmethod
    def from_mapping(cls, cfg) -> BindingCriteria:
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown binding criteria {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**{k: float(v) for k, v in cfg.items()})


def _angle_deg(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Angle a-b-c in degrees."""
    u, v = a - b, c - b
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def _ligand_ranges(atoms) -> list[range]:
    d1, d2 = donor_indices(atoms)
    return [range(d1, d2), range(d2, len(atoms))]


def _bonded(atoms, indices: list[int]) -> dict[int, set[int]]:
    """Covalent neighbours among ``indices`` (1.2 x ASE natural cutoffs), keyed by index."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    sub = atoms[indices]
    i, j = neighbor_list("ij", sub, natural_cutoffs(sub, mult=1.2))
    out: dict[int, set[int]] = {k: set() for k in indices}
    for a, b in zip(i, j):
        out[indices[int(a)]].add(indices[int(b)])
    return out


def _n_fragments(bonds: dict[int, set[int]]) -> int:
    seen: set[int] = set()
    n = 0
    for start in bonds:
        if start in seen:
            continue
        n += 1
        stack = [start]
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack.extend(bonds[k] - seen)
    return n


def binding_problems(atoms, criteria: BindingCriteria | None = None) -> list[str]:
    """What is wrong with the binding mode of a [Dy(H2O)5L2] geometry (atom 0 = Dy, the geometry
    contract's order); ``[]`` when every criterion holds. Never raises for a strange geometry."""
    c = criteria or BindingCriteria()
    p = atoms.get_positions()
    sym = atoms.get_chemical_symbols()
    dist = np.linalg.norm(p - p[0], axis=1)
    out: list[str] = []
    for o in equatorial_oxygen_indices():
        if dist[o] > c.max_dy_water_a:
            out.append(f"water O{o} left Dy (Dy-O {dist[o]:.2f} A > {c.max_dy_water_a:.2f})")
    for k, rng in enumerate(_ligand_ranges(atoms), start=1):
        idx = list(rng)
        donor = idx[0]
        tag = f"ligand {k} ({sym[donor]}{donor})"
        if dist[donor] > c.max_dy_donor_a:
            out.append(f"{tag} left Dy (Dy-{sym[donor]} {dist[donor]:.2f} A > {c.max_dy_donor_a:.2f})")
        elif dist[donor] < c.min_dy_donor_a:
            out.append(f"{tag} too close to Dy (Dy-{sym[donor]} {dist[donor]:.2f} A < {c.min_dy_donor_a:.2f})")
        for a in idx[1:]:
            limit = c.max_contact_h_a if sym[a] == "H" else c.max_contact_heavy_a
            if dist[a] < limit:
                out.append(f"{tag} touches Dy through {sym[a]}{a} ({dist[a]:.2f} A < {limit:.2f}): not donor-only")
        bonds = _bonded(atoms, idx)
        for x in sorted(bonds[donor]):
            if sym[x] == "H":  # a donor H is judged by its distance (max_contact_h_a), not its angle
                continue
            ang = _angle_deg(p[0], p[donor], p[x])
            if ang < c.min_dy_donor_x_deg:
                out.append(f"{tag} side-on: Dy-{sym[donor]}-{sym[x]}{x} {ang:.0f} deg < {c.min_dy_donor_x_deg:.0f}")
        if len(idx) > 1 and _n_fragments(bonds) > 1:
            out.append(f"{tag} fell apart into {_n_fragments(bonds)} fragments")
    return out


def n_close_contacts(atoms, cutoff_a: float = 3.0) -> int:
    """Non-H atoms of the waters and ligands within ``cutoff_a`` of Dy (7 for the intended bipyramid)."""
    p = atoms.get_positions()
    dist = np.linalg.norm(p - p[0], axis=1)
    sym = atoms.get_chemical_symbols()
    return int(sum(1 for a in range(1, len(atoms)) if sym[a] != "H" and dist[a] < cutoff_a))
