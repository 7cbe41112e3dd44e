"""Rule revalidation_proxies: xTB relaxation of the selected ligands' complexes (pool rows reused)."""

import logging

from smmflow.io import read_table, write_table
from smmflow.stages.revalidation import revalidation_proxies
from smmflow.xtb.proxies import ProxySettings, proxy_row

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
settings = ProxySettings.from_config(snakemake.params.settings)  # noqa: F821
table = revalidation_proxies(read_table(snakemake.input.selection), read_table(snakemake.input.pool_proxies),  # noqa: F821
                             lambda row: proxy_row(row, settings))
logging.info("ok %d, failed %d", int((table["status"] == "ok").sum()), int((table["status"] != "ok").sum()))
write_table(table, snakemake.output.proxies)  # noqa: F821
