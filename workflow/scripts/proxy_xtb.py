"""Rule proxy_xtb: GFN2-xTB proxies for one shard of the ligand table."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import read_table, write_table
from smmflow.xtb.proxies import ProxySettings, proxy_table, shard

ligands = read_table(snakemake.input.ligands)  # noqa: F821
part = shard(ligands, int(snakemake.wildcards.shard), snakemake.params.n_shards)  # noqa: F821
settings = ProxySettings.from_config(snakemake.params.settings)  # noqa: F821
log.info("shard %s: %d of %d ligands, %s", snakemake.wildcards.shard, len(part), len(ligands),  # noqa: F821
             settings)
table = proxy_table(part, settings)
log.info("ok %d, failed %d", int((table["status"] == "ok").sum()), int((table["status"] != "ok").sum()))
write_table(table, snakemake.output[0])  # noqa: F821
