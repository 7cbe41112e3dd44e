"""``smmflow summary RESULTS_DIR``: the science tables of a (finished or running) workflow run as
Markdown, read from its result files only (nothing is recomputed except the pooled comparison
when the report has not been written yet).

Sections, each printed when its files exist: the CASSCF labels per ligand class; the learning curve
(median and range of R2 and MAE over seeds x splits, per pretraining mode and training-set size);
the re-validation per round and method; every round pooled per method, with the verdict against
the strongest baseline (docs/discovery.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from smmflow import tables


def markdown(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    """A Markdown table of ``df`` (no index); floats with ``floatfmt``, missing values empty."""

    def cell(v) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, float):
            return floatfmt.format(v)
        return str(v).replace("|", "\\|")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def labels_section(res: Path) -> str | None:
    path = res / "casscf" / "labels.parquet"
    if not path.exists():
        return None
    lab = pd.read_parquet(path)
    ok = tables.usable(lab)
    per = (
        lab.groupby("ligand_class")
        .agg(n=("status", "size"), n_ok=("status", lambda s: int((s == tables.STATUS_OK).sum())))
        .join(ok.groupby("ligand_class")[tables.FIRST_EXCITED_KD].agg(["median", "min", "max"]))
        .reset_index()
        .rename(columns={"median": "median KD2", "min": "min KD2", "max": "max KD2"})
    )
    tier = ", ".join(sorted(set(lab["tier"].astype(str)))) if "tier" in lab else "?"
    return f"## CASSCF labels ({len(ok)} of {len(lab)} usable; tier {tier}; cm-1)\n\n" + markdown(per, "{:.1f}")


def learning_curve_section(res: Path) -> str | None:
    path = res / "learning_curve" / "learning_curve.tsv"
    if not path.exists():
        return None
    lc = pd.read_csv(path, sep="\t")
    lc = lc[lc["status"] == tables.STATUS_OK]
    if lc.empty:
        return "## Learning curve\n\nno successful point"
    g = lc.groupby(["pretraining", "n_train"])
    out = g.agg(
        repeats=("r2", "size"),
        r2_median=("r2", "median"),
        r2_min=("r2", "min"),
        r2_max=("r2", "max"),
        mae_median=("mae", "median"),
        mae_min=("mae", "min"),
        mae_max=("mae", "max"),
    ).reset_index()
    return (
        "## Learning curve (held-out labels; median and range over model seeds x splits; MAE in cm-1)\n\n"
        + markdown(out)
    )


def rounds_sections(res: Path, seed: int) -> list[str]:
    from smmflow.stages import report
    from smmflow.stages.revalidation import pooled_comparison, pooled_verdict

    metrics = sorted(res.glob("rounds/*/revalidation/metrics.json"), key=lambda p: int(p.parts[-3]))
    if not metrics:
        return []
    per = report.methods_summary(metrics)
    cols = ["round", "method", "n", "n_ok", "n_hits", "hit_rate", "mean_kd2_cm1", "max_kd2_cm1", "best_smiles",
            "spearman", "wins"]
    thresholds = ", ".join(f"{json.loads(p.read_text())['threshold_cm1']:.1f}" for p in metrics)
    out = [
        f"## Re-validation per round and method (hit thresholds {thresholds} cm-1)\n\n"
        + markdown(per[[c for c in cols if c in per]], "{:.3g}")
    ]
    pooled_path = res / "report" / "methods_pooled.tsv"
    tsvs = [p.with_name("revalidation.tsv") for p in metrics]
    if pooled_path.exists():
        pooled, how = pd.read_csv(pooled_path, sep="\t"), "from report/methods_pooled.tsv"
    elif all(p.exists() for p in tsvs):
        pooled = pooled_comparison(report.revalidation_by_round(tsvs), seed=seed)
        how = f"computed here, bootstrap seed {seed}"
    else:
        return out
    out.append(f"## All rounds pooled ({how})\n\n{pooled_verdict(pooled)}.\n\n" + markdown(pooled, "{:.3g}"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="smmflow summary", description=__doc__.splitlines()[0])
    ap.add_argument("results_dir", type=Path, help="a workflow results directory (results_dir of the config)")
    ap.add_argument("--seed", type=int, default=2026,
                    help="bootstrap seed of the pooled comparison when the report has not been written "
                         "(the workflow uses active_learning.seed; default 2026 = the default config's)")
    args = ap.parse_args(argv)
    res = args.results_dir
    if not res.is_dir():
        print(f"smmflow summary: {res} is not a directory", file=sys.stderr)
        return 2
    parts = [s for s in (labels_section(res), learning_curve_section(res)) if s] + rounds_sections(res, args.seed)
    if not parts:
        print(f"smmflow summary: {res} holds no labels, learning curve or re-validation yet", file=sys.stderr)
        return 1
    print(f"# smmflow summary of {res}\n")
    print("\n\n".join(parts))
    return 0
