"""Rule revalidation_proxies: xTB relaxation of the selected ligands' complexes (pool rows reused)."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import read_table, write_table
from smmflow.stages.revalidation import revalidation_proxies
from smmflow.xtb.proxies import ProxySettings, proxy_row

settings = ProxySettings.from_config(snakemake.params.settings)  # noqa: F821
table = revalidation_proxies(read_table(snakemake.input.selection), read_table(snakemake.input.pool_proxies),  # noqa: F821
                             lambda row: proxy_row(row, settings))
log.info("ok %d, failed %d", int((table["status"] == "ok").sum()), int((table["status"] != "ok").sum()))
write_table(table, snakemake.output.proxies)  # noqa: F821
