"""The workflow end to end on a tiny config: it runs, a rerun does nothing, bad config fails clearly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workflow


def snakemake(repo: Path, workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir``, which sees the repo's config/ and resources/ as a project dir does."""
    for name in ("config", "resources"):
        if not (workdir / name).exists():
            (workdir / name).symlink_to(repo / name)
    cmd = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(repo / "Snakefile"),
        "--directory", str(workdir),
        "--cores", "2",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="module")
def tiny_run(repo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    shutil.copy(repo_root / "config/tiny.yaml", work / "tiny.yaml")
    snakemake(repo_root, work, "--configfile", str(work / "tiny.yaml"))
    return work


def test_tiny_run_produces_tables(tiny_run):
    import pandas as pd

    lig = pd.read_parquet(tiny_run / "results/ligands/ligands.parquet")
    assert len(lig) > 0
    assert lig["ligand_id"].is_unique
    prox = pd.read_parquet(tiny_run / "results/proxies/proxies.parquet")
    assert set(prox["ligand_id"]) == set(lig["ligand_id"])
    assert (prox["status"] == "ok").mean() > 0.5


def test_tiny_run_casscf_labels_are_physical(tiny_run):
    import numpy as np
    import pandas as pd

    from smmflow.tables import KD_COLUMNS, LABEL_COLUMNS, check_columns

    lab = pd.read_parquet(tiny_run / "results/casscf/labels.parquet")
    check_columns(lab, LABEL_COLUMNS, "labels")
    assert len(lab) == 4
    ok = lab[lab["status"] == "ok"]
    assert len(ok) >= 3, lab[["ligand_id", "status", "reason"]]
    kd = ok[list(KD_COLUMNS)].to_numpy(float)
    assert np.allclose(kd[:, 0], 0.0)
    assert (np.diff(kd, axis=1) >= -1e-6).all()  # KD ladder ascending
    assert (kd[:, 1] > 0).all() and (kd[:, -1] < 3000).all()  # inside 6H15/2


def test_tiny_run_generates_donor_first_ligands(tiny_run):
    import pandas as pd

    from rdkit import Chem

    cand = pd.read_parquet(tiny_run / "results/generation/candidates.parquet")
    ok = cand[cand["status"] == "ok"]
    assert len(ok) > 0
    for smi in ok["smiles"]:
        mol = Chem.MolFromSmiles(smi)
        assert mol is not None, smi
        donor = mol.GetAtomWithIdx(0)
        assert donor.GetSymbol() in ("O", "N"), smi
        assert Chem.GetFormalCharge(mol) in (0, -1), smi
        assert donor.GetNumRadicalElectrons() == 0, smi


def test_rerun_does_nothing(repo_root, tiny_run):
    proc = snakemake(repo_root, tiny_run, "--configfile", str(tiny_run / "tiny.yaml"), "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_bad_config_fails_with_one_clear_message(repo_root, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: forty-two\n")
    proc = snakemake(repo_root, tmp_path, "--configfile", str(bad), "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config error at 'seed': 'forty-two' is not of type 'integer'" in out


def test_paper_config_dry_run_job_counts(repo_root, tmp_path):
    """The paper-scale config plans one enumeration, 500 xTB shards and the CASSCF checkpoint."""
    proc = snakemake(repo_root, tmp_path, "--configfile", str(repo_root / "config/paper.yaml"), "-n")
    out = proc.stdout + proc.stderr
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["enumerate_ligands"] == 1
    assert counts["proxy_xtb"] == 500
    assert counts["aggregate_proxies"] == 1
    assert counts["select_subset"] == 1
