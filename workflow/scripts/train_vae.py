"""Rule train_vae: VAE trained by proxy (masked proxy + KD heads) and the KD ensemble."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.stages.learning import train_vae_from_tables

settings = dict(snakemake.params.settings, threads=snakemake.threads)  # noqa: F821
metrics = train_vae_from_tables(
    snakemake.input.ligands, snakemake.input.proxies, snakemake.input.labels,  # noqa: F821
    snakemake.output.model, snakemake.output.metrics, snakemake.output.history, settings,  # noqa: F821
    physics_proxies_path=list(snakemake.input.physics_proxies) or None,  # noqa: F821
)
log.info("done: %d epochs, %.0f s, KD head: %s", metrics["epochs_run"], metrics["wall_s"],
             metrics["kd_head"]["status"])
