"""Rule train_vae: VAE trained by proxy (masked proxy + KD heads) and the KD ensemble."""

import logging

from smmflow.stages.learning import train_vae_from_tables

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
settings = dict(snakemake.params.settings, threads=snakemake.threads)  # noqa: F821
metrics = train_vae_from_tables(
    snakemake.input.ligands, snakemake.input.proxies, snakemake.input.labels,  # noqa: F821
    snakemake.output.model, snakemake.output.metrics, snakemake.output.history, settings,  # noqa: F821
)
logging.info("done: %d epochs, %.0f s, KD head: %s", metrics["epochs_run"], metrics["wall_s"],
             metrics["kd_head"]["status"])
