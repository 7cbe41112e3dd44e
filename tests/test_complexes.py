"""Complex builder: geometry contract, coordination, charge, clashes, extxyz round trip, descriptors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smmflow.chem import conformers
from smmflow.cli import build
from smmflow.constants import complex_charge
from smmflow.geometry import builder, contract, descriptors

# hand-written donor-first ligands: neutral O/N, anionic O-/N-, and a 9-heavy-atom published one
LIGANDS = [
    ("[O-]C", -1),
    ("OC", 0),
    ("O=CN", 0),
    ("n1ccccc1", 0),
    ("N#CC", 0),
    ("NC", 0),
    ("[N-]1C=CC=C1", -1),
    ("[O-]c1ccccc1", -1),
    ("O=CNC12CN(C2C1)C", 0),
    ("[O-]CCC1C(N1C)C=O", -1),
]


@pytest.mark.parametrize("smiles,q", LIGANDS)
def test_built_complex_contract(smiles, q):
    atoms = builder.build_complex(smiles, ligand_id="Ltest", seed=1)
    n_lig = atoms.info["n_ligand_atoms"]
    sym = atoms.get_chemical_symbols()
    assert len(atoms) == 16 + 2 * n_lig
    assert sym[0] == "Dy" and np.allclose(atoms.positions[0], 0.0)
    assert sym[1:16] == ["O", "H", "H"] * 5
    assert np.allclose(atoms.positions[[1, 4, 7, 10, 13], 2], 0.0)  # water O in the xy-plane
    assert atoms.info["charge"] == complex_charge(q) == 3 + 2 * q
    d1, d2 = atoms.info["donor_indices"]
    assert (d1, d2) == (16, 16 + n_lig)
    assert sym[d1] == sym[d2] == smiles.lstrip("[").upper()[0]
    assert atoms.positions[d1, 2] > 1.5 and atoms.positions[d2, 2] < -1.5  # donor 1 on +z, 2 on -z
    assert descriptors.dy_coordination_number(atoms) == 7
    assert descriptors.min_interatomic_distance(atoms) > 0.9
    # the two ligands are the same molecule (same sorted inter-atomic distances)
    l1 = atoms.positions[d1:d2]
    l2 = atoms.positions[d2:]
    dm = lambda x: np.sort(np.linalg.norm(x[:, None] - x[None], axis=-1).ravel())  # noqa: E731
    assert np.allclose(dm(l1), dm(l2), atol=1e-6)


def test_water_pentagon_is_regular():
    _, pos = builder.dy_water_frame()
    o = pos[[1, 4, 7, 10, 13]]
    r = np.linalg.norm(o, axis=1)
    assert np.allclose(r, r[0])
    edges = np.linalg.norm(o - np.roll(o, 1, axis=0), axis=1)
    assert np.allclose(edges, 2 * r[0] * math.sin(math.pi / 5))
    oh = np.linalg.norm(pos[[2, 3]] - pos[1], axis=1)
    assert np.allclose(oh, 0.96)


def test_ideal_bipyramid_descriptors():
    atoms = builder.build_complex("N#CC", seed=0)  # linear nitrile: ideal axis
    d = descriptors.structural_descriptors(atoms)
    assert d["dist_dy_donor1_a"] == pytest.approx(d["dist_dy_donor2_a"])
    assert d["angle_l_dy_l_deg"] == pytest.approx(180.0, abs=1e-6)
    assert d["d5h_deviation_a"] == pytest.approx(0.0, abs=1e-6)
    # bend one donor off the axis: the angle drops, the D5h deviation grows
    p = atoms.get_positions()
    d1 = atoms.info["donor_indices"][0]
    p[d1] += [0.5, 0.0, 0.0]
    atoms.set_positions(p)
    d2 = descriptors.structural_descriptors(atoms)
    assert d2["angle_l_dy_l_deg"] < 170.0
    assert d2["d5h_deviation_a"] > 0.05


def test_descriptors_invariant_under_rotation():
    atoms = builder.build_complex("O=CNC12CN(C2C1)C", seed=0)
    p = atoms.get_positions()
    p[16] += [0.3, -0.2, 0.1]
    atoms.set_positions(p)
    before = descriptors.structural_descriptors(atoms)
    rot = builder.rotation_aligning(np.array([0.0, 0.0, 1.0]), np.array([1.0, 2.0, 3.0]))
    atoms.set_positions(atoms.get_positions() @ rot.T)
    after = descriptors.structural_descriptors(atoms)
    for k in before:
        assert after[k] == pytest.approx(before[k], abs=1e-8)


def test_extxyz_round_trip():
    atoms = builder.build_complex("[O-]C", ligand_id="Labc", seed=0)
    atoms.set_initial_charges(np.linspace(-1, 1, len(atoms)))
    text = contract.to_extxyz(atoms)
    back = contract.from_extxyz(text)
    assert back.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert np.allclose(back.positions, atoms.positions, atol=1e-6)
    assert back.info["charge"] == 1 and back.info["ligand_id"] == "Labc"
    assert back.info["smiles"] == "[O-]C"
    assert back.info["donor_indices"] == atoms.info["donor_indices"]
    assert np.allclose(back.get_initial_charges(), atoms.get_initial_charges())


def test_extxyz_round_trip_with_empty_ligand_id():
    atoms = builder.build_complex("[O-]c1ccccc1", ligand_id="", seed=0)
    back = contract.from_extxyz(contract.to_extxyz(atoms))
    assert back.info["ligand_id"] == "" and back.info["smiles"] == "[O-]c1ccccc1"
    assert back.info["charge"] == 1


def test_builder_is_deterministic():
    a = builder.build_complex("[O-]CCC1C(N1C)C=O", seed=3)
    b = builder.build_complex("[O-]CCC1C(N1C)C=O", seed=3)
    assert np.array_equal(a.positions, b.positions)


@pytest.mark.parametrize(
    "smiles,fragment",
    [("", "empty"), ("C1CC", "parse"), ("CO", "not an O or N"), ("[O]C", "radical"),
     ("O.O", "fragment"), ("[NH4+]", "positively")],
)
def test_bad_ligands_raise_clear_errors(smiles, fragment):
    with pytest.raises(conformers.LigandError, match=fragment):
        builder.build_complex(smiles)


def test_charge_mismatch_is_rejected():
    with pytest.raises(conformers.LigandError, match="formal charge"):
        builder.build_complex("OC", ligand_charge=-1)


def test_lone_pair_points_at_dy():
    atoms = builder.build_complex("OC", seed=0)
    p = atoms.get_positions()
    d1 = atoms.info["donor_indices"][0]
    # the donor's neighbours (C and H of the ligand) sit farther from Dy than the donor
    r_donor = np.linalg.norm(p[d1])
    assert all(np.linalg.norm(p[j]) > r_donor + 0.3 for j in (d1 + 1, d1 + 2))


def test_cli_build_writes_extxyz(tmp_path):
    out = tmp_path / "c.xyz"
    assert build.main(["OC", "-o", str(out)]) == 0
    back = contract.from_extxyz(out.read_text())
    assert back.info["charge"] == 3
    assert build.main(["CC"]) == 1  # no donor: clear error, exit code 1


def test_closest_non_donor_contact_detects_rebinding():
    atoms = builder.build_complex("OCC=O", seed=0)
    (i1, r1), _ = descriptors.closest_non_donor_contacts(atoms)
    assert r1 > descriptors.dy_donor_distances(atoms)[0]
    # move the carbonyl O of ligand 1 next to Dy: it is now the closest ligand atom
    p = atoms.get_positions()
    o2 = [i for i in range(17, 16 + atoms.info["n_ligand_atoms"]) if atoms[i].symbol == "O"][0]
    p[o2] = [0.3, 0.3, 1.9]
    atoms.set_positions(p)
    (i1, r1), _ = descriptors.closest_non_donor_contacts(atoms)
    assert i1 == o2 and r1 < descriptors.dy_donor_distances(atoms)[0]


def test_cli_build_relax(tmp_path):
    out = tmp_path / "r.xyz"
    assert build.main(["N#CC", "--relax", "--mode", "axial", "-o", str(out)]) == 0
    back = contract.from_extxyz(out.read_text())
    assert len(back.get_initial_charges()) == len(back)
    assert 2.0 < descriptors.dy_donor_distances(back)[0] < 2.7
