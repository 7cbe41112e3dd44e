"""aggregate_casscf: per-ligand CASSCF results -> labels table (status failed rows kept, flagged)."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import write_table
from smmflow.stages.casscf import aggregate_labels

df = aggregate_labels(snakemake.input.results)  # noqa: F821
log.info("%d labels, %d ok", len(df), int((df["status"] == "ok").sum()))
write_table(df, snakemake.output.labels)  # noqa: F821
