"""Rule proxy_xtb: GFN2-xTB proxies for one shard of the ligand table."""

import logging

from smmflow.io import read_table, write_table
from smmflow.xtb.proxies import ProxySettings, proxy_table, shard

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
ligands = read_table(snakemake.input.ligands)  # noqa: F821
part = shard(ligands, int(snakemake.wildcards.shard), snakemake.params.n_shards)  # noqa: F821
settings = ProxySettings.from_config(snakemake.params.settings)  # noqa: F821
logging.info("shard %s: %d of %d ligands, %s", snakemake.wildcards.shard, len(part), len(ligands),  # noqa: F821
             settings)
table = proxy_table(part, settings)
logging.info("ok %d, failed %d", int((table["status"] == "ok").sum()), int((table["status"] != "ok").sum()))
write_table(table, snakemake.output[0])  # noqa: F821
