"""Rule revalidate: predicted vs CASSCF first excited KD, hit rates, improvement ratio (one round)."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import read_table, write_json_atomic, write_table
from smmflow.stages.revalidation import hit_threshold, revalidation_metrics, revalidation_table

threshold = hit_threshold(read_table(snakemake.input.pool_labels), snakemake.params.threshold_quantile,  # noqa: F821
                          snakemake.params.threshold_cm1)  # noqa: F821
table = revalidation_table(read_table(snakemake.input.selection), read_table(snakemake.input.labels), threshold)  # noqa: F821
metrics = revalidation_metrics(table, threshold)
log.info("threshold %.1f cm-1; generated %s; baseline %s; improvement %s", threshold,
             metrics["generated"], metrics["baseline"], metrics["improvement_ratio"])
write_table(table, snakemake.output.table)  # noqa: F821
write_json_atomic(snakemake.output.metrics, metrics)  # noqa: F821
