"""The workflow end to end on a tiny config: it runs, a rerun does nothing, bad config fails clearly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workflow


def snakemake_command(repo: Path, workdir: Path, *args: str) -> list[str]:
    """The snakemake command line for ``workdir``, which sees the repo's config/ and resources/ as a
    project dir does (the links are made here)."""
    for name in ("config", "resources"):
        if not (workdir / name).exists():
            (workdir / name).symlink_to(repo / name)
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]


def snakemake(
    repo: Path, workdir: Path, *args: str, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` (:func:`snakemake_command`), optionally with another environment."""
    cmd = snakemake_command(repo, workdir, *args)
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=1800, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def job_counts(out: str) -> dict[str, int]:
    """Job counts of a snakemake (dry-)run's "Job stats" table."""
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="module")
def tiny_run(repo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("tiny")
    shutil.copy(repo_root / "config/tiny.yaml", work / "tiny.yaml")
    proc = snakemake(repo_root, work, "--configfile", str(work / "tiny.yaml"))
    (work / "snakemake.log").write_text(proc.stdout + proc.stderr)
    return work


def test_tiny_run_produces_tables(tiny_run):
    import pandas as pd

    lig = pd.read_parquet(tiny_run / "results/ligands/ligands.parquet")
    assert len(lig) > 0
    assert lig["ligand_id"].is_unique
    prox = pd.read_parquet(tiny_run / "results/proxies/proxies.parquet")
    assert set(prox["ligand_id"]) == set(lig["ligand_id"])
    assert (prox["status"] == "ok").mean() > 0.5


def job_priorities(log: str, rule: str) -> dict[str, int]:
    """ligand_id -> priority of every ``rule`` job in a snakemake log (0 where none is printed)."""
    out, current = {}, None
    for line in log.splitlines():
        if line.startswith(("rule ", "localrule ")):
            current = line.split()[1].rstrip(":") == rule
            lid = None
        elif current and line.strip().startswith("wildcards:"):
            lid = line.split("ligand_id=")[1].split(",")[0].strip()
            out[lid] = 0
        elif current and lid and line.strip().startswith("priority:"):
            out[lid] = int(line.split()[1])
    return out


def test_largest_labels_are_scheduled_first(tiny_run):
    """Every label and re-validation job carries the cost estimate of its ligand as its priority, so
    the largest start first (a round does not wait for one long job started last)."""
    from smmflow.stages.casscf import label_priority, selected_ids

    log = (tiny_run / "snakemake.log").read_text()
    res = tiny_run / "results"
    for rule, sel in (
        ("casscf", res / "casscf/selection.tsv"),
        ("casscf_geometry", res / "casscf/selection.tsv"),
        ("casscf_revalidation", res / "rounds/0/revalidation/selection.tsv"),
    ):
        prio = {k: v for k, v in job_priorities(log, rule).items() if k in selected_ids(sel)}
        assert prio, f"no {rule} job in the log"
        assert prio == {lid: label_priority(sel, lid) for lid in prio}
        assert min(prio.values()) > 0


def test_rule_logs_live_under_the_results_directory(tiny_run):
    """Each run's logs sit beside its results (``<results_dir>/logs/<rule>/``), so two configs with
    different ``results_dir`` (e.g. the default run and config/study.yaml) never overwrite each
    other's logs."""
    logs = tiny_run / "results" / "logs"
    for rule in ("enumerate_ligands", "proxy_xtb", "casscf", "train_vae", "casscf_revalidation"):
        assert any(p.suffix == ".log" for p in (logs / rule).rglob("*")), rule
    assert not (tiny_run / "logs").exists()


def test_tiny_run_pointcharge_proxies(tiny_run):
    import numpy as np
    import pandas as pd

    from smmflow import tables

    pc = pd.read_parquet(tiny_run / "results/proxies/pointcharge.parquet")
    prox = pd.read_parquet(tiny_run / "results/proxies/proxies.parquet")
    assert tuple(pc.columns) == tables.POINTCHARGE_PROXY_COLUMNS
    assert set(pc["ligand_id"]) == set(prox.loc[prox["status"] == "ok", "ligand_id"])  # every relaxed complex
    ok = tables.usable(pc)
    assert len(ok) >= len(pc) - 1
    kd = ok[[f"pc_kd{i}_cm1" for i in range(2, 9)]].to_numpy(float)
    assert (kd > 0).all() and (np.diff(kd, axis=1) >= -1e-6).all() and (kd[:, -1] < 3000).all()
    assert (ok["pc_g1_z"] > 10).all()  # axial ligands: an easy-axis ground doublet


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

    cand = pd.read_parquet(tiny_run / "results/rounds/0/generation/candidates.parquet")
    ok = cand[cand["status"] == "ok"]
    assert len(ok) > 0
    for smi in ok["smiles"]:
        mol = Chem.MolFromSmiles(smi)
        assert mol is not None, smi
        donor = mol.GetAtomWithIdx(0)
        assert donor.GetSymbol() in ("O", "N"), smi
        assert Chem.GetFormalCharge(mol) in (0, -1), smi
        assert donor.GetNumRadicalElectrons() == 0, smi


def test_tiny_run_revalidates_every_round(tiny_run):
    import json

    import pandas as pd

    from smmflow.chem.enumerate import LigandFilters, ligand_space_reason

    res = tiny_run / "results"
    seen: set[str] = set(pd.read_parquet(res / "casscf/labels.parquet")["ligand_id"])
    n_labels = []
    for r in (0, 1):
        sel = pd.read_csv(res / f"rounds/{r}/revalidation/selection.tsv", sep="\t")
        gen = sel[sel["source"] == "generated"]
        assert 1 <= len(gen) <= 2 and (sel["source"] == "baseline").sum() == 1
        assert not set(sel["ligand_id"]) & seen, "a round re-validated an already labelled ligand"
        seen |= set(sel["ligand_id"])
        for smi in gen["smiles"]:
            assert ligand_space_reason(smi, LigandFilters()) is None, smi
        table = pd.read_csv(res / f"rounds/{r}/revalidation/revalidation.tsv", sep="\t")
        assert table["ligand_id"].tolist() == sel["ligand_id"].tolist()
        ok = table[table["status"] == "ok"]
        assert (ok["computed_kd2_cm1"] > 0).all()
        m = json.loads((res / f"rounds/{r}/revalidation/metrics.json").read_text())
        assert m["generated"]["n"] == len(gen)
        # every configured baseline has its block (tiny.yaml asks for all three), and the round names its winners
        assert m["methods"] == ["generated", "baseline", "class_matched", "surrogate_screen"]
        assert all(m[k]["n"] == (sel["source"] == k).sum() for k in m["methods"])
        assert m["winner_mean_kd2"] in [*m["methods"], None] and m["strongest_baseline"] in [*m["methods"][1:], None]
        n_labels.append(json.loads((res / f"rounds/{r}/model/metrics.json").read_text())["kd_head"]["n_labels"])
    round0_new = pd.read_parquet(res / "rounds/0/revalidation/labels.parquet")
    assert n_labels[1] == n_labels[0] + int((round0_new["status"] == "ok").sum())  # round 1 learnt round 0's labels
    summary = pd.read_csv(res / "report/rounds.tsv", sep="\t")
    assert summary["round"].tolist() == [0, 1]


def test_tiny_run_pools_the_rounds(tiny_run):
    """The report pools every round per method (counts add up over the rounds) and says whether
    generation beats the strongest baseline."""
    import pandas as pd

    res = tiny_run / "results"
    pooled = pd.read_csv(res / "report/methods_pooled.tsv", sep="\t").set_index("method")
    reval = pd.concat([pd.read_csv(p, sep="\t") for p in sorted(res.glob("rounds/*/revalidation/revalidation.tsv"))])
    assert dict(pooled["n"]) == dict(reval["source"].value_counts())
    assert pooled["strongest_baseline"].sum() == 1
    log = (res / "logs/report_figures/report_figures.log").read_text()
    assert "generation" in log and "strongest baseline" in log or "no comparison" in log


def test_summary_command_prints_every_section_of_the_tiny_run(tiny_run, capsys):
    from smmflow.cli import main

    assert main(["summary", str(tiny_run / "results")]) == 0
    out = capsys.readouterr().out
    for head in ("## CASSCF labels", "## Learning curve", "## Re-validation per round and method",
                 "## All rounds pooled (from report/methods_pooled.tsv)"):
        assert head in out
    assert "| 1 | generated |" in out  # both rounds


def test_report_html(repo_root, tiny_run):
    snakemake(repo_root, tiny_run, "--configfile", str(tiny_run / "tiny.yaml"), "--report", "report.html")
    html = (tiny_run / "report.html").read_text(errors="replace")
    assert len(html) > 10_000
    for name in (
        "parity.png",
        "hit_rate.png",
        "latent_space.png",
        "kd_ladders.png",
        "top_ligands.png",
        "learning_curve.png",
    ):
        assert name in html, name


def test_adding_a_round_reuses_the_earlier_ones(repo_root, tiny_run):
    more = tiny_run / "three_rounds.yaml"
    more.write_text("active_learning: {rounds: 3, top_k: 2, baseline_k: 1}\n")
    proc = snakemake(repo_root, tiny_run, "--configfile", str(tiny_run / "tiny.yaml"), str(more), "-n")
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("train_vae") == 1 and counts.get("generate") == 1, counts
    assert "proxy_xtb" not in counts and "casscf" not in counts and "learning_curve" not in counts, counts


def test_rerun_does_nothing(repo_root, tiny_run):
    proc = snakemake(repo_root, tiny_run, "--configfile", str(tiny_run / "tiny.yaml"), "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_editing_what_changes_no_result_plans_nothing(repo_root, tiny_run):
    """Resources and verbosity are not rule params: editing them reruns nothing."""
    import yaml

    edits = {
        "casscf": {"mem_mb": 8000, "runtime_min": 99, "threads": 2, "settings": {"verbose": 4}},
        "learning": {"mem_mb": 8000, "runtime_min": 99, "threads": 2, "gpu": True},
        "proxies": {"shard_runtime_min": 99, "dft": {"threads": 1, "runtime_min": 9}},
    }
    (tiny_run / "resources_only.yaml").write_text(yaml.safe_dump(edits))
    proc = snakemake(
        repo_root, tiny_run, "-n", "--configfile", str(tiny_run / "tiny.yaml"), str(tiny_run / "resources_only.yaml")
    )
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    # ... while a setting that changes the labels does plan the CASSCF jobs again (the check can fail)
    (tiny_run / "soc.yaml").write_text(yaml.safe_dump({"casscf": {"settings": {"soc_scale": 0.99}}}))
    proc = snakemake(repo_root, tiny_run, "-n", "--configfile", str(tiny_run / "tiny.yaml"), str(tiny_run / "soc.yaml"))
    assert job_counts(proc.stdout).get("casscf", 0) > 0, proc.stdout[-3000:]


def test_labels_carry_provenance_and_the_geometry_they_were_computed_on(tiny_run):
    import hashlib

    import pandas as pd

    lab = pd.read_parquet(tiny_run / "results/casscf/labels.parquet")
    assert len(list((tiny_run / "results/casscf/free_ion").glob("dy3_free_ion_*.npz"))) == 1
    for _, row in lab.iterrows():
        geom = (tiny_run / f"results/casscf/geometries/{row['ligand_id']}.extxyz").read_text()
        assert row["geometry_sha256"] == hashlib.sha256(geom.encode()).hexdigest()
        assert row["engine"] == "pyscf" and row["engine_version"] and row["smmflow_version"]
        assert json.loads(row["settings_json"])["tier"] == row["tier"]
        assert "max_memory_mb" not in json.loads(row["settings_json"])


def test_a_changed_geometry_relabels_only_that_ligand(repo_root, tiny_run, tmp_path):
    """The CASSCF job of a ligand reruns when its geometry changes, not when the proxy table is
    merely rewritten (the subset checkpoint is re-evaluated either way, which is cheap)."""
    import pandas as pd

    work = tmp_path / "copy"
    shutil.copytree(tiny_run, work, symlinks=True)
    results = sorted((work / "results/casscf/pointcharge").glob("*.json"))
    stamp = {p.name: p.stat().st_mtime_ns for p in results}
    # the labels table as the target (--until stops at the subset checkpoint)
    until = ("results/casscf/labels.parquet", "--configfile", str(work / "tiny.yaml"))
    proxies = work / "results/proxies/proxies.parquet"
    df = pd.read_parquet(proxies)
    df.to_parquet(proxies, index=False)  # rewritten, same content
    snakemake(repo_root, work, *until)
    assert {p.name: p.stat().st_mtime_ns for p in results} == stamp  # no label recomputed
    lid = pd.read_parquet(work / "results/casscf/labels.parquet")["ligand_id"].iloc[0]
    i = df.index[df["ligand_id"] == lid][0]
    lines = df.at[i, "complex_xyz"].splitlines()
    x = lines[-1].split()
    lines[-1] = " ".join([x[0], f"{float(x[1]) + 0.01:.8f}", *x[2:]])  # move one ligand atom by 0.01 A
    df.at[i, "complex_xyz"] = "\n".join(lines) + "\n"
    df.to_parquet(proxies, index=False)
    snakemake(repo_root, work, *until)
    changed = {p.name for p in results if p.stat().st_mtime_ns != stamp[p.name]}
    assert changed == {f"{lid}.json"}, changed
    lab = pd.read_parquet(work / "results/casscf/labels.parquet").set_index("ligand_id")
    import hashlib

    # the label names the geometry file it was computed on: the moved xTB geometry, marked with its method
    geom = (work / f"results/casscf/geometries/{lid}.extxyz").read_text()
    assert "geometry_method=xtb" in geom.splitlines()[1]
    moved = [float(v) for v in geom.splitlines()[-1].split()[1:4]]
    assert moved[0] == pytest.approx(float(x[1]) + 0.01, abs=1e-6)
    assert lab.at[lid, "geometry_sha256"] == hashlib.sha256(geom.encode()).hexdigest()


@pytest.mark.parametrize(
    "text,message",
    [
        ("casscf: {seed: forty-two}\n", "config error at 'casscf.seed': 'forty-two' is not of type 'integer'"),
        ("casscf: {strata_columns: [no_such_column]}\n", "config error at 'casscf.strata_columns': unknown column(s)"),
        ("learning: {proxy_targets: [xtb_nonexistent]}\n", "config error at 'learning.proxy_targets'"),
    ],
)
def test_bad_config_fails_with_one_clear_message(repo_root, tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = snakemake(repo_root, tmp_path, "--configfile", str(bad), "-n", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert message in out
    assert "Job stats" not in out  # refused before any job is planned


def test_paper_config_dry_run_job_counts(repo_root, tmp_path):
    """The paper-scale config plans one enumeration, 500 xTB shards, 500 pointcharge-proxy shards, one
    free-ion reference and the CASSCF checkpoint."""
    proc = snakemake(repo_root, tmp_path, "--configfile", str(repo_root / "config/paper.yaml"), "-n")
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["enumerate_ligands"] == 1
    assert counts["proxy_xtb"] == 500
    assert counts["aggregate_proxies"] == 1
    assert counts["proxy_pointcharge"] == 500 and counts["aggregate_pointcharge"] == 1
    assert counts["free_ion_reference"] == 1
    assert counts["select_subset"] == 1


def test_kill_9_mid_run_then_rerun_completes_with_sound_outputs(repo_root, tiny_run, tmp_path):
    """kill -9 on snakemake (and its jobs) while CASSCF jobs run; the rerun finishes, every output
    reads back, and the labels equal those of the uninterrupted tiny run."""
    import os
    import signal
    import time

    import pandas as pd

    work = tmp_path / "killed"
    work.mkdir()
    cfg = work / "tiny_casscf.yaml"
    cfg.write_text((repo_root / "config/tiny.yaml").read_text() + "targets: [ligands, proxies, casscf]\n")
    cmd = snakemake_command(repo_root, work, "--configfile", str(cfg))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    casscf_dir = work / "results/casscf/pointcharge"
    deadline = time.monotonic() + 900
    try:
        while not (casscf_dir.exists() and any(casscf_dir.glob("*.json"))):
            assert proc.poll() is None, "the run ended before any CASSCF job finished"
            assert time.monotonic() < deadline, "no CASSCF result within 15 min"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # snakemake and every job it started
        proc.wait()
    assert not (work / "results/casscf/labels.parquet").exists()

    snakemake(repo_root, work, "--configfile", str(cfg), "--unlock")
    snakemake(repo_root, work, "--configfile", str(cfg), "--rerun-incomplete")
    for path in (work / "results").rglob("*.parquet"):
        pd.read_parquet(path)  # every table reads back whole
    for path in (work / "results").rglob("*.json"):
        json.loads(path.read_text())
    cols = ["ligand_id", "status", "kd2_cm1", "kd8_cm1"]
    again = pd.read_parquet(work / "results/casscf/labels.parquet")[cols].sort_values("ligand_id", ignore_index=True)
    first = pd.read_parquet(tiny_run / "results/casscf/labels.parquet")[cols].sort_values(
        "ligand_id", ignore_index=True
    )
    pd.testing.assert_frame_equal(again, first, check_exact=False, atol=0.5)
    proc2 = snakemake(repo_root, work, "--configfile", str(cfg), "-n")
    assert "Nothing to be done" in proc2.stdout + proc2.stderr


def test_tiny_run_reproduces_under_other_threads_and_hash_seed(repo_root, tiny_run, tmp_path):
    """Issue 15: a second tiny run with 2 learning threads instead of 1 (so the learning jobs also take
    both cores and the jobs run in another order), OpenMP/MKL threads and Python's hash seed changed in
    the environment, gives the same science tables bit for bit
    (tests/reproducibility.py: every parquet/tsv/json/extxyz/model.pt under results/, timing fields and
    Snakemake benchmarks left out). Round 0 only, to keep CI short: each of its files must equal the
    fixture run's. It fails when a result depends on the thread count (e.g. torch trained with the
    rule's threads instead of smmflow.ml.rng.RESULT_THREADS), on set/dict order under another hash seed,
    on job order or on the wall clock."""
    import os

    from reproducibility import compare_results, science_files

    work = tmp_path / "again"
    work.mkdir()
    cfg = work / "other_conditions.yaml"
    cfg.write_text("learning: {threads: 2}\nactive_learning: {rounds: 1}\n")
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345",
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
        "OPENBLAS_NUM_THREADS": "2",
    }
    proc = snakemake(repo_root, work, "--configfile", str(tiny_run / "tiny.yaml"), str(cfg), check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-6000:]
    again = science_files(work / "results")
    assert "rounds/0/revalidation/metrics.json" in again and "rounds/0/model/model.pt" in again
    assert not any(p.startswith("rounds/1/") for p in again)
    diffs = [
        d
        for d in compare_results(tiny_run / "results", work / "results")
        if not d.startswith(f"only in {tiny_run / 'results'}: rounds/1/")
    ]
    assert not diffs, "\n".join(diffs[:40])
