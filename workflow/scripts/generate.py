"""Rule generate: latent-space generation, filtering, novelty, KD prediction with uncertainty, ranking."""

import logging

import torch

from smmflow.stages.learning import generate_from_model

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
torch.set_num_threads(snakemake.threads)  # noqa: F821
metrics = generate_from_model(
    snakemake.input.model, snakemake.input.ligands, snakemake.input.labels,  # noqa: F821
    snakemake.output.candidates, snakemake.output.metrics, snakemake.params.settings,  # noqa: F821
)
logging.info("validity %.3f uniqueness %.3f novelty %.3f diversity %.3f fcd %s", metrics["validity"],
             metrics["uniqueness"], metrics["novelty"], metrics["internal_diversity"], metrics["fcd"])
