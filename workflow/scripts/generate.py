"""Rule generate: latent-space generation, filtering, novelty, KD prediction with uncertainty, ranking."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


import torch

from smmflow.stages.learning import generate_from_model

torch.set_num_threads(snakemake.threads)  # noqa: F821
metrics = generate_from_model(
    snakemake.input.model, snakemake.input.ligands, snakemake.input.labels,  # noqa: F821
    snakemake.output.candidates, snakemake.output.metrics, snakemake.params.settings,  # noqa: F821
)
log.info("validity %.3f uniqueness %.3f novelty %.3f diversity %.3f fcd %s", metrics["validity"],
             metrics["uniqueness"], metrics["novelty"], metrics["internal_diversity"], metrics["fcd"])
