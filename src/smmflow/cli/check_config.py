"""``smmflow check-config``: the config files Snakemake would read, checked before any job.

Snakemake reports a YAML syntax error of a ``--configfile`` without file or line; this command names
both, then merges the files as Snakemake does (``config/config.yaml`` first, later files override
key by key) and applies the schema and the semantic checks of the workflow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from smmflow.config import ConfigError, check_config, load_schema


def load_yaml(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; ValueError naming the file, line and column of a syntax error."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{where}: YAML syntax error: {problem}") from None
    except OSError as err:
        raise ValueError(f"{path}: {err.strerror}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must hold a mapping, not {type(data).__name__}")
    return data


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Snakemake's config update: nested mappings are merged, everything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="smmflow check-config", description=__doc__.split("\n")[0])
    ap.add_argument("configfiles", nargs="*", type=Path, help="files given to snakemake --configfile")
    ap.add_argument("--workflow-dir", type=Path, default=Path("."),
                    help="folder with config/config.yaml and workflow/schemas (default: .)")
    args = ap.parse_args(argv)
    try:
        cfg = load_yaml(args.workflow_dir / "config" / "config.yaml")
        for f in args.configfiles:
            cfg = merge(cfg, load_yaml(f))
        check_config(cfg, load_schema(args.workflow_dir / "workflow" / "schemas" / "config.schema.yaml"))
    except (ValueError, ConfigError) as err:
        print(f"smmflow check-config: {err}", file=sys.stderr)
        return 2
    print("config ok: " + ", ".join(str(p) for p in [args.workflow_dir / "config" / "config.yaml",
                                                     *args.configfiles]))
    return 0
