"""Every CLI error is one line on stderr, without a traceback, before any calculation."""

from __future__ import annotations

import subprocess
import sys

import pytest


def smmflow(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smmflow.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    for w in words:
        assert w in last, last


@pytest.mark.parametrize("args,words", [
    (["enumerate", "good.smi", "-o", "out.txt"], ["unknown table format", "out.txt"]),
    (["enumerate", "good.smi", "--rejected", "rej.json"], ["unknown table format"]),
    (["enumerate", "good.smi", "--max-heavy-atoms", "-1"], ["--max-heavy-atoms", "-1 < 1"]),
    (["enumerate", "good.smi", "--generate", "-5"], ["--generate", "-5 < 0"]),
    (["enumerate", "missing.smi"], ["not found"]),
    (["enumerate", "good.smi", "--elements", "C,Xq"], []),
    (["build", "OC", "--fmax", "-1"], ["--fmax"]),
    (["build", "C1CC"], ["smmflow build"]),
    (["nonsense"], ["unknown command"]),
])
def test_cli_errors_are_one_line(tmp_path, args, words):
    (tmp_path / "good.smi").write_text("CCO\n")
    proc = smmflow(*args, cwd=tmp_path)
    if args[:1] == ["enumerate"] and "--elements" in args:
        # an unknown element is not an error: ligands with it are rejected with the reason
        assert proc.returncode == 0, proc.stderr
        return
    assert_one_line_error(proc, *words)
    assert not (tmp_path / "out.txt").exists()


def test_check_config_names_file_and_line_of_a_yaml_error(tmp_path, repo_root):
    bad = tmp_path / "bad.yaml"
    bad.write_text("casscf:\n  subset_size: [1, 2\n")
    proc = smmflow("check-config", str(bad), "--workflow-dir", str(repo_root))
    assert_one_line_error(proc, f"{bad}:3:1", "YAML syntax error")
    ok = smmflow("check-config", str(repo_root / "config/tiny.yaml"), "--workflow-dir", str(repo_root))
    assert ok.returncode == 0, ok.stderr
    cols = tmp_path / "cols.yaml"
    cols.write_text("casscf: {strata_columns: [no_such_column]}\n")
    assert_one_line_error(smmflow("check-config", str(cols), "--workflow-dir", str(repo_root)),
                          "'casscf.strata_columns'", "no_such_column")


DATA = __import__("pathlib").Path(__file__).resolve().parent / "data"


@pytest.mark.parametrize("content,args,words", [
    ("", [], ["empty file"]),
    ("some notes, not a geometry\n", [], ["not an (extended) XYZ file"]),
    ("2\n\nXq 0 0 0\nO 0 0 2\n", [], ["unknown element", "Xq"]),
    ("2\n\nO 0 0 0\nDy 0 0 2\n", ["--charge", "1"], ["atom 1 must be Dy"]),
    (None, ["--charge", "2"], ["charge +2 does not match", "+1"]),
    (None, ["--charge", "1", "--soc-scale", "-3"], ["--soc-scale"]),
    (None, ["--charge", "1", "--tier", "huge"], ["--tier"]),
])
def test_casscf_cli_errors_are_one_line_before_any_calculation(tmp_path, content, args, words):
    f = tmp_path / "in.xyz"
    if content is None:
        f.write_text((DATA / "dy_oh2.xyz").read_text())
    else:
        f.write_text(content)
    proc = smmflow("casscf", str(f), *args, "--cache-dir", str(tmp_path / "cache"))
    assert_one_line_error(proc, *words)
    assert not (tmp_path / "cache").exists()  # stopped before the free-ion reference


def test_plain_xyz_gets_xtb_charges():
    from smmflow.cli.casscf import add_xtb_charges, check_charge, read_complex

    atoms = read_complex(str(DATA / "dy_oh2.xyz"), 1)
    assert "initial_charges" not in atoms.arrays
    check_charge(atoms)
    add_xtb_charges(atoms)
    q = atoms.get_initial_charges()
    assert abs(q.sum() - 1) < 1e-6
    ref = read_complex(str(DATA / "dy_oh2_xtb_charges.extxyz"), 1).get_initial_charges()
    assert abs(q - ref).max() < 1e-3  # the charges the shared reference file carries (tblite, same geometry)


def test_closed_shell_charge_rule():
    from smmflow.geometry.builder import build_complex
    from smmflow.geometry.contract import closed_shell_complex_charge

    assert closed_shell_complex_charge(build_complex("[O-]C", seed=0)) == 1
    assert closed_shell_complex_charge(build_complex("OC", seed=0)) == 3
    assert closed_shell_complex_charge(build_complex("[N-]1CCC1", seed=0)) == 1


def test_summary_rejects_a_missing_or_empty_results_directory(tmp_path, capsys):
    from smmflow.cli import main

    assert main(["summary", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["summary", str(tmp_path)]) == 1
    assert "holds no labels" in capsys.readouterr().err
