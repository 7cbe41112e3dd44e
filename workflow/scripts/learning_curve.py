"""Rule learning_curve: held-out R2/MAE of the first excited KD vs number of labels."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.ml.rng import RESULT_THREADS
from smmflow.stages.learning import learning_curve_from_tables

sm = snakemake  # noqa: F821 - the rule object Snakemake injects

# torch on RESULT_THREADS whatever the rule's threads: results independent of the thread count
settings = dict(sm.params.settings, threads=RESULT_THREADS)
df = learning_curve_from_tables(
    sm.input.ligands,
    sm.input.proxies,
    sm.input.labels,
    sm.output.table,
    sm.output.plot,
    settings,
    physics_proxies_path=list(sm.input.physics_proxies) or None,
)
log.info("\n%s", df.to_string())
