"""xTB proxies: GFN2 single points, constrained relaxation, proxy rows, sharding, failures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smmflow import tables as T
from smmflow.chem import conformers
from smmflow.geometry import builder, contract, descriptors
from smmflow.xtb import engine, relax
from smmflow.xtb import proxies as px

FAST = px.ProxySettings(n_conformers=2, n_rotations=6, seed=0)


def _lig(smiles, cls, q, lid):
    return {"ligand_id": lid, "smiles": smiles, "ligand_class": cls, "ligand_charge": q, "complex_charge": 3 + 2 * q}


@pytest.fixture(scope="module")
def rows():
    ligs = [
        _lig("[O-]C", "O-", -1, "L1"),
        _lig("OC", "O", 0, "L2"),
        _lig("N#CC", "N", 0, "L3"),
        _lig("[N-]1C=CC=C1", "N-", -1, "L4"),
    ]
    return {r["smiles"]: px.proxy_row(r, FAST) for r in ligs}


def test_rows_follow_contract_and_succeed(rows):
    for smi, r in rows.items():
        assert set(r) == set(T.PROXY_COLUMNS)
        assert r["status"] == T.STATUS_OK, (smi, r["reason"])
        assert r["reason"] == ""
        for c in (*T.XTB_LIGAND_COLUMNS, *T.XTB_COMPLEX_COLUMNS):
            assert np.isfinite(r[c]), (smi, c)
        assert r["xtb_gap_ev"] == pytest.approx(r["xtb_lumo_ev"] - r["xtb_homo_ev"])
        assert r["xtb_gap_ev"] > 0


def test_physics_of_donors(rows):
    alkoxide, alcohol = rows["[O-]C"], rows["OC"]
    # an anionic donor carries more negative charge, binds Dy more tightly
    assert alkoxide["xtb_donor_charge"] < alcohol["xtb_donor_charge"] - 0.2
    assert alkoxide["dist_dy_donor1_a"] < alcohol["dist_dy_donor1_a"] - 0.1
    assert rows["[N-]1C=CC=C1"]["xtb_donor_charge"] < rows["N#CC"]["xtb_donor_charge"]
    # anion HOMOs lie far above neutral ones
    assert alkoxide["xtb_homo_ev"] > alcohol["xtb_homo_ev"] + 3.0
    # nitrile N uses ~3 bonds (C#N), an alkoxide O ~1.x
    assert rows["N#CC"]["xtb_donor_bond_order_sum"] > 2.5
    assert alkoxide["xtb_donor_bond_order_sum"] < 1.8
    for r in rows.values():
        assert 1.8 < r["dist_dy_donor1_a"] < 2.7 and 1.8 < r["dist_dy_donor2_a"] < 2.7
        assert 130.0 < r["angle_l_dy_l_deg"] <= 180.0
        assert 0.3 < r["xtb_dy_charge"] < 3.0  # covalent donation lowers Dy below +3


def test_complex_xyz_is_the_relaxed_complex(rows):
    r = rows["OC"]
    atoms = contract.from_extxyz(r["complex_xyz"])
    assert atoms.info["charge"] == 3
    assert descriptors.dy_coordination_number(atoms) == 7
    assert descriptors.min_interatomic_distance(atoms) > 0.9
    assert descriptors.dy_donor_distances(atoms)[0] == pytest.approx(r["dist_dy_donor1_a"])
    assert len(atoms.get_initial_charges()) == len(atoms)
    assert atoms.get_initial_charges()[0] == pytest.approx(r["xtb_dy_charge"])
    # GFN2 charges sum to the total charge
    assert atoms.get_initial_charges().sum() == pytest.approx(3.0, abs=1e-4)


def test_relaxation_lowers_energy_and_keeps_frame():
    atoms = builder.build_complex("OC", seed=0)
    e0 = engine.gfn2_singlepoint(atoms.numbers, atoms.positions, atoms.info["charge"]).energy_eh
    relaxed, info = relax.relax_complex(atoms, mode="rigid", fmax=0.05)
    assert info.converged and info.energy_eh < e0
    assert np.allclose(relaxed.positions[:16], atoms.positions[:16])  # Dy + waters frozen
    # rigid mode: intra-ligand distances unchanged
    n = atoms.info["n_ligand_atoms"]
    lig0, lig1 = atoms.positions[16 : 16 + n], relaxed.positions[16 : 16 + n]
    dm = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)
    assert np.allclose(dm(lig0), dm(lig1), atol=1e-6)
    flex, finfo = relax.relax_complex(relaxed, mode="flexible", fmax=0.1)
    assert finfo.energy_eh <= info.energy_eh + 1e-8
    assert np.allclose(flex.positions[:16], atoms.positions[:16])


def test_rigid_gradient_matches_finite_differences():
    """The analytic rigid-body gradient must be the derivative of the GFN2 energy (tests can fail)."""
    atoms = builder.build_complex("OC", seed=0)
    eng = engine.GFN2Engine(atoms.numbers, atoms.positions, atoms.info["charge"], accuracy=0.01)
    pos = atoms.get_positions()
    sl = relax.ligand_slices(atoms)[0]
    ref = pos[sl].copy()
    piv = ref[0].copy()
    _, g = eng.compute(pos)
    g = g[sl] * relax.HARTREE_PER_BOHR_TO_EV_PER_A
    rel = ref - piv
    analytic = [float(np.sum(g * (rel @ dr.T))) for dr in relax._rotation_derivatives(np.zeros(3))]
    h = 1e-3
    for j in range(3):
        w = np.zeros(3)
        w[j] = h
        ep = eng.compute(np.vstack([pos[: sl.start], rel @ relax._rotation_matrix(w).T + piv, pos[sl.stop :]]))[0]
        em = eng.compute(np.vstack([pos[: sl.start], rel @ relax._rotation_matrix(-w).T + piv, pos[sl.stop :]]))[0]
        fd = (ep - em) / (2 * h) * 27.211386245988
        assert analytic[j] == pytest.approx(fd, rel=1e-3, abs=2e-4)


def test_dipole_about_centre_of_mass_is_translation_invariant():
    lc = conformers.ligand_conformers("[O-]C", n_conformers=1, seed=0)
    a = px.free_ligand_descriptors(lc.symbols, lc.conformers[0], -1, lc.neighbors_of_donor)
    b = px.free_ligand_descriptors(lc.symbols, lc.conformers[0] + 5.0, -1, lc.neighbors_of_donor)
    assert a["xtb_dipole_debye"] == pytest.approx(b["xtb_dipole_debye"], abs=1e-4)


@pytest.mark.parametrize(
    "row,fragment",
    [
        ({"ligand_id": "Lx", "smiles": "not a smiles"}, "parse"),
        ({"ligand_id": "Lx", "smiles": "CC"}, "not an O or N"),
        ({"ligand_id": "Lx", "smiles": "[O]C"}, "radical"),
        ({"ligand_id": "Lx", "smiles": "OC", "ligand_charge": -1}, "formal charge"),
        ({"ligand_id": "Lx", "smiles": "OC", "ligand_class": "N"}, "disagrees"),
        ({"ligand_id": "Lx"}, "smiles"),
        ({"ligand_id": "Lx", "smiles": None}, ""),
    ],
)
def test_bad_rows_fail_without_raising(row, fragment):
    r = px.proxy_row(row, FAST)
    assert r["status"] == T.STATUS_FAILED
    assert fragment in r["reason"] and r["reason"]
    assert set(r) == set(T.PROXY_COLUMNS)


def test_odd_electron_count_is_an_xtb_error():
    with pytest.raises(engine.XtbError, match="odd electron"):
        engine.gfn2_singlepoint([8, 1], np.array([[0, 0, 0], [0.97, 0, 0]]), 0)


def test_shards_partition_the_table():
    df = pd.DataFrame({"ligand_id": [f"L{i:03d}" for i in range(23)][::-1], "smiles": ["OC"] * 23})
    parts = [px.shard(df, k, 4) for k in range(4)]
    ids = sorted(i for p in parts for i in p["ligand_id"])
    assert ids == sorted(df["ligand_id"]) and len(ids) == len(set(ids))
    assert list(px.shard(df, 0, 4)["ligand_id"][:2]) == ["L000", "L004"]
    with pytest.raises(ValueError):
        px.shard(df, 4, 4)


def test_table_and_aggregate(rows):
    ligs = pd.DataFrame([_lig("OC", "O", 0, "L2"), _lig("xx", "O", 0, "L9")])
    tab = px.proxy_table(ligs, FAST)
    assert list(tab.columns) == list(T.PROXY_COLUMNS)
    assert list(tab["status"]) == [T.STATUS_OK, T.STATUS_FAILED]
    agg = px.aggregate([tab.iloc[[1]], tab.iloc[[0]], T.empty_frame(T.PROXY_COLUMNS)])
    assert list(agg["ligand_id"]) == ["L2", "L9"]
    with pytest.raises(ValueError, match="duplicate"):
        px.aggregate([tab, tab])
    empty = px.proxy_table(pd.DataFrame(columns=list(T.LIGANDS_COLUMNS)), FAST)
    assert list(empty.columns) == list(T.PROXY_COLUMNS) and len(empty) == 0


def test_settings_from_config():
    s = px.ProxySettings.from_config({"relax_mode": "flexible", "fmax_ev_a": 0.1})
    assert s.relax_mode == "flexible" and s.fmax_ev_a == 0.1 and s.seed == 0
    assert math.isclose(px.ProxySettings.from_config(None).fmax_ev_a, 0.05)


# ---------------------------------------------------------------------------------------------
# DFT proxy (PySCF); small molecules only, to keep the suite fast
# ---------------------------------------------------------------------------------------------
def test_dft_proxy_physics_and_charge_scheme():
    from smmflow.xtb import dft

    s = dft.DftSettings(xc="PBE", basis="def2-SVP", grid_level=1, n_conformers=1)
    anion = dft.dft_row({"ligand_id": "La", "smiles": "[O-]C"}, s)
    neutral = dft.dft_row({"ligand_id": "Ln", "smiles": "OC"}, s)
    for r in (anion, neutral):
        assert set(r) == set(T.DFT_COLUMNS)
        assert r["status"] == T.STATUS_OK, r["reason"]
        assert "PBE/def2-SVP" in r["dft_method"]
        assert r["dft_gap_ev"] == pytest.approx(r["dft_lumo_ev"] - r["dft_homo_ev"])
    assert anion["dft_donor_charge"] < neutral["dft_donor_charge"] - 0.15
    assert anion["dft_homo_ev"] > neutral["dft_homo_ev"] + 3.0
    assert -1.2 < anion["dft_donor_charge"] < -0.5 and -0.9 < neutral["dft_donor_charge"] < -0.3


def test_iao_charges_sum_to_total_charge():
    from pyscf import dft as pdft
    from pyscf import gto

    from smmflow.xtb.dft import iao_charges

    mol = gto.M(atom="O 0 0 0; H 0.96 0 0; H -0.24 0.93 0", basis="def2-SVP", charge=0, verbose=0)
    mf = pdft.RKS(mol, xc="PBE")
    mf.grids.level = 1
    mf.kernel()
    q = iao_charges(mf)
    assert q.sum() == pytest.approx(0.0, abs=1e-6)
    assert q[0] < -0.4 and q[1] > 0.2 and q[1] == pytest.approx(q[2], abs=0.02)


def test_dft_bad_rows_and_subset():
    from smmflow.xtb import dft

    r = dft.dft_row({"ligand_id": "Lx", "smiles": "C"}, dft.DftSettings(n_conformers=1))
    assert r["status"] == T.STATUS_FAILED and "not an O or N" in r["reason"]
    df = pd.DataFrame({"ligand_id": [f"L{i}" for i in range(10)]})
    a, b = dft.select_subset(df, 4, seed=1), dft.select_subset(df, 4, seed=1)
    assert list(a["ligand_id"]) == list(b["ligand_id"]) and len(a) == 4
    assert len(dft.select_subset(df, 0, seed=1)) == 10


def test_axial_mode_moves_ligands_only_along_and_about_the_axis():
    atoms = builder.build_complex("OC", seed=0)
    relaxed, info = relax.relax_complex(atoms, mode="axial", fmax=0.05)
    assert info.converged
    d = descriptors.structural_descriptors(relaxed)
    assert d["angle_l_dy_l_deg"] == pytest.approx(180.0, abs=1e-6)
    d1 = atoms.info["donor_indices"][0]
    # donor stays on the z axis
    assert np.allclose(relaxed.positions[d1, :2], 0.0, atol=1e-9)
    e0 = engine.gfn2_singlepoint(atoms.numbers, atoms.positions, 3).energy_eh
    assert info.energy_eh < e0


def test_water_rotation_keeps_the_pentagon():
    atoms = builder.build_complex("[O-]C", seed=0)
    relaxed, _ = relax.relax_complex(atoms, mode="rigid", waters="rotate", fmax=0.1)
    o = [1, 4, 7, 10, 13]
    assert np.allclose(relaxed.positions[o], atoms.positions[o])
    assert np.allclose(relaxed.positions[0], 0.0)
    oh = np.linalg.norm(relaxed.positions[[2, 3]] - relaxed.positions[1], axis=1)
    assert np.allclose(oh, 0.96, atol=1e-6)  # waters rotate rigidly


def test_bfgs_trust_minimises_a_quadratic_with_capped_steps():
    a = np.diag([1.0, 10.0, 0.1])
    x0 = np.array([1.0, -1.0, 2.0])
    seen = []

    def fun(x):
        seen.append(x.copy())
        return 0.5 * x @ a @ x, a @ x

    x, ok = relax.bfgs_trust(fun, x0, [np.arange(3)], fmax=1e-6, max_steps=200, maxstep=0.3, h0=1.0)
    assert ok and np.allclose(x, 0.0, atol=1e-5)
    steps = np.linalg.norm(np.diff(np.array(seen), axis=0), axis=1)
    assert steps.max() <= 0.3 + 1e-12


def test_bad_relaxation_arguments():
    atoms = builder.build_complex("OC", seed=0)
    with pytest.raises(ValueError, match="mode"):
        relax.relax_complex(atoms, mode="fast")
    with pytest.raises(ValueError, match="water"):
        relax.relax_complex(atoms, waters="floating")


def test_proxy_row_is_reproducible():
    row = _lig("O=CN", "O", 0, "L5")
    a, b = px.proxy_row(row, FAST), px.proxy_row(row, FAST)
    assert a["status"] == b["status"] == T.STATUS_OK
    for c in (*T.XTB_LIGAND_COLUMNS, *T.XTB_COMPLEX_COLUMNS):
        assert a[c] == pytest.approx(b[c], abs=1e-8), c


# ---------------------------------------------------------------------------------------------
# robustness: SCC failures and the per-ligand wall-time cap (a ligand must never block a shard)
# ---------------------------------------------------------------------------------------------
def test_regression_ligand_that_hung_a_shard():
    """O=CC(=O)C(C)(F)C#N made scipy L-BFGS call failing SCCs for minutes (lead's report)."""
    row = _lig("O=CC(=O)C(C)(F)C#N", "O", 0, "L3058f5a837904f1c")
    r = px.proxy_row(row, px.ProxySettings())
    assert set(r) == set(T.PROXY_COLUMNS)
    if r["status"] == T.STATUS_OK:
        assert r["xtb_opt_steps"] < px.ProxySettings().max_steps
    else:
        assert r["reason"]


def test_wall_time_cap_fails_the_row():
    r = px.proxy_row(_lig("OC", "O", 0, "L2"), px.ProxySettings(max_wall_s_per_ligand=1e-9))
    assert r["status"] == T.STATUS_FAILED and "wall-time cap" in r["reason"]
    atoms = builder.build_complex("OC", seed=0)
    with pytest.raises(engine.XtbTimeout):
        relax.relax_complex(atoms, max_wall_s=0.0)


class _FailingCalculator:
    """Stands in for tblite: every SCC fails, as for a pathological geometry."""

    def __init__(self):
        self.calls = 0

    def set(self, *_):
        pass

    def update(self, *_):
        pass

    def add(self, *_):
        pass

    def singlepoint(self, *_args, **_kw):
        self.calls += 1
        raise RuntimeError("SCF not converged in 100 cycles")


def test_scc_failure_ends_the_relaxation_quickly(monkeypatch):
    fake = _FailingCalculator()
    monkeypatch.setattr(engine, "_new_calculator", lambda *a, **k: fake)
    atoms = builder.build_complex("OC", seed=0)
    with pytest.raises(engine.XtbError, match="SCC failed"):
        relax.relax_complex(atoms, mode="rigid")
    assert fake.calls <= 3  # restart guess, EEQ + damping, atomic guess + stronger damping
    r = px.proxy_row(_lig("OC", "O", 0, "L2"), FAST)
    assert r["status"] == T.STATUS_FAILED and "XtbError" in r["reason"]


# ---------------------------------------------------------------------------------------------
# binding mode: end-on through the donor alone, else another start, else a failed row
# ---------------------------------------------------------------------------------------------
def test_builder_starts_are_ranked_and_finite():
    lc = conformers.ligand_conformers("OCC(C)O", n_conformers=4, seed=0)
    first = builder.build_complex("OCC(C)O", conformers=lc, n_rotations=6)
    assert np.allclose(builder.build_complex("OCC(C)O", conformers=lc, n_rotations=6, start_rank=0).positions,
                       first.positions)
    n_conf = len(lc.conformers)
    n_frame, n_lig = contract.N_FRAME_ATOMS, len(lc.symbols)
    lig1 = slice(n_frame, n_frame + n_lig)
    # after the conformers: the best one turned by 90 deg about the Dy-donor (z) axis
    turned = builder.build_complex("OCC(C)O", conformers=lc, n_rotations=6, start_rank=n_conf)
    c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    assert np.allclose(turned.positions[lig1], first.positions[lig1] @ rz.T, atol=1e-9)
    assert not np.allclose(turned.positions[lig1], first.positions[lig1], atol=0.1)
    with pytest.raises(conformers.LigandError, match="no start of rank"):
        builder.build_complex("OCC(C)O", conformers=lc, n_rotations=6,
                              start_rank=n_conf + len(builder.EXTRA_START_TURNS_DEG))


def test_wrong_binding_mode_gets_another_start_or_fails():
    """N12C3CCC(C1C2C3)O relaxes side-on (Dy-N-C 98 deg) from the builder's best start; a start turned
    about the axis binds end-on. Without retries the row fails with the binding reason."""
    row = _lig("N12C3CCC(C1C2C3)O", "N", 0, "Lside")
    off = px.proxy_row(row, px.ProxySettings())  # the default: no binding check, the side-on complex passes
    assert off["status"] == T.STATUS_OK and off["reason"] == ""
    strict = px.proxy_row(row, px.ProxySettings(binding_check=True, binding_retries=0))
    assert strict["status"] == T.STATUS_FAILED and "binding mode" in strict["reason"] and "side-on" in strict["reason"]
    assert off["xtb_opt_steps"] == strict["xtb_opt_steps"]
    ok = px.proxy_row(row, px.ProxySettings(binding_check=True))
    assert ok["status"] == T.STATUS_OK, ok["reason"]
    assert ok["xtb_opt_steps"] > strict["xtb_opt_steps"]
    from smmflow.geometry.binding import binding_problems

    assert binding_problems(contract.from_extxyz(ok["complex_xyz"])) == []
    # the same ligand with a looser angle threshold is accepted from the first start
    loose = px.proxy_row(row, px.ProxySettings(binding_check=True, binding_retries=0,
                                               binding={"min_dy_donor_x_deg": 90.0}))
    assert loose["status"] == T.STATUS_OK and loose["xtb_opt_steps"] == strict["xtb_opt_steps"]


def test_binding_settings_reject_unknown_keys():
    r = px.proxy_row(_lig("OC", "O", 0, "L2"), px.ProxySettings(binding={"max_dy_o_a": 3.0}))
    assert r["status"] == T.STATUS_FAILED and "unknown binding criteria" in r["reason"]
