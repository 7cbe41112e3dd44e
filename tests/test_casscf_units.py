"""Fast unit tests (no SCF) of the ab initio engine's building blocks and bad-input handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from casscf_geometries import hydroxide_complex, rdkit_ligand_complex

from smmflow.abinitio import casscf, lowrank_df, magnetism, regions, settings, spin_orbit
from smmflow.constants import G_ELECTRON


@pytest.mark.parametrize("s", [0.5, 1.0, 2.5])
def test_spin_matrices_commutation(s):
    sx, sy, sz = spin_orbit.spin_matrices(s)
    assert np.allclose(sx @ sy - sy @ sx, 1j * sz)
    assert np.allclose(sx @ sx + sy @ sy + sz @ sz, s * (s + 1) * np.eye(int(2 * s + 1)))


def test_g_tensor_of_free_spin_half():
    sx, sy, sz = spin_orbit.spin_matrices(0.5)
    block = -G_ELECTRON * np.array([sx, sy, sz])
    g, axes = magnetism.g_tensor(block)
    assert np.allclose(g, G_ELECTRON)


def test_g_tensor_ising_along_axis():
    sz = spin_orbit.spin_matrices(0.5)[2]
    n = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    block = np.array([20.0 * n[k] * sz for k in range(3)])
    g, axes = magnetism.g_tensor(block)
    assert g[2] == pytest.approx(20.0) and g[0] < 1e-9
    assert magnetism.axis_angle_deg(axes[:, 2], n) < 1e-6


def test_axis_angle_is_line_angle():
    assert magnetism.axis_angle_deg(np.array([0, 0, 1.0]), np.array([0, 0, -2.0])) == pytest.approx(0.0)
    assert magnetism.axis_angle_deg(np.array([1.0, 0, 0]), np.array([0, 0, 1.0])) == pytest.approx(90.0)


def test_blocking_barrier_picks_first_leaky_doublet():
    e = np.array([0.0, 100.0, 200.0, 300.0])
    tm = np.zeros((8, 8))
    tm[4, 5] = 0.5  # third KD leaks
    assert magnetism.blocking_barrier(e, tm) == (200.0, 2)
    tm[0, 1] = 0.2  # ground doublet QTM
    assert magnetism.blocking_barrier(e, tm)[0] == 0.0


def test_partition_tiers_hydroxide():
    atoms = hydroxide_complex()
    pc = regions.partition(atoms, "pointcharge")
    assert pc.symbols == ["Dy"] and pc.charge == 3 and len(pc.mm_charges) == len(atoms) - 1
    full = regions.partition(atoms, "full")
    assert len(full.symbols) == len(atoms) and full.charge == 1 and len(full.mm_charges) == 0
    emb = regions.partition(atoms, "embedded")
    assert len(emb.symbols) == len(atoms) and emb.n_link_atoms == 0  # OH- is all first sphere


def test_partition_embedded_caps_cut_bonds():
    atoms = rdkit_ligand_complex("[O-]C1C(CC1)(C)CCC")
    emb = regions.partition(atoms, "embedded", bond_shells=1)
    # the alkoxide C sits in a cyclobutane, which comes in whole; the quaternary ring C's methyl
    # and propyl are cut
    assert emb.n_link_atoms == 2 * 2
    assert regions.partition(atoms, "embedded", bond_shells=2).n_link_atoms == 2  # CH3 and CH2 in
    assert emb.charge == 1
    n_electrons = sum({"Dy": 66, "O": 8, "C": 6, "H": 1}[s] for s in emb.symbols) - emb.charge
    assert (n_electrons - 9) % 2 == 0  # closed shell outside the 4f^9
    # no point charge sits on a link position's partner without being zeroed
    assert np.isclose(emb.mm_charges, 0.0).sum() >= 4


def test_bad_inputs_raise_clear_errors():
    atoms = hydroxide_complex()
    with pytest.raises(ValueError, match="unknown tier"):
        settings.CasscfSettings(tier="cheap")
    wrong = atoms[1:]
    wrong.info.update(atoms.info)
    with pytest.raises(ValueError, match="Dy"):
        regions.partition(wrong, "full")
    nocharge = Atoms("DyO", positions=[[0, 0, 0], [0, 0, 2.2]])
    nocharge.info["charge"] = 3
    with pytest.raises(ValueError, match="initial_charges"):
        regions.partition(nocharge, "pointcharge")
    with pytest.raises(ValueError, match="charge"):
        regions.partition(Atoms("Dy"), "full")
    with pytest.raises(ValueError, match="unknown casscf settings"):
        settings.settings_from_mapping({"tier": "full", "bogus": 1})


def test_validate_flags_unphysical_results():
    ok = {"converged": True, "kramers_splitting_max_cm1": 1e-6, "active_f_population": [0.99] * 7,
          "so_energies_cm1": [0.0] * 16 + [3000.0], "zeta_4f_cm1": 1900.0}
    s = settings.CasscfSettings()
    assert casscf.validate(ok, s) == ("ok", "")
    bad = dict(ok, converged=False, kramers_splitting_max_cm1=0.5, active_f_population=[0.3] + [0.99] * 6)
    status, reason = casscf.validate(bad, s)
    assert status == "failed" and "Kramers" in reason and "4f" in reason and "converged" in reason


def test_cli_exit_codes_and_failed_json(tmp_path):
    import json

    from smmflow.cli.casscf import main

    assert main([str(tmp_path / "missing.xyz"), "--charge", "1"]) == 2
    xyz = tmp_path / "noDy.xyz"
    xyz.write_text("2\n\nO 0 0 0\nH 0 0 0.96\n")
    out = tmp_path / "out.json"
    assert main([str(xyz), "--charge", "-1", "--tier", "full", "--json", str(out), "--cache-dir", str(tmp_path)]) == 1
    res = json.loads(out.read_text())
    assert res["status"] == "failed" and "Dy" in res["reason"] and res["tier"] == "full"


@pytest.mark.parametrize("smiles", ["n1ccccc1", "[O-]C(=O)C", "[O-]c1ccccc1", "[NH-]C(=O)C", "Cn1ccnc1"])
def test_embedded_never_cuts_multiple_bonds_and_pieces_are_closed_shell(smiles):
    if smiles == "Cn1ccnc1":
        smiles = "n1ccn(C)c1"  # donor (imine N) first
    atoms = rdkit_ligand_complex(smiles)
    emb = regions.partition(atoms, "embedded")  # raises on an odd-electron piece
    z = {"Dy": 66, "O": 8, "N": 7, "C": 6, "H": 1}
    assert (sum(z[s] for s in emb.symbols) - emb.charge - 9) % 2 == 0
    nbrs = regions.ligand_bond_graph(atoms)
    quantum_positions = {tuple(np.round(p, 6)) for p in emb.coords}
    for i in range(16, len(atoms)):
        if tuple(np.round(atoms.positions[i], 6)) not in quantum_positions:
            continue
        for j in nbrs[i]:
            if tuple(np.round(atoms.positions[j], 6)) not in quantum_positions:  # a cut bond
                d = atoms.get_distance(i, j)
                assert regions.is_single_bond(atoms[i].symbol, atoms[j].symbol, d), (smiles, i, j, d)
    if smiles in ("n1ccccc1", "[O-]c1ccccc1"):
        assert emb.n_link_atoms == 0  # the aromatic ring is kept whole


def _small_df_casscf():
    """A small DF-ROHF, PySCF's DF-CASSCF of it and the same with :class:`LowRankDFCASSCF`."""
    from pyscf import gto, mcscf, scf

    mol = gto.M(atom="O 0 0 0; H 0 0.76 0.58; H 0 -0.76 0.58; O 2.8 0 0; H 3.3 0.7 0.3; H 3.3 -0.7 0.3",
                basis="6-31g", spin=2, verbose=0)
    mf = scf.ROHF(mol).density_fit().run()
    return mol, mf, mcscf.DFCASSCF(mf, 4, (3, 1)), lowrank_df.low_rank_dfcasscf(mf, 4, (3, 1))


@pytest.mark.parametrize("n_frozen", [0, 2])
def test_low_rank_ah_jk_equals_pyscf(n_frozen):
    """The low-rank augmented-Hessian JK (embedded/full speed-up) reproduces PySCF's dense one,
    also with frozen core rows (which it drops from the trial density)."""
    mol, mf, mc, lr = _small_df_casscf()
    rng = np.random.default_rng(0)
    nmo = mf.mo_coeff.shape[1]
    x = rng.normal(size=(nmo, nmo))
    x = x - x.T
    x[:n_frozen, :] = 0.0
    x[:, :n_frozen] = 0.0
    casdm1 = rng.normal(size=(4, 4))
    casdm1 = casdm1 + casdm1.T
    va0, vc0 = mc.update_jk_in_ah(mf.mo_coeff, x, casdm1, None)
    va1, vc1 = lr.update_jk_in_ah(mf.mo_coeff, x, casdm1, None)
    assert np.abs(va0).max() > 0.1
    np.testing.assert_allclose(va1, va0, atol=1e-10)
    np.testing.assert_allclose(vc1, vc0, atol=1e-10)


def test_low_rank_get_jk_equals_pyscf():
    """LowRankJK.get_jk of the DF-CASSCF and of the DF-SCF (smmflow's make_scf) equals PySCF's."""
    from pyscf import lib

    mol, mf, mc, lr = _small_df_casscf()
    mf_lr = lib.set_class(mf.copy(), (lowrank_df.LowRankJK, mf.__class__))
    c = mf.mo_coeff
    for dm in (c[:, :5] @ c[:, :5].T, c[:, :5] @ c[:, :5].T - 0.3 * c[:, 6:7] @ c[:, 6:7].T):
        vj0, vk0 = mc.get_jk(mol, dm)
        for vj1, vk1 in (lr.get_jk(mol, dm), mf_lr.get_jk(mol, dm)):
            np.testing.assert_allclose(vj1, vj0, atol=1e-10)
            np.testing.assert_allclose(vk1, vk0, atol=1e-10)
    pair = (c[:, :5] @ c[:, :5].T, c[:, 6:9] @ np.diag([1.5, 1.0, 0.5]) @ c[:, 6:9].T)
    vj0, vk0 = mc.get_jk(mol, pair)
    vj1, vk1 = lr.get_jk(mol, pair)
    np.testing.assert_allclose(vj1, vj0, atol=1e-10)
    np.testing.assert_allclose(vk1, vk0, atol=1e-10)


def test_df_jk_of_orbitals_equals_pyscf():
    """One-pass J/K of several orbital blocks (configuration-average solver) equals PySCF's DF J/K."""
    mol, mf, mc, lr = _small_df_casscf()
    c = mf.mo_coeff
    blocks = [c[:, :5], c[:, 5:7] * np.sqrt(0.5), c[:, 9:10]]
    vj, vk = lowrank_df.df_jk_of_orbitals(mf.with_df, blocks)
    for k, b in enumerate(blocks):
        vj0, vk0 = mf.get_jk(mol, b @ b.T)
        np.testing.assert_allclose(vj[k], vj0, atol=1e-10)
        np.testing.assert_allclose(vk[k], vk0, atol=1e-10)


def test_embedded_radius_pulls_near_ligand_atoms_into_the_quantum_region():
    """A ligand atom within embedded_radius_a of Dy (here the second ligand O, moved to 2.9 A) is
    quantum with its neighbours; radius 0 gives the donor-only region."""
    atoms = rdkit_ligand_complex("OCCO")
    d1, d2 = __import__("smmflow.geometry.contract", fromlist=["donor_indices"]).donor_indices(atoms)
    p = atoms.positions
    far = [i for i in range(16, len(atoms)) if atoms[i].symbol == "O" and i not in (d1, d2)]
    assert far
    dist = np.linalg.norm(p[far] - p[0], axis=1)
    base = regions.partition(atoms, "embedded", radius_a=0.0)
    wide = regions.partition(atoms, "embedded", radius_a=float(dist.min()) + 0.01)
    assert len(wide.symbols) > len(base.symbols)
    n_o = lambda reg: sum(1 for s_ in reg.symbols if s_ == "O")  # noqa: E731
    assert n_o(wide) > n_o(base)
    assert regions.partition(atoms, "embedded", radius_a=0.0).symbols == base.symbols


def test_low_rank_ah_jk_reuses_fixed_factors_within_a_macro_iteration():
    """Later AH steps of one macro-iteration reuse C^T L_P [C_core, C_act casdm1] from the first
    step (kept in the object's ``_ah_cache``): same numbers as PySCF for a second trial rotation,
    and new orbitals are not served from the cache of the old ones."""
    mol, mf, mc, lr = _small_df_casscf()
    rng = np.random.default_rng(1)
    nmo = mf.mo_coeff.shape[1]
    casdm1 = rng.normal(size=(4, 4))
    casdm1 = casdm1 + casdm1.T
    mo = mf.mo_coeff
    u = np.linalg.qr(rng.normal(size=(nmo, nmo)))[0]
    hits = []
    for orbitals in (mo, mo, mo @ u):
        x = rng.normal(size=(nmo, nmo))
        x = x - x.T
        va0, vc0 = mc.update_jk_in_ah(orbitals, x, casdm1, None)
        va1, vc1 = lr.update_jk_in_ah(orbitals, x, casdm1, None)
        np.testing.assert_allclose(va1, va0, atol=1e-10)
        np.testing.assert_allclose(vc1, vc0, atol=1e-10)
        hits.append(lr._ah_cache["hits"])
    assert hits == [0, 1, 0]  # kept after the first step, reused once, dropped for new orbitals
    lr.reset()
    assert lr._ah_cache == {}


def test_df_casscf_integrals_equal_pyscf():
    """The in-memory DF-CASSCF integral transformation gives PySCF's ppaa, papa, j_pc, k_pc, vhf_c."""
    from pyscf.mcscf import df as mcdf

    mol, mf, mc, lr = _small_df_casscf()
    rng = np.random.default_rng(2)
    nmo = mf.mo_coeff.shape[1]
    mo = mf.mo_coeff @ np.linalg.qr(rng.normal(size=(nmo, nmo)))[0]  # not the SCF orbitals
    ref = mcdf._ERIS(mc, mo, mc.with_df)
    for got in (lowrank_df.df_casscf_integrals(mc, mo), lr.ao2mo(mo)):
        assert isinstance(got, lowrank_df.DfCasscfIntegrals)
        for name in ("ppaa", "papa", "j_pc", "k_pc", "vhf_c"):
            a, b = np.asarray(getattr(ref, name)), getattr(got, name)
            assert b.shape == a.shape, name
            assert np.abs(a).max() > 1e-3, name
            np.testing.assert_allclose(b, a, atol=1e-10, err_msg=name)


def test_state_averaged_df_casscf_with_the_faster_pieces_matches_pyscf():
    """A whole SA-CASSCF with the low-rank AH exchange, low-rank get_jk and in-memory integrals
    (LowRankDFCASSCF) converges to PySCF's own state energies."""
    from pyscf import mcscf

    mol, mf, _, _ = _small_df_casscf()
    energies = []
    for low_rank in (False, True):
        mc = lowrank_df.low_rank_dfcasscf(mf, 4, (3, 1)) if low_rank else mcscf.DFCASSCF(mf, 4, (3, 1))
        mc = mc.state_average_([0.5, 0.5])
        assert isinstance(mc, lowrank_df.LowRankDFCASSCF) == low_rank
        mc.conv_tol = 1e-10
        mc.kernel()
        assert mc.converged
        energies.append(np.asarray(mc.e_states))
    np.testing.assert_allclose(energies[1], energies[0], atol=1e-8)


def _pyscf_method_names() -> set[str]:
    """Names of the methods of PySCF's SCF, CASSCF, DF and FCI classes."""
    from pyscf import df, fci, scf
    from pyscf.mcscf import casci, mc1step

    classes = (scf.hf.SCF, scf.rohf.ROHF, mc1step.CASSCF, casci.CASCI, df.DF, fci.direct_spin1.FCISolver)
    return {n for cls in classes for n in dir(cls) if not n.startswith("__") and callable(getattr(cls, n, None))}


def test_no_instance_patches_of_pyscf_methods_in_the_engine_source():
    """The engine extends PySCF by subclasses/mixins, never by assigning a method on an instance
    (``mf.get_hcore = ...``): no attribute assignment in smmflow.abinitio targets a PySCF method name."""
    import ast
    from pathlib import Path

    import smmflow.abinitio

    methods = _pyscf_method_names()
    patched = []
    for path in Path(smmflow.abinitio.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr in methods and not (isinstance(t.value, ast.Name) and t.value.id == "self"):
                    patched.append(f"{path.name}:{node.lineno}: .{t.attr} =")
    assert not patched, patched


def test_scf_and_df_casscf_objects_carry_no_instance_patches():
    """make_scf and low_rank_dfcasscf compose classes: get_hcore/get_jk/update_jk_in_ah/ao2mo are
    methods of smmflow's mixins found through the class, none is in the instance ``__dict__``,
    also after PySCF's ``state_average_`` (which derives a class from ``mc.__class__``)."""
    import types

    from pyscf import mcscf, scf
    from pyscf.df.df_jk import _DFHF
    from pyscf.x2c.sfx2c1e import SFX2C1E_SCF

    from smmflow.abinitio import molecule

    s = settings.CasscfSettings(basis={"default": "6-31g"}, auxbasis="etb")
    mol = molecule.build_molecule(["O", "H", "H", "O", "H", "H"],
                                  [[0, 0, 0], [0, 0.76, 0.58], [0, -0.76, 0.58], [2.8, 0, 0], [3.3, 0.7, 0.3], [3.3, -0.7, 0.3]],
                                  0, 2, s)
    v = molecule.point_charge_potential(mol, np.array([[0.0, 0.0, 4.0]]), np.array([0.5]))
    mf = molecule.make_scf(mol, v, s, use_df=True)
    assert isinstance(mf, (molecule.PointChargeSCF, lowrank_df.LowRankJK, _DFHF, SFX2C1E_SCF, scf.rohf.ROHF))
    for name, owner in (("get_hcore", molecule.PointChargeSCF), ("get_jk", lowrank_df.LowRankJK)):
        assert name not in vars(mf), name
        assert getattr(mf, name).__func__ is getattr(owner, name), name
    np.testing.assert_allclose(mf.get_hcore(), scf.ROHF(mol).sfx2c1e().get_hcore() + v, atol=1e-12)
    mf.kernel()
    mc = lowrank_df.low_rank_dfcasscf(mf, 4, (3, 1)).state_average_([0.5, 0.5])
    assert isinstance(mc, (lowrank_df.LowRankDFCASSCF, mcscf.df._DFCASSCF, mcscf.addons.StateAverageMCSCF))
    for name in ("update_jk_in_ah", "get_jk", "ao2mo"):
        assert name not in vars(mc), name
        assert getattr(mc, name).__func__ is getattr(lowrank_df.LowRankDFCASSCF, name), name
    for obj in (mf, mc):
        funcs = [k for k, val in vars(obj).items() if isinstance(val, (types.FunctionType, types.MethodType))]
        assert not funcs, funcs


def test_engine_object_is_configured_by_attributes():
    """DyCasscfSO: the CasscfSettings fields are attributes (settings, then overrides, then
    assignments), validated; run_complex is DyCasscfSO(atoms, settings).kernel()."""
    atoms = hydroxide_complex()
    base = settings.CasscfSettings(tier="embedded", conv_tol=1e-8)
    mc = casscf.DyCasscfSO(atoms, base, soc_scale=0.9)
    assert (mc.tier, mc.conv_tol, mc.soc_scale, mc.orbital_optimiser) == ("embedded", 1e-8, 0.9, "average")
    mc.conv_tol_grad = 1e-5
    assert mc.settings == settings.CasscfSettings(tier="embedded", conv_tol=1e-8, soc_scale=0.9, conv_tol_grad=1e-5)
    assert base.soc_scale == 1.0  # the settings passed in are not modified
    with pytest.raises(TypeError, match="unknown CASSCF settings"):
        casscf.DyCasscfSO(atoms, conv_tolerance=1e-9)
    with pytest.raises(ValueError, match="unknown tier"):
        casscf.DyCasscfSO(atoms, tier="qmmm")
    mc.tier = "nonsense"
    with pytest.raises(ValueError, match="unknown tier"):
        mc.kernel()


@pytest.mark.parametrize("smiles", ["[OH-]", "[O-]C(=O)C", "n1ccccc1"])
def test_donor_atoms_from_the_one_geometry_contract(smiles, tmp_path):
    """abinitio uses geometry.contract's donor rule: info['donor_indices'], else the first atom of
    each ligand (n_ligand_atoms), else the two heavy non-frame atoms nearest Dy (a geometry read
    from a plain XYZ file) give the same donors; the CLI reads files with the contract's reader."""
    from smmflow.cli.casscf import read_complex
    from smmflow.geometry import contract

    assert regions.donor_indices is contract.donor_indices and casscf.donor_indices is contract.donor_indices
    assert not hasattr(regions, "WATER_ATOMS")
    atoms = hydroxide_complex() if smiles == "[OH-]" else rdkit_ligand_complex(smiles)
    expect = tuple(atoms.info["donor_indices"])
    by_count = atoms.copy()
    del by_count.info["donor_indices"]
    bare = by_count.copy()
    del bare.info["n_ligand_atoms"]
    assert contract.donor_indices(atoms) == contract.donor_indices(by_count) == contract.donor_indices(bare) == expect
    assert regions.fragment_ids(bare).tolist() == regions.fragment_ids(atoms).tolist()
    path = tmp_path / "complex.extxyz"
    path.write_text(contract.to_extxyz(atoms))
    back = read_complex(str(path), charge=None)
    assert back.info["charge"] == atoms.info["charge"] and isinstance(back.info["charge"], int)
    assert back.info["donor_indices"] == list(expect)
    np.testing.assert_allclose(back.arrays["initial_charges"], atoms.arrays["initial_charges"], atol=1e-7)  # 8 decimals in the file
    with pytest.raises(ValueError, match="two axial donor"):
        contract.donor_indices(Atoms("DyOH", positions=[[0, 0, 0], [0, 0, 2.2], [0, 0, 3.1]]))


BENCH = Path(__file__).parent / "data" / "embedded_bench"


@pytest.mark.parametrize("name,shells", [("diol", 1), ("diol", 2), ("thf_methanol", 1), ("hydroxyalkoxide", 2)])
def test_embedded_outer_point_charges_are_neutral_per_ligand(name, shells):
    """The quantum region carries each ligand's whole formal charge, so the point charges left
    outside it must sum to zero per ligand; boundary atoms (next to an H link atom) carry none.
    Plain xTB charges left -0.3..+0.6 e there on these complexes."""
    from ase.io import read

    atoms = read(BENCH / f"{name}.extxyz")
    q = atoms.arrays["initial_charges"]
    frag = regions.fragment_ids(atoms)
    emb = regions.partition(atoms, "embedded", bond_shells=shells)
    quantum_pos = {tuple(np.round(p, 6)) for p in emb.coords}
    mm = [i for i in range(len(atoms)) if tuple(np.round(atoms.positions[i], 6)) not in quantum_pos]
    assert len(mm) == len(emb.mm_charges) > 0
    np.testing.assert_allclose(emb.mm_coords, atoms.positions[mm])
    for f in (6, 7):
        piece = frag[mm] == f
        assert abs(emb.mm_charges[piece].sum()) < 1e-12
        assert abs(q[np.asarray(mm)[piece]].sum()) > 0.05  # the raw xTB charges were not neutral
    nbrs = regions.ligand_bond_graph(atoms)
    quantum = set(range(len(atoms))) - set(mm)
    for k, i in enumerate(mm):
        if nbrs[i] & quantum:  # a boundary atom
            assert emb.mm_charges[k] == 0.0


def test_embedded_never_cuts_small_ring_bonds():
    """Cutting a bond of a 3-ring would put two H link atoms ~1.1 A apart: the whole small ring
    comes into the region instead, and no two link atoms are that close."""
    from ase.io import read

    atoms = read(BENCH / "amide.extxyz")  # O=CNC1CC1C: cyclopropyl on the amide N
    nbrs = regions.ligand_bond_graph(atoms)
    ring = [i for i in range(16, len(atoms)) for j in nbrs[i] if regions.in_small_ring(nbrs, i, j)]
    assert len(set(ring)) == 6  # the two cyclopropane rings
    for shells in (1, 2, 3):
        emb = regions.partition(atoms, "embedded", bond_shells=shells)
        quantum_pos = {tuple(np.round(p, 6)) for p in emb.coords}
        inside = {i for i in set(ring) if tuple(np.round(atoms.positions[i], 6)) in quantum_pos}
        for i in set(ring):  # each ring all in or all out
            same = {j for j in set(ring) if regions.in_small_ring(nbrs, i, j) or j == i}
            assert same <= inside or not (same & inside)
        links = emb.coords[len(emb.symbols) - emb.n_link_atoms :]
        if len(links) > 1:
            d = np.linalg.norm(links[:, None] - links[None], axis=2) + 10 * np.eye(len(links))
            assert d.min() > 1.5


def test_embedded_bond_shells_grow_to_the_whole_complex():
    from ase.io import read

    atoms = read(BENCH / "diol.extxyz")  # OC(C)CCCO: 6 bonds from donor O to the far O
    sizes = [len(regions.partition(atoms, "embedded", bond_shells=n).symbols) for n in (1, 2, 3, 6)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    whole = regions.partition(atoms, "embedded", bond_shells=6)
    assert whole.n_link_atoms == 0 and len(whole.mm_charges) == 0 and len(whole.symbols) == len(atoms)
    with pytest.raises(ValueError, match="embedded_bond_shells"):
        settings.CasscfSettings(embedded_bond_shells=0)


@pytest.mark.parametrize("name,shells", [("hydroxyalkoxide", 2), ("thf_methanol", 1), ("nitrile", 2)])
def test_fragment_groups_cover_the_shell_with_formal_charges(name, shells):
    """The fragment start splits the ligand shell into the five waters (neutral) and each ligand's
    quantum piece (formal ligand charge, its link atoms included): every non-Dy quantum atom in
    exactly one group, each group closed-shell, charges summing to the shell's."""
    from ase.io import read

    from smmflow.abinitio import start_orbitals
    from smmflow.constants import DY_ION_CHARGE

    atoms = read(BENCH / f"{name}.extxyz")
    emb = regions.partition(atoms, "embedded", bond_shells=shells)
    assert len(emb.fragments) == len(emb.symbols) == len(emb.quantum_charges)
    assert emb.fragments[0] == 0 and set(emb.fragments[1:]) == {1, 2, 3, 4, 5, 6, 7}
    # a link atom sits on the bond of the atom it caps, so it belongs to that atom's ligand
    n_q = len(emb.symbols) - emb.n_link_atoms
    for k in range(n_q, len(emb.symbols)):
        nearest = int(np.argmin(np.linalg.norm(emb.coords[:n_q] - emb.coords[k], axis=1)))
        assert emb.fragments[k] == emb.fragments[nearest] in (6, 7)
        assert emb.quantum_charges[k] == 0.0
    groups = start_orbitals.fragment_groups(emb)
    assert groups is not None and len(groups) == 3
    idx = np.concatenate([g for g, _ in groups])
    assert sorted(idx.tolist()) == list(range(1, len(emb.symbols)))
    assert [len(g) for g, _ in groups][0] == 15  # five waters
    assert sum(q for _, q in groups) == emb.charge - DY_ION_CHARGE
    assert groups[0][1] == 0 and groups[1][1] == groups[2][1] == regions.ligand_charge_of(atoms)


def test_fragment_groups_fall_back_to_the_whole_shell():
    """No fragment labels, or a piece with an odd electron count: None (one RHF of the whole shell)."""
    from smmflow.abinitio import start_orbitals

    emb = regions.partition(hydroxide_complex(), "embedded")
    assert start_orbitals.fragment_groups(emb) is not None
    no_labels = regions.QuantumRegion(emb.symbols, emb.coords, emb.charge, emb.mm_coords, emb.mm_charges)
    assert start_orbitals.fragment_groups(no_labels) is None
    odd = regions.QuantumRegion(emb.symbols, emb.coords, emb.charge + 2, emb.mm_coords, emb.mm_charges,
                                fragments=emb.fragments)  # "OH" pieces with charge 0: 9 electrons each
    assert start_orbitals.fragment_groups(odd) is None


def test_fragment_start_reaches_the_whole_shell_start_kds(tmp_path):
    """The start orbitals only decide where the orbital optimisation begins: the fragment start and
    the whole-shell RHF start converge to the same KD ladder (within the solver's 1e-3 gradient
    tolerance) on [Dy(H2O)5(OH)2]+, with a cheaper start."""
    atoms = hydroxide_complex()
    res = {}
    for frag in (True, False):
        res[frag] = casscf.DyCasscfSO(atoms, tier="embedded", start_fragments=frag, cache_dir=str(tmp_path)).kernel()
        assert res[frag]["status"] == "ok", res[frag]["reason"]
    assert res[True]["start"]["start_fragments"] == 3 and res[False]["start"]["start_fragments"] == 1
    kd_f, kd_w = (np.asarray(res[k]["kd_energies_cm1"][1:]) for k in (True, False))
    assert np.all(np.abs(kd_f - kd_w) <= 0.002 * kd_w), (kd_f, kd_w)


def test_float32_df_tensor_reproduces_the_float64_integrals():
    """The float32 DF tensor (float64 integrals and metric, float32 solve and storage), built in
    several chunks: its ERIs, the one-pass J/K and the active-space ERIs equal PySCF's float64 ones
    to single precision, and a float64 computation would not pass the float32 bounds by accident."""
    from pyscf import df

    mol, mf, _, _ = _small_df_casscf()
    ref = mf.with_df
    auxmol = df.addons.make_auxmol(mol, ref.auxbasis)
    f32 = lowrank_df.Float32DF(mol, auxmol, max_memory_mb=0.2)  # a few hundred pairs per chunk
    f32.tile_aos = 8  # several tiles, several chunks per block row
    f32.build()
    assert len(f32.edges) > 4 and all(t.dtype == np.float32 for t in f32.tiles.values())
    dense = f32.dense().reshape(f32.naux, -1)
    assert dense.shape[0] == ref._cderi.shape[0]
    from pyscf import lib

    ref_dense = lib.unpack_tril(ref._cderi).reshape(f32.naux, -1)
    eri64 = ref_dense.T @ ref_dense
    eri32 = dense.T.astype(np.float64) @ dense.astype(np.float64)
    err = np.abs(eri32 - eri64).max() / np.abs(eri64).max()
    assert 1e-12 < err < 1e-6, err  # float32 round-off: not zero, not more
    c = mf.mo_coeff
    blocks = [c[:, :5], c[:, 5:7] * np.sqrt(0.5)]
    vj, vk = lowrank_df.df_jk_of_orbitals(f32, blocks)
    vj0, vk0 = lowrank_df.df_jk_of_orbitals(ref, blocks)
    np.testing.assert_allclose(vj, vj0, atol=2e-6 * np.abs(vj0).max())
    np.testing.assert_allclose(vk, vk0, atol=2e-6 * np.abs(vk0).max())
    act = c[:, 3:7]
    np.testing.assert_allclose(f32.active_eri(act), ref.ao2mo(act, compact=False), atol=1e-6)


def test_float32_df_refuses_a_linearly_dependent_auxiliary_basis():
    from pyscf import df, gto

    mol = gto.M(atom="O 0 0 0; H 0 0.76 0.58; H 0 -0.76 0.58", basis="6-31g", verbose=0)
    jk = gto.basis.load("def2-universal-jkfit", "O")
    auxmol = df.addons.make_auxmol(mol, {"O": jk + jk, "H": "def2-universal-jkfit"})  # every O function twice
    with pytest.raises(ValueError, match="not positive definite"):
        lowrank_df.Float32DF(mol, auxmol).build()


def test_locally_dense_basis_gives_far_atoms_the_outer_basis():
    """``outer_basis``: atoms beyond ``dense_radius_a`` of Dy carry the smaller basis under a label
    that PySCF reads as the same element (nuclear charges, electron count unchanged)."""
    from smmflow.abinitio.molecule import build_molecule, outer_atoms

    sym = ["Dy", "O", "C", "H"]
    xyz = np.array([[0.0, 0, 0], [2.2, 0, 0], [3.6, 0, 0], [4.1, 0.9, 0]])
    dense = settings.CasscfSettings(tier="embedded")
    local = settings.CasscfSettings(tier="embedded", outer_basis="sto-3g", dense_radius_a=3.5)
    assert not outer_atoms(xyz, dense).any()
    flags = outer_atoms(xyz, local)
    assert flags.tolist() == [False, False, True, True]
    m0 = build_molecule(sym, xyz, 3, 0, dense)
    m1 = build_molecule(sym, xyz, 3, 0, local, outer=flags)
    assert m1.nao == m0.nao - (14 - 5) - (5 - 1)  # C: x2c-SVPall 3s2p1d -> 2s1p; H: 2s1p -> 1s
    assert [m1.atom_pure_symbol(i) for i in range(4)] == sym
    assert m1.atom_charges().tolist() == m0.atom_charges().tolist() and m1.nelectron == m0.nelectron
    with pytest.raises(ValueError, match="outer_basis is None"):
        build_molecule(sym, xyz, 3, 0, dense, outer=flags)


def _average_dm(mo, ncore, ncas):
    """Densities tagged as :func:`configuration_average.average_energy_terms` passes them to get_jk."""
    from pyscf import lib

    c_occ = mo[:, : ncore + ncas]
    occ = np.zeros((2, ncore + ncas))
    occ[0, :ncore] = 1.0
    occ[1, ncore:] = 1.0
    dm = np.stack([mo[:, :ncore] @ mo[:, :ncore].T, mo[:, ncore : ncore + ncas] @ mo[:, ncore : ncore + ncas].T])
    return lib.tag_array(dm, mo_coeff=np.stack([c_occ, c_occ]), mo_occ=occ)


@pytest.mark.parametrize("df_float32", [False, True])
def test_average_jk_computes_the_frozen_orbitals_once(df_float32):
    """``frozen_core``: J/K of the frozen orbitals are computed in the first call and reused; every
    call equals the J/K without freezing, and frozen orbitals that moved are refused."""
    from smmflow.abinitio import configuration_average as cav
    from smmflow.abinitio.settings import CasscfSettings
    from smmflow.abinitio.solvers import average_jk, float32_df

    mol, mf, _, _ = _small_df_casscf()
    settings = CasscfSettings(df_float32=df_float32)
    df32 = float32_df(mf, settings)
    plain = average_jk(mf, settings, df32)
    frozen = average_jk(mf, settings, df32, frozen=2)
    ncore, ncas, nmo = 4, 3, mf.mo_coeff.shape[1]
    rng = np.random.default_rng(1)
    mo = mf.mo_coeff
    calls = 0
    for _ in range(3):
        vj0, vk0 = plain(_average_dm(mo, ncore, ncas))
        vj1, vk1 = frozen(_average_dm(mo, ncore, ncas))
        calls += 1
        tol = 1e-5 if df_float32 else 1e-10
        np.testing.assert_allclose(vj1, vj0, atol=tol)
        np.testing.assert_allclose(vk1, vk0, atol=tol)
        k = rng.normal(scale=0.1, size=(nmo, nmo))
        k[:2, :] = k[:, :2] = 0.0  # no rotation of the frozen orbitals
        k = cav.nonredundant_mask(nmo, ncore, ncas, 2) * (k - k.T)
        mo = mo @ cav._expm_antisymmetric(k - k.T).real
    assert calls == 3 and not np.allclose(mo[:, 2:ncore], mf.mo_coeff[:, 2:ncore])
    moved = mo.copy()
    moved[:, [0, ncore]] = moved[:, [ncore, 0]]
    with pytest.raises(ValueError, match="frozen orbitals moved"):
        frozen(_average_dm(moved, ncore, ncas))


def test_dy_frozen_core_must_be_the_n3_shells():
    """The frozen Dy orbitals are checked to be 1s-3d (3 s, 6 p, 5 d by angular weight): a set with
    a 4s-like orbital in place of a 3d one is refused."""
    from pyscf import gto

    from smmflow.abinitio import start_orbitals
    from smmflow.abinitio.basis import basis_for_element
    from smmflow.abinitio.settings import DY_FROZEN_CORE_ORBITALS, CasscfFailure

    mol = gto.M(atom="Dy 0 0 0", basis={"Dy": basis_for_element("Dy", "x2c-SVPall")}, charge=3, spin=5, verbose=0)
    s = mol.intor_symmetric("int1e_ovlp")
    loc = mol.ao_loc_nr()
    first = {l: [] for l in range(5)}
    for b in range(mol.nbas):
        first[mol.bas_angular(b)].extend(range(loc[b], loc[b + 1]))
    def orbitals(n_s, n_p, n_d):
        idx = first[0][:n_s] + first[1][:n_p] + first[2][:n_d]
        c = np.zeros((mol.nao, len(idx)))
        c[idx, range(len(idx))] = 1.0
        return c / np.sqrt(np.einsum("mi,mn,ni->i", c, s, c))
    assert DY_FROZEN_CORE_ORBITALS == 14
    start_orbitals.check_dy_frozen_core(mol, orbitals(3, 6, 5))
    with pytest.raises(CasscfFailure, match="not Dy 1s-3d"):
        start_orbitals.check_dy_frozen_core(mol, orbitals(4, 6, 4))


def test_pair_screened_float32_df_matches_the_unscreened_tensor():
    """``df_pair_threshold``: AO pairs whose 3-centre integrals all lie below the threshold are not
    solved (zero factors), tiles left without pairs are not stored; J/K of orbital blocks and the
    active-space ERIs then match the unscreened tensor to the size of what was dropped, and the
    kept pairs carry the unscreened factors (built in several chunks and tiles)."""
    from pyscf import df, gto

    water = [("O", (0.0, 0.0, 0.0)), ("H", (0.0, 0.76, 0.58)), ("H", (0.0, -0.76, 0.58))]
    near = [(sym, (x + 3.0, y, z)) for sym, (x, y, z) in water]
    far = [(sym, (x + 15.0, y, z)) for sym, (x, y, z) in water]  # pairs across 12 A are negligible
    mol = gto.M(atom=water + near + far, basis="6-31g", verbose=0)
    auxmol = df.addons.make_auxmol(mol, "def2-universal-jkfit")

    def build(thr):
        t = lowrank_df.Float32DF(mol, auxmol, max_memory_mb=0.2, pair_threshold=thr)
        t.tile_aos = 8
        return t.build()

    full = build(0.0)
    assert full.n_screened_pairs == 0 and len(full.tiles) == len(full.edges) * (len(full.edges) - 1) // 2
    rng = np.random.default_rng(1)
    c = np.linalg.qr(rng.standard_normal((mol.nao, mol.nao)))[0]
    blocks = [c[:, :5], c[:, 5:7] * np.sqrt(0.5)]
    vj0, vk0 = full.jk_of_orbitals(blocks)
    d_full = full.dense()
    np.testing.assert_array_equal(d_full, np.swapaxes(d_full, 1, 2))
    for thr in (1e-8, 1e-4):
        scr = build(thr)
        assert 0 < scr.n_screened_pairs < scr.n_pairs
        assert len(scr.tiles) < len(full.tiles)  # tiles between the far molecule and the others hold no pair
        d_scr = scr.dense()
        kept = np.abs(d_scr).max(axis=0) > 0
        assert 0 < kept.sum() < kept.size
        np.testing.assert_allclose(d_scr[:, kept], d_full[:, kept], rtol=1e-6, atol=1e-12)  # same solve per pair
        vj, vk = scr.jk_of_orbitals(blocks)
        err = max(np.abs(vj - vj0).max(), np.abs(vk - vk0).max())
        assert err < 1e-7 if thr == 1e-8 else 1e-8 < err < 1e-2, (thr, err)
        act = c[:, 3:7]
        np.testing.assert_allclose(scr.active_eri(act), full.active_eri(act), atol=1e-5 if thr == 1e-8 else 0.1)
