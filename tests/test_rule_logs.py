"""Every workflow script logs through smmflow.stages.logs.rule_log: tracebacks, warnings and library
output of a job land in its rule log, in one format."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "workflow" / "scripts").glob("*.py"))


def run_as_rule(script: Path, log: Path, inputs: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a workflow script in a fresh interpreter with a stand-in for Snakemake's ``snakemake`` object."""
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import runpy, types
        class Files(list):
            def __init__(self, named):
                super().__init__(named.values())
                self.__dict__.update(named)
        snakemake = types.SimpleNamespace(
            input=Files({inputs!r}), output=Files({{"selection": {str(tmp_path / "out.tsv")!r}}}),
            log=[{str(log)!r}], params=types.SimpleNamespace(size=2, seed=0, strata_columns=[], n_bins=2),
            threads=1, rule="select_subset", wildcards=types.SimpleNamespace(), config={{}},
            resources=types.SimpleNamespace(mem_mb=1000))
        runpy.run_path({str(script)!r}, init_globals={{"snakemake": snakemake}}, run_name="__main__")
    """))
    return subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=120)


def test_a_failing_script_leaves_its_traceback_in_the_rule_log(tmp_path):
    log = tmp_path / "logs" / "select_subset.log"
    script = next(s for s in SCRIPTS if s.name == "select_subset.py")
    proc = run_as_rule(script, log, {"proxies": str(tmp_path / "missing.parquet")}, tmp_path)
    assert proc.returncode != 0
    text = log.read_text()
    assert "Traceback (most recent call last)" in text
    assert "missing.parquet" in text  # the error itself, not only the frames
    assert "Traceback" not in proc.stderr  # it went to the log, not to Snakemake's terminal


def test_rule_log_replaces_an_old_log_and_formats_logging(tmp_path):
    log = tmp_path / "rule.log"
    log.write_text("stale line from an earlier attempt\n")
    code = textwrap.dedent(f"""
        import logging, types, warnings
        from smmflow.stages.logs import rule_log
        lg = rule_log(types.SimpleNamespace(log=[{str(log)!r}], rule="demo"))
        lg.info("hello %d", 42)
        warnings.warn("a library warning")
        print("plain stdout")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    text = log.read_text()
    assert "stale line" not in text
    assert " INFO demo: hello 42" in text
    assert "a library warning" in text and "plain stdout" in text


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_starts_with_rule_log(script):
    tree = ast.parse(script.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "rule_log"]
    assert calls, f"{script.name} does not call smmflow.stages.logs.rule_log(snakemake)"
    assert "basicConfig" not in script.read_text()
