"""DFT label geometries (smmflow.dft.relax, smmflow.stages.geometry): the Dy large-core ECP, the
binding-mode check, failed relaxations as failed labels, the CLI and the config block."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import yaml

from smmflow.config import ConfigError, load_schema, validate_config
from smmflow.geometry.binding import BindingCriteria, binding_problems, n_close_contacts
from smmflow.geometry.builder import build_complex
from smmflow.geometry.contract import from_extxyz, geometry_failure, mark_geometry, to_extxyz


@pytest.fixture(scope="module")
def ome():
    """[Dy(H2O)5(OMe)2]+ as the builder makes it (no relaxation)."""
    return build_complex("[O-]C", seed=0)


def _rotate_ligand(atoms, k: int, angle_deg: float):
    """Rotate axial ligand k (1 or 2) rigidly about its donor, about an axis perpendicular to Dy-donor."""
    from smmflow.geometry.contract import donor_indices

    out = atoms.copy()
    d1, d2 = donor_indices(atoms)
    sl = slice(d1, d2) if k == 1 else slice(d2, len(atoms))
    p = out.get_positions()
    donor = p[sl.start].copy()
    axis = np.cross(donor - p[0], [1.0, 0.0, 0.0])
    if np.linalg.norm(axis) < 1e-6:
        axis = np.cross(donor - p[0], [0.0, 1.0, 0.0])
    axis /= np.linalg.norm(axis)
    th = np.radians(angle_deg)
    kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rot = np.eye(3) + np.sin(th) * kx + (1 - np.cos(th)) * kx @ kx
    p[sl] = (p[sl] - donor) @ rot.T + donor
    out.set_positions(p)
    return out


# --------------------------------------------------------------------------------------------
# the Dy(III) large-core ECP from basis-set-exchange
# --------------------------------------------------------------------------------------------
def test_lcecp_1_is_dy3_with_4f9_in_the_core():
    from smmflow.dft.relax import DY_III_LARGE_CORE_ELECTRONS, dy_large_core_basis

    basis, ecp, n_core = dy_large_core_basis("lcecp-1-SVP")
    assert n_core == DY_III_LARGE_CORE_ELECTRONS == 55  # [Kr]4d10 (46) + 4f9
    assert ecp[0] == 55  # PySCF's ECP format: [n_core, [[l, ...], ...]]
    assert sorted({shell[0] for shell in basis}) == [0, 1, 2, 3]  # s, p, d and one f shell
    assert len(basis) == 4 + 4 + 2 + 1  # [4s,4p,2d,1f]


@pytest.mark.parametrize("name", ["lcecp-0-SVP", "lcecp-2-SVP"])
def test_other_core_sizes_are_refused(name):
    from smmflow.dft.relax import DftGeometryError, dy_large_core_basis

    with pytest.raises(DftGeometryError, match="core electrons"):
        dy_large_core_basis(name)


def test_complex_is_closed_shell_with_the_ecp(ome):
    from smmflow.dft.relax import DyComplexRelaxer

    mol = DyComplexRelaxer(ome).build_mol()
    # Dy keeps 66 - 55 = 11 electrons; 5 H2O = 50; 2 OMe- as neutral radicals = 34; charge +1
    assert mol.charge == 1
    assert mol.nelectron == 11 + 50 + 34 - 1 == 94
    assert mol.spin == 0 and mol.nelectron % 2 == 0
    assert mol.atom_charge(0) == 66 - 55
    assert mol.has_ecp()


def test_odd_electron_count_is_refused(ome):
    from smmflow.dft.relax import DftGeometryError, DyComplexRelaxer

    wrong = ome.copy()
    wrong.info = dict(ome.info, charge=2)
    with pytest.raises(DftGeometryError, match="odd electron count"):
        DyComplexRelaxer(wrong).build_mol()


def test_relaxer_config_rejects_unknown_options(ome):
    from smmflow.dft.relax import relaxer_from_config

    with pytest.raises(ValueError, match="unknown geometry.dft option"):
        relaxer_from_config(ome, {"xc": "bp86", "maxsteps": 3})
    with pytest.raises(ValueError, match="unknown binding criteria"):
        relaxer_from_config(ome, {"binding": {"max_dy_o_a": 3.0}})
    r = relaxer_from_config(
        ome, {"ecp": "lcecp-1-SVP", "max_steps": 7, "disp": "none", "threads": 4, "convergence": {"gmax": 2e-3}}
    )
    assert (r.dy_basis, r.max_steps, r.disp, r.convergence["gmax"]) == ("lcecp-1-SVP", 7, None, 2e-3)
    assert r.convergence["grms"] == 1e-3  # the other keys keep their defaults


# --------------------------------------------------------------------------------------------
# binding-mode check on synthetic geometries
# --------------------------------------------------------------------------------------------
def test_builder_geometry_binds_end_on(ome):
    assert binding_problems(ome) == []
    assert n_close_contacts(ome) == 7


def test_side_on_ligand_is_flagged(ome):
    # the builder's Dy-O-C is ~180 deg; turning the ligand by 85 deg about O brings Dy-O-C to ~95 deg
    bent = _rotate_ligand(ome, 2, 85.0)
    problems = binding_problems(bent)
    assert any("side-on" in p and "ligand 2" in p for p in problems), problems
    assert not any("ligand 1" in p for p in problems)
    # the same at a milder bend is no problem; a stricter threshold flags it
    mild = _rotate_ligand(ome, 2, 40.0)
    assert binding_problems(mild) == []
    assert any("side-on" in p for p in binding_problems(mild, BindingCriteria(min_dy_donor_x_deg=150.0)))


def test_ligand_that_left_dy_is_flagged(ome):
    from smmflow.geometry.contract import donor_indices

    gone = ome.copy()
    _, d2 = donor_indices(ome)
    p = gone.get_positions()
    p[d2:] += 1.5 * p[d2] / np.linalg.norm(p[d2])  # ligand 2 moves 1.5 A outwards
    gone.set_positions(p)
    problems = binding_problems(gone)
    assert len(problems) == 1 and "ligand 2 (O" in problems[0] and "left Dy" in problems[0], problems
    assert binding_problems(gone, BindingCriteria(max_dy_donor_a=5.0)) == []


def test_non_donor_contact_and_broken_ligand_are_flagged(ome):
    from smmflow.geometry.contract import donor_indices

    d1, d2 = donor_indices(ome)
    p = ome.get_positions()
    touch = ome.copy()
    q = p.copy()
    q[d1 + 1] = p[d1 + 1] * 0 + 0.5 * (p[d1] + 2.6 * np.array([1.0, 0.0, 0.0]))  # the C next to Dy
    touch.set_positions(q)
    assert any("touches Dy through C" in s for s in binding_problems(touch))
    broken = ome.copy()
    q = p.copy()
    q[d1 + 1 : d2] += 3.0 * p[d1] / np.linalg.norm(p[d1])  # the methyl of ligand 1 flies off
    broken.set_positions(q)
    assert any("fell apart" in s and "ligand 1" in s for s in binding_problems(broken))
    water = ome.copy()
    q = p.copy()
    q[1:4] *= 2.0  # water 1 twice as far
    water.set_positions(q)
    assert any("water O1 left Dy" in s for s in binding_problems(water))


# --------------------------------------------------------------------------------------------
# failed relaxations become failed labels
# --------------------------------------------------------------------------------------------
def test_marked_geometry_round_trips(ome):
    atoms = ome.copy()
    mark_geometry(atoms, "dft", 'geometry not converged in 1 steps; "Dy-O" = 3.4 A')
    text = to_extxyz(atoms)
    assert geometry_failure(text).startswith("dft relaxation failed: geometry not converged in 1 steps")
    back = from_extxyz(text)
    assert back.info["geometry_method"] == "dft"
    np.testing.assert_allclose(back.get_positions(), ome.get_positions(), atol=1e-6)
    mark_geometry(atoms, "dft")
    assert geometry_failure(to_extxyz(atoms)) == ""
    assert geometry_failure("") == ""


def test_failed_geometry_gives_failed_label_without_casscf(ome):
    from smmflow.abinitio.settings import settings_from_mapping
    from smmflow.stages.casscf import label_row, run_job

    atoms = ome.copy()
    mark_geometry(atoms, "dft", "binding mode: ligand 2 (O11) left Dy (Dy-O 3.40 A > 3.00)")
    row = {
        "ligand_id": "x",
        "smiles": "[O-]C",
        "ligand_class": "anionic_O",
        "complex_charge": 1,
        "status": "ok",
        "reason": "",
        "complex_xyz": to_extxyz(atoms),
    }
    res = run_job(row, settings_from_mapping({"tier": "pointcharge"}))
    lab = label_row(res)
    assert lab["status"] == "failed"
    assert "dft relaxation failed: binding mode: ligand 2 (O11) left Dy" in lab["reason"]


def test_xtb_method_marks_the_geometry(ome):
    from smmflow.stages.geometry import label_geometry

    text, summary = label_geometry(to_extxyz(ome), "xtb")
    assert summary["status"] == "ok"
    atoms = from_extxyz(text)
    assert atoms.info["geometry_method"] == "xtb" and geometry_failure(text) == ""
    np.testing.assert_allclose(atoms.get_positions(), ome.get_positions(), atol=1e-6)
    assert label_geometry("", "dft")[0] == ""  # no xTB geometry: nothing to relax, the proxy failure is reported
    with pytest.raises(ValueError, match="unknown geometry method"):
        label_geometry(to_extxyz(ome), "b3lyp")


CHEAP = {"basis": "sto-3g", "grid_level": 0, "start_grid_level": 0, "disp": "none", "conv_tol": 1e-6}


def test_unconverged_scf_is_a_failed_geometry(ome):
    """One SCF cycle cannot converge: a failed geometry with the reason, no exception (a few s)."""
    from smmflow.stages.geometry import label_geometry

    text, summary = label_geometry(to_extxyz(ome), "dft", {**CHEAP, "max_cycle": 1}, threads=1)
    assert (summary["status"], summary["reason"]) == ("failed", "SCF not converged at the start geometry")
    assert summary["n_gradients"] == 0
    assert geometry_failure(text) == "dft relaxation failed: SCF not converged at the start geometry"


@pytest.mark.slow
def test_unconverged_optimisation_is_a_failed_geometry(ome):
    """max_steps=1 cannot converge from the builder's geometry: a marked xTB geometry, no exception
    (~35 CPU-s: SCF + 2 gradients in a minimal basis). geomeTRIC's logging set-up leaves the root
    logger (a workflow job's rule log) as it was."""
    import logging

    from smmflow.stages.geometry import label_geometry

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    text, summary = label_geometry(to_extxyz(ome), "dft", {**CHEAP, "max_steps": 1}, threads=1)
    assert summary["status"] == "failed"
    assert summary["reason"] == "geometry not converged in 1 steps"
    assert summary["n_gradients"] in (1, 2)  # geomeTRIC evaluates the start and the one step it may take
    assert (root.handlers, root.level) == (handlers, level)
    assert geometry_failure(text) == "dft relaxation failed: geometry not converged in 1 steps"
    np.testing.assert_allclose(from_extxyz(text).get_positions(), ome.get_positions(), atol=1e-6)


# --------------------------------------------------------------------------------------------
# the real thing (slow)
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_dy_ome2_relaxes_to_dft_dy_o(tmp_path):
    """[Dy(H2O)5(OMe)2]+: xTB, then BP86-D3(BJ)/def2-SVP + lcecp-1-SVP; Dy-O(methoxide) ~2.1 A
    (xTB gives ~1.97 A)."""
    from smmflow.geometry.descriptors import dy_donor_distances
    from smmflow.stages.geometry import label_geometry
    from smmflow.xtb.relax import relax_complex

    start, _ = relax_complex(build_complex("[O-]C", seed=0))
    text, summary = label_geometry(to_extxyz(start), "dft", {}, threads=1)
    assert summary["status"] == "ok", summary
    atoms = from_extxyz(text)
    r1, r2 = dy_donor_distances(atoms)
    assert 2.05 <= r1 <= 2.15 and 2.05 <= r2 <= 2.15, (r1, r2)
    assert binding_problems(atoms) == []
    assert atoms.info["geometry_method"] == "dft"
    assert len(atoms.get_initial_charges()) == len(atoms)  # xTB charges of the DFT geometry
    assert abs(sum(atoms.get_initial_charges()) - 1.0) < 1e-3


# --------------------------------------------------------------------------------------------
# CLI and config
# --------------------------------------------------------------------------------------------
def _smmflow(*args):
    return subprocess.run(
        [sys.executable, "-m", "smmflow.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (("build", "[O-]C", "--geometry", "dft"), "--geometry dft needs --relax"),
        (("build", "[O-]C", "--relax", "--geometry", "b3lyp"), "invalid choice"),
        (("build", "[O-]C", "--relax", "--geometry", "dft", "--dft-max-steps", "0"), "--dft-max-steps"),
    ],
)
def test_build_cli_bad_geometry_inputs(args, words):
    proc = _smmflow(*args)
    assert proc.returncode == 2
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture()
def config(repo_root):
    return yaml.safe_load((repo_root / "config/config.yaml").read_text())


@pytest.fixture()
def schema(repo_root):
    return load_schema(repo_root / "workflow/schemas/config.schema.yaml")


def test_default_config_keeps_xtb_and_paper_uses_dft(repo_root, config, schema):
    validate_config(copy.deepcopy(config), schema)
    assert config["geometry"]["method"] == "xtb"
    paper = yaml.safe_load((repo_root / "config/paper.yaml").read_text())
    assert paper["geometry"]["method"] == "dft"


@pytest.mark.parametrize(
    "path, value, words",
    [
        (("method",), "b3lyp", "'b3lyp' is not one of"),
        (("dft", "ecp"), "def2-SVP", "does not match"),
        (("dft", "max_steps"), 0, "less than the minimum"),
        (("dft", "disp"), "d5", "is not one of"),
        (("dft", "maxsteps"), 3, "Additional properties"),
        (("dft", "convergence", "grms"), -1e-3, "less than or equal to the minimum"),
    ],
)
def test_bad_geometry_config_is_one_clear_error(config, schema, path, value, words):
    cfg = copy.deepcopy(config)
    block = cfg["geometry"]
    for key in path[:-1]:
        block = block[key]
    block[path[-1]] = value
    with pytest.raises(ConfigError, match="geometry") as err:
        validate_config(cfg, schema)
    assert words in str(err.value)


def test_geometry_params_hold_no_resources(config):
    from smmflow.config import result_settings

    settings = result_settings(config["geometry"])
    assert "threads" not in settings and "mem_mb" not in settings and "runtime_min" not in settings


# --------------------------------------------------------------------------------------------
# the flexible xTB option: waters free, no exact C2
# --------------------------------------------------------------------------------------------
def _c2_error(atoms) -> float:
    """RMS distance (A) between the complex and its image under the builder's C2 about x (ligands swapped)."""
    from smmflow.geometry.contract import donor_indices

    p = atoms.get_positions()
    d1, d2 = donor_indices(atoms)
    img = p @ np.diag([1.0, -1.0, -1.0])
    perm = list(range(d1)) + list(range(d2, len(atoms))) + list(range(d1, d2))  # ligand 1 <-> ligand 2
    return float(np.sqrt(np.mean(np.sum((img[perm][d1:] - p[d1:]) ** 2, axis=1))))


def test_flexible_free_waters_break_c2(ome):
    from smmflow.xtb.relax import relax_complex

    sym, _ = relax_complex(ome, mode="rigid", fmax=0.1, max_steps=30)
    assert _c2_error(sym) < 1e-4  # the symmetric start stays symmetric
    free, info = relax_complex(
        ome, mode="flexible", waters="free", symmetry_break_a=0.05, seed=3, fmax=0.1, max_steps=300
    )
    assert info.converged
    assert _c2_error(free) > 1e-3
    p, p0 = free.get_positions(), ome.get_positions()
    assert np.allclose(p[0], p0[0])  # Dy is the anchor
    assert not np.allclose(p[[1, 4, 7, 10, 13]], p0[[1, 4, 7, 10, 13]], atol=1e-3)  # water O moved
    assert binding_problems(free) == []
    again, _ = relax_complex(
        ome, mode="flexible", waters="free", symmetry_break_a=0.05, seed=3, fmax=0.1, max_steps=300
    )
    np.testing.assert_allclose(again.get_positions(), p)  # seeded
    with pytest.raises(ValueError, match="symmetry_break_a"):
        relax_complex(ome, symmetry_break_a=-0.1)


def test_every_config_key_reaches_the_relaxer(config, schema, ome):
    """The rule's params (the validated geometry.dft block without resources) configure the relaxer."""
    from smmflow.config import result_settings
    from smmflow.dft.relax import relaxer_from_config

    cfg = copy.deepcopy(config)
    cfg["geometry"]["dft"]["verbose"] = 0
    validate_config(cfg, schema)
    params = result_settings(cfg["geometry"]["dft"])
    assert "verbose" not in params
    r = relaxer_from_config(ome, params, threads=2)
    assert (r.xc, r.dy_basis, r.disp, r.grid_level, tuple(r.dy_atom_grid)) == (
        "bp86",
        "lcecp-1-SVP",
        "d3bj",
        1,
        (85, 302),
    )
    assert r.binding.max_dy_donor_a == 3.0 and r.max_steps == 30 and r.threads == 2
