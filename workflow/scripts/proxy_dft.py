"""Rule proxy_dft: PySCF DFT proxies of the free ligand on a seeded subset (or all)."""

import logging

from smmflow.io import read_table, write_table
from smmflow.xtb.dft import DftSettings, dft_table, select_subset

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,  # noqa: F821
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
cfg = snakemake.params.settings  # noqa: F821
dft_cfg = cfg["dft"]
# same conformer generation (count, seed) as the xTB proxies; dft.seed only picks the subset
settings = DftSettings.from_config({**dft_cfg, "n_conformers": cfg["n_conformers"], "seed": cfg["seed"]})
ligands = read_table(snakemake.input.ligands)  # noqa: F821
subset = select_subset(ligands, int(dft_cfg["subset_size"]), int(dft_cfg["seed"]))
logging.info("DFT on %d of %d ligands: %s", len(subset), len(ligands), settings.method())
table = dft_table(subset, settings)
write_table(table, snakemake.output[0])  # noqa: F821
