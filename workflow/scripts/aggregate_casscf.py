"""aggregate_casscf: per-ligand CASSCF results -> labels table (status failed rows kept, flagged)."""

import logging

from smmflow.io import write_table
from smmflow.stages.casscf import aggregate_labels

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)  # noqa: F821
df = aggregate_labels(snakemake.input.results)  # noqa: F821
logging.info("%d labels, %d ok", len(df), int((df["status"] == "ok").sum()))
write_table(df, snakemake.output.labels)  # noqa: F821
