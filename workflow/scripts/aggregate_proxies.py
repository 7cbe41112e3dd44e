"""Rule aggregate_proxies: concatenate the proxy shards into proxies.parquet."""

import logging

from smmflow.io import read_table, write_table
from smmflow.xtb.proxies import aggregate

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
table = aggregate([read_table(p) for p in snakemake.input.shards])  # noqa: F821
failed = table[table["status"] != "ok"]
logging.info("%d ligands, %d ok, %d failed", len(table), len(table) - len(failed), len(failed))
for reason, n in failed["reason"].str.split(":").str[0].value_counts().items():
    logging.info("failed %s: %d", reason, n)
write_table(table, snakemake.output[0])  # noqa: F821
