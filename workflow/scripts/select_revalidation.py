"""Rule select_revalidation: top-K generated candidates + K random pool ligands of one round."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


import torch

from smmflow.io import read_table, write_table
from smmflow.ml.generate import predict_kd
from smmflow.ml.vae.trainer import load_trained_model
from smmflow.stages.revalidation import select_for_revalidation

torch.set_num_threads(snakemake.threads)  # noqa: F821
tm = load_trained_model(snakemake.input.model)  # noqa: F821
predict = (lambda smi, cls: predict_kd(tm, smi, cls)) if tm.ensemble is not None else None
sel = select_for_revalidation(
    read_table(snakemake.input.candidates), read_table(snakemake.input.pool),  # noqa: F821
    [read_table(p) for p in snakemake.input.labels],  # noqa: F821
    int(snakemake.params.top_k), int(snakemake.params.baseline_k), int(snakemake.params.seed),  # noqa: F821
    predict=predict,
)
log.info("selected %s", sel["source"].value_counts().to_dict())
write_table(sel, snakemake.output.selection)  # noqa: F821
