"""Rule learning_curve: held-out R2/MAE of the first excited KD vs number of labels."""

import logging

from smmflow.stages.learning import learning_curve_from_tables

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
settings = dict(snakemake.params.settings, threads=snakemake.threads)  # noqa: F821
df = learning_curve_from_tables(
    snakemake.input.ligands, snakemake.input.proxies, snakemake.input.labels,  # noqa: F821
    snakemake.output.table, snakemake.output.plot, settings,  # noqa: F821
)
logging.info("\n%s", df.to_string())
