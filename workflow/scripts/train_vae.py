"""Rule train_vae: VAE trained by proxy (masked proxy + KD heads) and the KD ensemble."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.ml.rng import RESULT_THREADS
from smmflow.stages.learning import train_vae_from_tables

sm = snakemake  # noqa: F821 - the rule object Snakemake injects

# torch on RESULT_THREADS whatever the rule's threads: results independent of the thread count
settings = dict(sm.params.settings, threads=RESULT_THREADS)
metrics = train_vae_from_tables(
    sm.input.ligands,
    sm.input.proxies,
    sm.input.labels,
    sm.output.model,
    sm.output.metrics,
    sm.output.history,
    settings,
    physics_proxies_path=list(sm.input.physics_proxies) or None,
)
log.info("done: %d epochs, %.0f s, KD head: %s", metrics["epochs_run"], metrics["wall_s"], metrics["kd_head"]["status"])
