"""Rule generate: latent-space generation, filtering, novelty, KD prediction with uncertainty, ranking."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.ml.rng import pin_result_threads
from smmflow.stages.learning import generate_from_model

sm = snakemake  # noqa: F821 - the rule object Snakemake injects

pin_result_threads()  # results independent of the thread count (smmflow.ml.rng)
metrics = generate_from_model(
    sm.input.model,
    sm.input.ligands,
    sm.input.labels,
    sm.output.candidates,
    sm.output.metrics,
    sm.params.settings,
)
log.info(
    "validity %.3f uniqueness %.3f novelty %.3f diversity %.3f fcd %s",
    metrics["validity"],
    metrics["uniqueness"],
    metrics["novelty"],
    metrics["internal_diversity"],
    metrics["fcd"],
)
