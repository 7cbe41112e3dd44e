"""Rule select_revalidation: top-K generated candidates + K random pool ligands of one round."""

import logging

import torch

from smmflow.io import read_table, write_table
from smmflow.ml.generate import predict_kd
from smmflow.ml.vae.trainer import load_trained_model
from smmflow.stages.revalidation import select_for_revalidation

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)  # noqa: F821
tm = load_trained_model(snakemake.input.model)  # noqa: F821
predict = (lambda smi, cls: predict_kd(tm, smi, cls)) if tm.ensemble is not None else None
sel = select_for_revalidation(
    read_table(snakemake.input.candidates), read_table(snakemake.input.pool),  # noqa: F821
    [read_table(p) for p in snakemake.input.labels],  # noqa: F821
    int(snakemake.params.top_k), int(snakemake.params.baseline_k), int(snakemake.params.seed),  # noqa: F821
    predict=predict,
)
logging.info("selected %s", sel["source"].value_counts().to_dict())
write_table(sel, snakemake.output.selection)  # noqa: F821
