"""Rule learning_curve: held-out R2/MAE of the first excited KD vs number of labels."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.stages.learning import learning_curve_from_tables

settings = dict(snakemake.params.settings, threads=snakemake.threads)  # noqa: F821
df = learning_curve_from_tables(
    snakemake.input.ligands, snakemake.input.proxies, snakemake.input.labels,  # noqa: F821
    snakemake.output.table, snakemake.output.plot, settings,  # noqa: F821
    physics_proxies_path=list(snakemake.input.physics_proxies) or None,  # noqa: F821
)
log.info("\n%s", df.to_string())
