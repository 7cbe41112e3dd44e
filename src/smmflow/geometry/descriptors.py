"""Structural descriptors of a [Dy(H2O)5L2] geometry (distances, angles, D5h deviation)."""

from __future__ import annotations

import math

import numpy as np

from smmflow.geometry.contract import donor_indices, equatorial_oxygen_indices


def dy_donor_distances(atoms) -> tuple[float, float]:
    """Dy-donor distances (A) of the two axial ligands."""
    p = atoms.get_positions()
    d1, d2 = donor_indices(atoms)
    return float(np.linalg.norm(p[d1] - p[0])), float(np.linalg.norm(p[d2] - p[0]))


def l_dy_l_angle(atoms) -> float:
    """Donor-Dy-donor angle (degrees); 180 for an ideal bipyramid."""
    p = atoms.get_positions()
    d1, d2 = donor_indices(atoms)
    a, b = p[d1] - p[0], p[d2] - p[0]
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def d5h_deviation(atoms) -> float:
    """RMS distance (A) of the 7 donor atoms from the best-aligned ideal D5h bipyramid.

    The ideal shape has Dy at the centre, the five equatorial donors on a regular pentagon of the
    mean equatorial radius and the two axial donors on the perpendicular axis at the mean axial
    radius; it is rotated onto the actual donors (Kabsch, Dy fixed; the equatorial waters in index
    order, ligand 1 on +z). A pure change of bond lengths between the two axial ligands, or a bent
    L-Dy-L axis, both count as deviation.
    """
    p = atoms.get_positions() - atoms.get_positions()[0]
    eq = equatorial_oxygen_indices()
    d1, d2 = donor_indices(atoms)
    actual = np.vstack([p[eq], p[[d1, d2]]])
    r_eq = float(np.mean(np.linalg.norm(p[eq], axis=1)))
    r_ax = float(np.mean(np.linalg.norm(p[[d1, d2]], axis=1)))
    # orientation of the pentagon: order of waters by angle; the builder puts them counterclockwise
    ideal = [
        [r_eq * math.cos(2 * math.pi * k / 5), r_eq * math.sin(2 * math.pi * k / 5), 0.0] for k in range(5)
    ]
    ideal += [[0.0, 0.0, r_ax], [0.0, 0.0, -r_ax]]
    ideal = np.array(ideal)
    h = ideal.T @ actual
    u, _, vt = np.linalg.svd(h)
    dsign = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rot = vt.T @ np.diag([1.0, 1.0, dsign]) @ u.T
    fitted = ideal @ rot.T
    return float(np.sqrt(np.mean(np.sum((fitted - actual) ** 2, axis=1))))


def structural_descriptors(atoms) -> dict[str, float]:
    """The complex columns that depend on geometry only (see :data:`tables.XTB_COMPLEX_COLUMNS`)."""
    r1, r2 = dy_donor_distances(atoms)
    return {
        "dist_dy_donor1_a": r1,
        "dist_dy_donor2_a": r2,
        "angle_l_dy_l_deg": l_dy_l_angle(atoms),
        "d5h_deviation_a": d5h_deviation(atoms),
    }


def closest_non_donor_contacts(atoms) -> list[tuple[int, float]]:
    """Per ligand, (index, Dy distance) of its heavy atom other than the donor nearest to Dy.

    A value below the Dy-donor distance means the ligand now binds through another atom."""
    p = atoms.get_positions()
    sym = atoms.get_chemical_symbols()
    d1, d2 = donor_indices(atoms)
    out = []
    for start, stop in ((d1, d2), (d2, len(atoms))):
        cand = [(i, float(np.linalg.norm(p[i] - p[0]))) for i in range(start + 1, stop) if sym[i] != "H"]
        out.append(min(cand, key=lambda t: t[1]) if cand else (-1, math.inf))
    return out


def min_interatomic_distance(atoms) -> float:
    p = atoms.get_positions()
    d = np.linalg.norm(p[:, None] - p[None, :], axis=-1)
    d[np.diag_indices_from(d)] = np.inf
    return float(d.min())


def dy_coordination_number(atoms, cutoff: float = 3.0) -> int:
    """Number of O/N atoms within ``cutoff`` A of Dy."""
    p = atoms.get_positions()
    sym = atoms.get_chemical_symbols()
    r = np.linalg.norm(p - p[0], axis=1)
    return int(sum(1 for i in range(1, len(atoms)) if sym[i] in ("O", "N") and r[i] < cutoff))
