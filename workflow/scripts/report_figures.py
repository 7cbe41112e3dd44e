"""Rule report_figures: parity, hit rate per round, latent space, KD ladders, ligand grid, summary."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too

import json
from pathlib import Path

import numpy as np
import pandas as pd

from smmflow import tables
from smmflow.io import read_table, write_table
from smmflow.ml.rng import pin_result_threads
from smmflow.ml.vae.trainer import latent_means, load_trained_model
from smmflow.stages import report
from smmflow.stages.revalidation import pooled_comparison, pooled_verdict
from smmflow.tables import SOURCE_GENERATED

sm = snakemake  # noqa: F821 - the rule object Snakemake injects

pin_result_threads()  # results independent of the thread count (smmflow.ml.rng)
inp, out = sm.input, sm.output

reval = report.revalidation_by_round(inp.revalidation)
summary = report.rounds_summary(inp.metrics)
write_table(summary, out.summary)
report.write_html_table(
    report.methods_summary(inp.metrics),
    out.summary_html,
    "Re-validation per round and method: generated vs the baselines",
)
report.write_html_table(reval, out.revalidation_html, "Re-validated ligands: predicted vs CASSCF first excited KD")
pooled = pooled_comparison(reval, seed=int(sm.params.seed))
verdict = pooled_verdict(pooled)
write_table(pooled, out.pooled)
report.write_html_table(pooled, out.pooled_html, f"All rounds pooled: {verdict}")
log.info("pooled over %d rounds: %s", len(summary), verdict)
threshold = json.loads(Path(inp.metrics[-1]).read_text())["threshold_cm1"]
report.plot_parity(reval, out.parity, threshold)
report.plot_hit_rate(summary, out.hit_rate)

new_labels = pd.concat([read_table(p) for p in inp.labels], ignore_index=True)
best = report.best_labelled(new_labels, 4)
report.plot_kd_ladders(best, out.ladders)
src = dict(zip(reval[tables.LIGAND_ID], zip(reval["source"], reval["round"])))
top = report.best_labelled(new_labels, 12)
report.draw_ligand_grid(
    top["smiles"],
    [
        f"{kd:.0f} cm-1 ({src[i][0]}, r{src[i][1]})"
        for kd, i in zip(top[tables.FIRST_EXCITED_KD], top[tables.LIGAND_ID])
    ],
    out.grid,
)

# latent space: pool + re-validated ligands, coloured by every CASSCF label the workflow has
tm = load_trained_model(inp.model)
pool = read_table(inp.pool)
smiles = list(dict.fromkeys([*pool["smiles"], *reval["smiles"]]))
labels = pd.concat([read_table(inp.pool_labels), new_labels], ignore_index=True)
kd = tables.usable(labels).drop_duplicates("smiles").set_index("smiles")[tables.FIRST_EXCITED_KD]
gen = set(reval.loc[reval["source"] == SOURCE_GENERATED, "smiles"])
report.plot_latent_space(
    latent_means(tm, smiles), kd.reindex(smiles).to_numpy(float), np.array([s in gen for s in smiles]), out.latent
)
log.info(
    "%d rounds, %d re-validated ligands, best %s",
    len(summary),
    len(reval),
    best[["smiles", tables.FIRST_EXCITED_KD]].to_dict("records"),
)
