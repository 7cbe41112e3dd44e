"""Rule aggregate_pointcharge: the pointcharge-ladder proxy shards -> proxies/pointcharge.parquet."""

from smmflow.stages.logs import rule_log

snakemake = globals()["snakemake"]  # injected by Snakemake
log = rule_log(snakemake)  # first: errors of the imports below land in the rule log too

from smmflow import tables
from smmflow.io import read_table, write_table
from smmflow.stages.casscf import concat_shards

table = concat_shards([read_table(p) for p in snakemake.input.shards], tables.POINTCHARGE_PROXY_COLUMNS)
log.info("%d ligands, %d ok", len(table), int((table["status"] == "ok").sum()))
write_table(table, snakemake.output[0])
