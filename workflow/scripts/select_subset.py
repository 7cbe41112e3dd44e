"""select_subset: stratified, seeded subset of the proxy table for CASSCF labelling."""

import logging

from smmflow.io import read_table, write_table
from smmflow.stages.casscf import select_subset

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)  # noqa: F821
p = snakemake.params  # noqa: F821
proxies = read_table(snakemake.input.proxies)  # noqa: F821
sel = select_subset(proxies, size=p.size, seed=p.seed, columns=list(p.strata_columns), n_bins=p.n_bins)
logging.info("selected %d of %d proxy rows over %d strata", len(sel), len(proxies), sel["stratum"].nunique())
write_table(sel, snakemake.output.selection)  # noqa: F821
