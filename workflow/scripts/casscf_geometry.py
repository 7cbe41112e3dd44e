"""casscf_geometry: one ligand's relaxed complex (extxyz text of its proxies row) as a file, the input
of its CASSCF job; empty for a ligand whose proxy stage failed (the job then reports that reason)."""

from smmflow.stages.logs import rule_log

snakemake = globals()["snakemake"]  # injected by Snakemake
log = rule_log(snakemake)  # first: errors of the imports below land in the rule log too

from smmflow.io import read_table, write_text_atomic
from smmflow.stages.casscf import geometry_of

text = geometry_of(read_table(snakemake.input.proxies), snakemake.wildcards.ligand_id)
log.info("%s: %d characters, sha256 %s", snakemake.wildcards.ligand_id, len(text), snakemake.params.geometry_sha256)
write_text_atomic(snakemake.output.geometry, text)
