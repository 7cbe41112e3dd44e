"""Rule aggregate_proxies: concatenate the proxy shards into proxies.parquet."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import read_table, write_table
from smmflow.xtb.proxies import aggregate

table = aggregate([read_table(p) for p in snakemake.input.shards])  # noqa: F821
failed = table[table["status"] != "ok"]
log.info("%d ligands, %d ok, %d failed", len(table), len(table) - len(failed), len(failed))
for reason, n in failed["reason"].str.split(":").str[0].value_counts().items():
    log.info("failed %s: %d", reason, n)
write_table(table, snakemake.output[0])  # noqa: F821
