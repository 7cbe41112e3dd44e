"""Rule proxy_dft: PySCF DFT proxies of the free ligand on a seeded subset (or all)."""

from smmflow.stages.logs import rule_log

log = rule_log(snakemake)  # noqa: F821 - first: errors of the imports below land in the rule log too


from smmflow.io import read_table, write_table
from smmflow.xtb.dft import DftSettings, dft_table, select_subset

cfg = snakemake.params.settings  # noqa: F821
dft_cfg = cfg["dft"]
# same conformer generation (count, seed) as the xTB proxies; dft.seed only picks the subset
settings = DftSettings.from_config({**dft_cfg, "n_conformers": cfg["n_conformers"], "seed": cfg["seed"]})
ligands = read_table(snakemake.input.ligands)  # noqa: F821
subset = select_subset(ligands, int(dft_cfg["subset_size"]), int(dft_cfg["seed"]))
log.info("DFT on %d of %d ligands: %s", len(subset), len(ligands), settings.method())
table = dft_table(subset, settings)
write_table(table, snakemake.output[0])  # noqa: F821
