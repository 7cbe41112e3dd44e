"""Rule revalidate: predicted vs CASSCF first excited KD per method, winners, improvement ratio (one round)."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import read_table, write_json_atomic, write_table
from smmflow.stages.revalidation import hit_threshold, revalidation_metrics, revalidation_table
from smmflow.tables import BASELINE_SOURCES, SOURCE_GENERATED

sm = snakemake  # noqa: F821 - the rule object Snakemake injects

p = sm.params
threshold = hit_threshold(read_table(sm.input.pool_labels), p.threshold_quantile, p.threshold_cm1)
table = revalidation_table(read_table(sm.input.selection), read_table(sm.input.labels), threshold)
metrics = revalidation_metrics(table, threshold, [SOURCE_GENERATED, *(BASELINE_SOURCES[b] for b in p.baselines)])
for name in metrics["methods"]:
    log.info("%s: %s", name, metrics[name])
log.info(
    "threshold %.1f cm-1; mean-KD2 winner %s, best-found winner %s; strongest baseline %s, improvement %s (add-one %s)",
    threshold,
    metrics["winner_mean_kd2"],
    metrics["winner_best_found"],
    metrics["strongest_baseline"],
    metrics["improvement_ratio"],
    metrics["improvement_ratio_add_one"],
)
write_table(table, sm.output.table)
write_json_atomic(sm.output.metrics, metrics)
